// APIs (resources): scopes, token lifetime, algorithm, served-by, require
// roles and sensitive scopes; edits with If-Match and the conflict view.
import { useState } from 'preact/hooks';
import { call, can, features, type Page } from '../api.ts';
import { navigate, href, type Route } from '../router.ts';
import { Check, ConflictView, ErrorBox, Field, FormError, Link, Loading, Pager, Status, isConflict, lines, show, useConfirm, useLoad, words } from '../ui.tsx';

interface Api {
  identifier: string;
  name: string | null;
  scopes: string[];
  accessTokenTtl: number;
  signingAlg: string;
  servedBy: string[];
  requireRoles: boolean;
  builtIn: boolean;
  /** sensitive scopes, when this Gatehouse has them */
  sensitiveScopes?: string[];
  version: number;
}

export function Apis({ route }: { route: Route }) {
  const rest = route.path.slice('/apis'.length);
  if (rest === '/new' && can('gatehouse:resources:write')) return <ApiForm />;
  if (rest.length > 1) return <ApiDetail id={decodeURIComponent(rest.slice(1))} />;
  return <ApiList route={route} />;
}

function ApiList({ route }: { route: Route }) {
  const cursor = route.query.get('cursor');
  const load = useLoad(() => call<Page<Api>>('/resources', { query: { cursor: cursor ?? undefined, limit: '25' } }), `${cursor}`);
  return (
    <>
      <div class="title-row">
        <h1>APIs</h1>
        {can('gatehouse:resources:write') && (
          <Link to="/apis/new" class="button primary">
            New API
          </Link>
        )}
      </div>
      {load.loading && <Loading />}
      <ErrorBox error={load.error} />
      {load.data && (
        <>
          <table>
            <caption class="sr-only">APIs</caption>
            <thead>
              <tr>
                <th scope="col">Identifier</th>
                <th scope="col">Name</th>
                <th scope="col">Scopes</th>
                <th scope="col">Token TTL</th>
                <th scope="col">Algorithm</th>
              </tr>
            </thead>
            <tbody>
              {load.data.body.items.map((a) => (
                <tr key={a.identifier}>
                  <td>
                    <Link to={`/apis/${encodeURIComponent(a.identifier)}`}>{a.identifier}</Link>
                    {a.builtIn && <span class="badge">built-in</span>}
                  </td>
                  <td>{show(a.name)}</td>
                  <td>{a.scopes.length}</td>
                  <td>{a.accessTokenTtl} s</td>
                  <td>{a.signingAlg}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager cursor={cursor} next={load.data.body.nextCursor} go={(c) => navigate(href('/apis', { cursor: c }))} />
        </>
      )}
    </>
  );
}

function ApiDetail({ id }: { id: string }) {
  const load = useLoad(() => call<Api>(`/resources/${encodeURIComponent(id)}`), id);
  if (!load.data) return load.loading ? <Loading /> : <ErrorBox error={load.error} />;
  return <ApiForm key={String(load.data.etag)} api={load.data.body} etag={load.data.etag} />;
}

interface Draft {
  identifier: string;
  name: string;
  scopes: string;
  accessTokenTtl: string;
  signingAlg: string;
  servedBy: string;
  requireRoles: boolean;
  sensitiveScopes: string;
}
const toDraft = (a?: Api): Draft => ({
  identifier: a?.identifier ?? '',
  name: a?.name ?? '',
  scopes: a?.scopes.join(' ') ?? '',
  accessTokenTtl: String(a?.accessTokenTtl ?? 300),
  signingAlg: a?.signingAlg ?? 'RS256',
  servedBy: a?.servedBy.join('\n') ?? '',
  requireRoles: a?.requireRoles ?? false,
  sensitiveScopes: a?.sensitiveScopes?.join(' ') ?? '',
});
const toBody = (d: Draft, sensitive: boolean) => ({
  identifier: d.identifier,
  name: d.name.trim() === '' ? null : d.name,
  scopes: words(d.scopes),
  accessTokenTtl: Number(d.accessTokenTtl),
  signingAlg: d.signingAlg,
  servedBy: lines(d.servedBy),
  requireRoles: d.requireRoles,
  ...(sensitive && { sensitiveScopes: words(d.sensitiveScopes) }),
});

function ApiForm({ api, etag: initialEtag }: { api?: Api; etag?: string | null }) {
  const writable = can('gatehouse:resources:write') && !api?.builtIn;
  // sensitive scopes show only when this Gatehouse's API has them
  const sensitive = api ? Array.isArray(api.sensitiveScopes) : features.sensitiveScopes;
  const [draft, setDraft] = useState(() => toDraft(api));
  const [etag, setEtag] = useState(initialEtag ?? null);
  const [error, setError] = useState<unknown>(null);
  const [conflict, setConflict] = useState<Api | null>(null);
  const [status, setStatus] = useState('');
  const [dialog, confirm] = useConfirm();
  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => setDraft((d) => ({ ...d, [k]: v }));
  const path = api ? `/resources/${encodeURIComponent(api.identifier)}` : '/resources';
  const save = async (ifMatch: string | null) => {
    setError(null);
    setStatus('');
    try {
      const body = toBody(draft, sensitive);
      const r = api ? await call<Api>(path, { method: 'PATCH', body, ifMatch }) : await call<Api>(path, { method: 'POST', body });
      if (!api || r.body.identifier !== api.identifier) return navigate(`/apis/${encodeURIComponent(r.body.identifier)}`);
      setEtag(r.etag);
      setDraft(toDraft(r.body));
      setConflict(null);
      setStatus('Saved.');
    } catch (err) {
      if (isConflict(err) && api) {
        const now = await call<Api>(path);
        setConflict(now.body);
        setEtag(now.etag);
      } else setError(err);
    }
  };
  const remove = async () => {
    if (!api || !(await confirm({ title: `Delete ${api.identifier}?`, body: <p>Clients lose access to it and its roles are deleted.</p>, confirm: 'Delete API', danger: true })))
      return;
    try {
      await call(path, { method: 'DELETE', ifMatch: etag });
      navigate('/apis');
    } catch (err) {
      setError(err);
    }
  };
  const fields = ['identifier', 'name', 'scopes', 'accessTokenTtl', 'signingAlg', 'servedBy', 'requireRoles', 'sensitiveScopes'];
  return (
    <>
      {dialog}
      <div class="title-row">
        <h1>{api ? api.name ?? api.identifier : 'New API'}</h1>
        {api?.builtIn && <span class="badge">built-in</span>}
        {api && !writable && <span class="badge">Read-only</span>}
      </div>
      <p>
        <Link to="/apis">All APIs</Link>
      </p>
      {status && <Status text={status} />}
      {conflict && (
        <ConflictView
          mine={toBody(draft, sensitive)}
          theirs={toBody(toDraft(conflict), sensitive)}
          onReload={() => {
            setDraft(toDraft(conflict));
            setConflict(null);
          }}
          onOverwrite={() => void save(etag)}
        />
      )}
      <form
        novalidate
        onSubmit={(e) => {
          e.preventDefault();
          void save(etag);
        }}
      >
        <fieldset disabled={api ? !writable : false}>
          <legend>Settings</legend>
          <FormError error={error} fields={fields} />
          <Field id="identifier" label="Identifier (the tokens' audience)" error={error}>
            {(a) => <input {...a} value={draft.identifier} onInput={(e) => set('identifier', (e.target as HTMLInputElement).value)} />}
          </Field>
          <Field id="name" label="Name" error={error}>
            {(a) => <input {...a} value={draft.name} onInput={(e) => set('name', (e.target as HTMLInputElement).value)} />}
          </Field>
          <Field id="scopes" label="Scopes" hint="Separated by spaces." error={error}>
            {(a) => <input {...a} value={draft.scopes} onInput={(e) => set('scopes', (e.target as HTMLInputElement).value)} />}
          </Field>
          {sensitive && (
            <Field id="sensitiveScopes" label="Sensitive scopes" hint="Scopes whose holders are flagged in the access map. Separated by spaces." error={error}>
              {(a) => <input {...a} value={draft.sensitiveScopes} onInput={(e) => set('sensitiveScopes', (e.target as HTMLInputElement).value)} />}
            </Field>
          )}
          <Field id="accessTokenTtl" label="Access token lifetime (seconds)" error={error}>
            {(a) => <input {...a} inputMode="numeric" value={draft.accessTokenTtl} onInput={(e) => set('accessTokenTtl', (e.target as HTMLInputElement).value)} />}
          </Field>
          <Field id="signingAlg" label="Signing algorithm" error={error}>
            {(a) => (
              <select {...a} value={draft.signingAlg} onChange={(e) => set('signingAlg', (e.target as HTMLSelectElement).value)}>
                {['RS256', 'PS256', 'ES256', 'EdDSA'].map((x) => (
                  <option key={x}>{x}</option>
                ))}
              </select>
            )}
          </Field>
          <Field id="servedBy" label="Served by (client ids of the API's own services)" hint="One per line." error={error}>
            {(a) => <textarea {...a} rows={2} value={draft.servedBy} onInput={(e) => set('servedBy', (e.target as HTMLTextAreaElement).value)} />}
          </Field>
          <Check id="requireRoles" label="Require roles (a person's token carries only what their roles give)" checked={draft.requireRoles} onChange={(v) => set('requireRoles', v)} />
          {(writable || !api) && (
            <div class="actions">
              <button type="submit" class="primary">
                {api ? 'Save changes' : 'Create API'}
              </button>
              {api && (
                <button type="button" class="danger" onClick={() => void remove()}>
                  Delete API
                </button>
              )}
            </div>
          )}
        </fieldset>
      </form>
    </>
  );
}
