// Load for process-level tests: POSTs to a real port with node:http, every
// request tagged with its own X-Request-Id so that the server's access log
// says which requests it handled. Each outcome is one of:
//
// - answered: a complete response (status line, headers, the whole body);
// - refused: ECONNREFUSED, nothing listens (the request never reached it);
// - failed: the connection broke before a complete response (reset, hang up,
//   a response cut off in the middle). Whether the server had taken the
//   request is for the access log to say.
import http from 'node:http';

export interface Outcome {
  id: string;
  startedAt: number;
  endedAt: number;
  kind: 'answered' | 'refused' | 'failed';
  status?: number;
  body?: string;
  /** error code or message, for refused and failed */
  error?: string;
}

export interface Target {
  port: number;
  path: string;
  headers: Record<string, string>;
  /** the form body of each request (called per request) */
  body: () => string;
}

let counter = 0;

/** One POST; never rejects. `agent` false: a new connection, closed after the response. */
export function post(target: Target, agent: http.Agent | false, timeoutMs = 15_000): Promise<Outcome> {
  const id = `load-${process.pid}-${++counter}`;
  const startedAt = Date.now();
  const body = target.body();
  return new Promise<Outcome>((resolve) => {
    let settled = false;
    const done = (o: Omit<Outcome, 'id' | 'startedAt' | 'endedAt'>) => {
      if (settled) return;
      settled = true;
      resolve({ id, startedAt, endedAt: Date.now(), ...o });
    };
    const req = http.request(
      {
        host: '127.0.0.1',
        port: target.port,
        method: 'POST',
        path: target.path,
        agent,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': String(Buffer.byteLength(body)),
          'x-request-id': id,
          ...(agent === false ? { connection: 'close' } : {}),
          ...target.headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          if (res.complete) done({ kind: 'answered', status: res.statusCode, body: text });
          else done({ kind: 'failed', status: res.statusCode, error: 'response cut off' });
        });
        res.on('error', (err: NodeJS.ErrnoException) => done({ kind: 'failed', status: res.statusCode, error: err.code ?? err.message }));
        res.on('close', () => done({ kind: 'failed', status: res.statusCode, error: 'response cut off' }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('no answer (client timeout)')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done({ kind: 'refused', error: err.code });
      else done({ kind: 'failed', error: err.code ?? err.message });
    });
    req.end(body);
  });
}

/**
 * `loops` concurrent request loops until stop() is called or the deadline;
 * a loop ends early once its requests are refused (nothing listens any more).
 */
export function runLoad(
  target: Target | ((loop: number) => Target),
  opts: { loops: number; keepAlive: (loop: number) => boolean; deadlineMs: number },
): { outcomes: Outcome[]; stop(): void; finished: Promise<Outcome[]> } {
  const outcomes: Outcome[] = [];
  let stopped = false;
  const deadline = Date.now() + opts.deadlineMs;
  const loops = Array.from({ length: opts.loops }, async (_, i) => {
    const agent = opts.keepAlive(i) ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
    try {
      while (!stopped && Date.now() < deadline) {
        const t = typeof target === 'function' ? target(i) : target;
        const o = await post(t, agent);
        outcomes.push(o);
        if (o.kind === 'refused') break;
      }
    } finally {
      if (agent) agent.destroy();
    }
  });
  return {
    outcomes,
    stop: () => void (stopped = true),
    finished: Promise.all(loops).then(() => outcomes),
  };
}

/** request id → status, from a JSON access log (pino lines with msg "request") */
export function accessLogIds(logText: string): Map<string, number> {
  const ids = new Map<string, number>();
  for (const line of logText.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const rec = JSON.parse(line) as { msg?: string; reqId?: string; status?: number };
      if (rec.msg === 'request' && typeof rec.reqId === 'string') ids.set(rec.reqId, rec.status ?? 0);
    } catch {
      // not a log line
    }
  }
  return ids;
}

export function basicAuth(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}
