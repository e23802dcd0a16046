// The access map: which clients reach which APIs with which scopes, as the
// API draws it (SVG), and the same facts as tables (the text alternative).
// "If leaked" shows what one client's credentials would open. Hidden when
// this Gatehouse's admin API has no access map.
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, offers } from '../api.ts';
import { href, navigate, type Route } from '../router.ts';
import { ErrorBox, Loading, show, useLoad } from '../ui.tsx';

const SVG_NS = 'http://www.w3.org/2000/svg';
const SAFE = new Set(['svg', 'g', 'path', 'line', 'polyline', 'polygon', 'rect', 'circle', 'ellipse', 'text', 'tspan', 'title', 'desc', 'defs', 'marker', 'use', 'a']);

/** The API's SVG, rebuilt from safe elements and attributes only: no script, no style, no event handler, no external link. */
function sanitize(markup: string): SVGSVGElement | null {
  const doc = new DOMParser().parseFromString(markup, 'image/svg+xml');
  const root = doc.documentElement;
  if (root.nodeName !== 'svg') return null;
  const copy = (node: Element): Element | null => {
    if (!SAFE.has(node.localName)) return null;
    const el = document.createElementNS(SVG_NS, node.localName);
    for (const a of Array.from(node.attributes)) {
      const n = a.name.toLowerCase();
      if (n.startsWith('on') || n === 'style' || ((n === 'href' || n === 'xlink:href') && !a.value.startsWith('#'))) continue;
      el.setAttribute(a.name, a.value);
    }
    for (const child of Array.from(node.childNodes)) {
      if (child.nodeType === Node.TEXT_NODE) el.appendChild(document.createTextNode(child.textContent ?? ''));
      else if (child.nodeType === Node.ELEMENT_NODE) {
        const c = copy(child as Element);
        if (c) el.appendChild(c);
      }
    }
    return el;
  };
  return copy(root) as SVGSVGElement | null;
}

type Json = Record<string, unknown>;

function Tables({ data }: { data: Json }) {
  const lists = Object.entries(data).filter(([, v]) => Array.isArray(v) && v.length > 0 && typeof v[0] === 'object') as [string, Json[]][];
  if (lists.length === 0) return <pre class="mono">{JSON.stringify(data, null, 2)}</pre>;
  return (
    <>
      {lists.map(([name, rows]) => {
        const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))].slice(0, 6);
        return (
          <table key={name}>
            <caption>{name}</caption>
            <thead>
              <tr>
                {cols.map((c) => (
                  <th scope="col" key={c}>
                    {c}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((r, i) => (
                <tr key={i}>
                  {cols.map((c) => (
                    <td key={c}>{show(r[c])}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        );
      })}
    </>
  );
}

export function AccessMap({ route }: { route: Route }) {
  const client = route.query.get('client') ?? '';
  const api = route.query.get('api') ?? '';
  const ifLeaked = route.query.get('ifLeaked') ?? '';
  const [draft, setDraft] = useState({ client, api, ifLeaked });
  const query = { client, api, ifLeaked };
  const key = `${client}|${api}|${ifLeaked}`;
  const available = useLoad(() => offers('get', '/access-map'), 'offers');
  const json = useLoad(async () => ((await offers('get', '/access-map')) ? (await call<Json>('/access-map', { query: { ...query, format: 'json' } })).body : undefined), key);
  const svg = useLoad(
    async () => ((await offers('get', '/access-map')) ? (await call<string>('/access-map', { query: { ...query, format: 'svg' }, accept: 'image/svg+xml' })).body : undefined),
    key,
  );
  const holder = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = holder.current;
    if (!el) return;
    el.replaceChildren();
    if (typeof svg.data !== 'string') return;
    const clean = sanitize(svg.data);
    if (clean) {
      clean.setAttribute('role', 'img');
      clean.setAttribute('aria-labelledby', 'map-caption');
      el.appendChild(clean);
    }
  }, [svg.data]);
  const onMapClick = (e: MouseEvent) => {
    const target = (e.target as Element).closest('[data-client],[data-api]');
    if (!target) return;
    const c = target.getAttribute('data-client');
    const a = target.getAttribute('data-api');
    navigate(href('/access-map', c ? { client: c } : { api: a }));
  };
  if (available.loading) return <Loading />;
  if (!available.data) {
    return (
      <>
        <h1>Access map</h1>
        <p>This Gatehouse's admin API has no access map.</p>
      </>
    );
  }
  return (
    <>
      <h1>Access map</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(href('/access-map', draft));
        }}
      >
        <div class="field">
          <label for="map-client">Client id</label>
          <input id="map-client" value={draft.client} onInput={(e) => setDraft((d) => ({ ...d, client: (e.target as HTMLInputElement).value }))} />
        </div>
        <div class="field">
          <label for="map-api">API</label>
          <input id="map-api" value={draft.api} onInput={(e) => setDraft((d) => ({ ...d, api: (e.target as HTMLInputElement).value }))} />
        </div>
        <div class="field">
          <label for="map-leak">If this client leaked</label>
          <input id="map-leak" value={draft.ifLeaked} onInput={(e) => setDraft((d) => ({ ...d, ifLeaked: (e.target as HTMLInputElement).value }))} />
        </div>
        <button type="submit">Show</button>
      </form>
      <figure>
        <div class="map" ref={holder} onClick={onMapClick} />
        <figcaption id="map-caption">
          {ifLeaked ? `What a leak of ${ifLeaked}'s credentials would open` : 'Clients and the APIs they reach'}. The tables below say the same in text.
        </figcaption>
      </figure>
      {(svg.loading || json.loading) && <Loading />}
      <ErrorBox error={svg.error ?? json.error} />
      {json.data && (
        <section aria-labelledby="map-text">
          <h2 id="map-text">In text</h2>
          <Tables data={json.data} />
        </section>
      )}
    </>
  );
}
