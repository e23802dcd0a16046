// The audit trail: filter by actor, action and time (kept in the URL), newest
// first, with the before/after of each change.
import { useState } from 'preact/hooks';
import { call, type Page } from '../api.ts';
import { href, navigate, type Route } from '../router.ts';
import { Diff, ErrorBox, Loading, Pager, show, useLoad, when } from '../ui.tsx';

interface AuditEvent {
  id: string;
  occurredAt: string;
  action: string;
  actorType: string;
  actorId: string | null;
  targetType: string | null;
  targetId: string | null;
  requestId: string | null;
  ip: string | null;
  details: unknown;
}

const FILTERS = ['actor', 'action', 'target_id', 'since', 'until'] as const;
type Filter = (typeof FILTERS)[number];
const LABELS: Record<Filter, string> = { actor: 'Actor (client or person id)', action: 'Action (e.g. client.update or client.*)', target_id: 'Target id', since: 'From', until: 'Until' };

/** datetime-local value ↔ ISO instant */
const toIso = (local: string) => (local ? new Date(local).toISOString() : '');
const toLocal = (iso: string) => {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
};

export function Audit({ route }: { route: Route }) {
  const current = Object.fromEntries(FILTERS.map((f) => [f, route.query.get(f) ?? ''])) as Record<Filter, string>;
  const cursor = route.query.get('cursor');
  const [draft, setDraft] = useState(() => ({ ...current, since: toLocal(current.since), until: toLocal(current.until) }));
  const [open, setOpen] = useState<string | null>(null);
  const key = `${route.query.toString()}`;
  const load = useLoad(() => call<Page<AuditEvent>>('/audit-events', { query: { ...current, cursor: cursor ?? undefined, limit: '50' } }), key);
  const apply = (e: Event) => {
    e.preventDefault();
    navigate(href('/audit', { ...draft, since: toIso(draft.since), until: toIso(draft.until) }));
  };
  return (
    <>
      <h1>Audit</h1>
      <form class="filters" role="search" onSubmit={apply}>
        {FILTERS.map((f) => (
          <div class="field" key={f}>
            <label for={`audit-${f}`}>{LABELS[f]}</label>
            <input
              id={`audit-${f}`}
              type={(f === 'since' || f === 'until' ? 'datetime-local' : 'text') as 'text'}
              value={draft[f]}
              onInput={(e) => setDraft((d) => ({ ...d, [f]: (e.target as HTMLInputElement).value }))}
            />
          </div>
        ))}
        <button type="submit">Filter</button>
      </form>
      {load.loading && <Loading />}
      <ErrorBox error={load.error} />
      {load.data && (
        <>
          <table class="audit">
            <caption class="sr-only">Audit events, newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Action</th>
                <th scope="col">Actor</th>
                <th scope="col">Target</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {load.data.body.items.map((ev) => {
                const d = (ev.details ?? {}) as { before?: unknown; after?: unknown };
                const isOpen = open === ev.id;
                return [
                  <tr key={ev.id}>
                    <td>{when(ev.occurredAt)}</td>
                    <td class="mono">{ev.action}</td>
                    <td>
                      {ev.actorType} <span class="mono">{show(ev.actorId)}</span>
                    </td>
                    <td>
                      {show(ev.targetType)} <span class="mono">{show(ev.targetId)}</span>
                    </td>
                    <td>
                      <button type="button" class="small" aria-expanded={isOpen} aria-controls={`ev-${ev.id}`} onClick={() => setOpen(isOpen ? null : ev.id)}>
                        {isOpen ? 'Hide' : 'Show'} <span class="sr-only">details of event {ev.id}</span>
                      </button>
                    </td>
                  </tr>,
                  isOpen && (
                    <tr key={`${ev.id}-d`} id={`ev-${ev.id}`}>
                      <td colSpan={5}>
                        {d.before !== undefined || d.after !== undefined ? <Diff before={d.before} after={d.after} /> : <pre class="mono">{JSON.stringify(ev.details, null, 2)}</pre>}
                        <p class="muted">
                          Request {show(ev.requestId)} from {show(ev.ip)}
                        </p>
                      </td>
                    </tr>
                  ),
                ];
              })}
            </tbody>
          </table>
          {load.data.body.items.length === 0 && <p class="muted">No event matches.</p>}
          <Pager cursor={cursor} next={load.data.body.nextCursor} go={(c) => navigate(href('/audit', { ...current, cursor: c }))} />
        </>
      )}
    </>
  );
}
