// A TCP proxy on 127.0.0.1 between Gatehouse and PostgreSQL that a test can
// break on purpose, without touching the database server other tests share:
//
// - up:   bytes flow both ways;
// - down: every open connection is reset and new ones are refused (a
//         PostgreSQL restart or a crashed server, as the client sees it);
// - hang: connections stay open but nothing flows, and new connections are
//         accepted but never reach the server (a network partition, or a
//         server frozen solid). Back to `up`, the held bytes are delivered,
//         like TCP after a partition heals.
//
// failover() models a database that comes back somewhere else while the old
// connections are never answered again (a failed-over primary, a NAT or
// firewall that forgot the connections): those stay open and silent, new
// connections reach the server.
import net from 'node:net';

export type ProxyMode = 'up' | 'down' | 'hang';

export interface DbProxy {
  /** the upstream URL with host and port replaced by the proxy's */
  url: string;
  port: number;
  mode(): ProxyMode;
  set(mode: ProxyMode): void;
  /** open connections go silent for good; new ones flow (mode `up`) */
  failover(): void;
  /** connections currently open through the proxy */
  readonly connections: number;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  server: net.Socket;
  /** client bytes held while hanging, before the server connection exists */
  held: Buffer[];
  connected: boolean;
}

export async function startDbProxy(upstreamUrl: string): Promise<DbProxy> {
  const upstream = new URL(upstreamUrl);
  const upstreamPort = Number(upstream.port || 5432);
  const upstreamHost = upstream.hostname;
  let mode: ProxyMode = 'up';
  const pairs = new Set<Pair>();
  /** connections left silent by failover(), destroyed on close() */
  const dead = new Set<Pair>();

  const destroy = (p: Pair) => {
    pairs.delete(p);
    // resetAndDestroy sends RST: the client sees ECONNRESET at once, like a
    // server that went away.
    if (!p.client.destroyed) p.client.resetAndDestroy();
    if (!p.server.destroyed) p.server.destroy();
  };

  const pump = (p: Pair) => {
    if (mode !== 'up' || !p.connected) return;
    for (const chunk of p.held.splice(0)) p.server.write(chunk);
    p.client.resume();
    p.server.resume();
  };

  const server = net.createServer({ pauseOnConnect: true }, (client) => {
    if (mode === 'down') {
      client.resetAndDestroy();
      return;
    }
    const s = new net.Socket();
    const p: Pair = { client, server: s, held: [], connected: false };
    pairs.add(p);
    client.on('data', (chunk: Buffer) => {
      if (mode === 'up' && p.connected) {
        if (!s.write(chunk)) client.pause();
      } else {
        p.held.push(chunk);
        client.pause();
      }
    });
    s.on('data', (chunk: Buffer) => {
      if (mode === 'up') {
        if (!client.write(chunk)) s.pause();
      } else {
        // not forwarded while hanging: push it back until `up`
        s.pause();
        s.unshift(chunk);
      }
    });
    s.on('drain', () => mode === 'up' && client.resume());
    client.on('drain', () => mode === 'up' && s.resume());
    const close = () => {
      if (!pairs.has(p)) return;
      pairs.delete(p);
      client.destroy();
      s.destroy();
    };
    client.on('error', close);
    client.on('close', close);
    s.on('error', close);
    s.on('close', close);
    // Hanging: the server side is not even dialled until the mode is `up`.
    const dial = () => {
      s.connect(upstreamPort, upstreamHost, () => {
        p.connected = true;
        pump(p);
      });
    };
    if (mode === 'up') dial();
    else dialLater.add(() => pairs.has(p) && dial());
    client.resume();
  });
  const dialLater = new Set<() => void>();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address() as net.AddressInfo;
  const url = new URL(upstreamUrl);
  url.hostname = '127.0.0.1';
  url.port = String(addr.port);

  return {
    url: url.toString(),
    port: addr.port,
    mode: () => mode,
    get connections() {
      return pairs.size;
    },
    set(next) {
      mode = next;
      if (next === 'down') {
        for (const p of [...pairs]) destroy(p);
        dialLater.clear();
      } else if (next === 'hang') {
        for (const p of pairs) {
          p.client.pause();
          p.server.pause();
        }
      } else {
        for (const d of [...dialLater]) d();
        dialLater.clear();
        for (const p of pairs) pump(p);
      }
    },
    failover() {
      for (const p of [...pairs]) {
        pairs.delete(p);
        dead.add(p);
        p.client.pause();
        p.server.pause();
        p.client.removeAllListeners('data');
        p.server.removeAllListeners('data');
      }
      dialLater.clear();
      mode = 'up';
    },
    async close() {
      for (const p of [...pairs, ...dead]) destroy(p);
      dead.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
