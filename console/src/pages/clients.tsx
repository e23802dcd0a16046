// Clients: list (search, status filter, pages), the guided "new client"
// (web app, single-page app, service, native app), and one client: edit with
// If-Match, enable/disable, rotate the secret (shown once), delete.
import { useState } from 'preact/hooks';
import { call, can, type Page } from '../api.ts';
import { href, navigate, type Route } from '../router.ts';
import {
  Check,
  ConflictView,
  ErrorBox,
  Field,
  FormError,
  Link,
  Loading,
  Pager,
  SecretOnce,
  Status,
  isConflict,
  lines,
  show,
  useConfirm,
  useLoad,
  when,
  words,
} from '../ui.tsx';

export interface Client {
  id: string;
  name: string;
  public: boolean;
  grants: string[];
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  scopes: string[];
  resources: string[];
  authMethod: string;
  requireDpop: boolean;
  firstParty: boolean;
  requireMfa: boolean;
  accessTokenTtl: number | null;
  disabled: boolean;
  hasSecret: boolean;
  createdAt: string;
  updatedAt: string;
  version: number;
  clientSecret?: string;
}

export function kindOf(c: Pick<Client, 'public' | 'grants' | 'redirectUris'>): string {
  if (c.grants.includes('client_credentials') && !c.grants.includes('authorization_code')) return 'Service';
  if (!c.public) return 'Web app';
  return c.redirectUris.some((u) => /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])[:/]/.test(u) || !/^https?:/.test(u)) ? 'Native app' : 'Single-page app';
}

export function Clients({ route }: { route: Route }) {
  const rest = route.path.slice('/clients'.length);
  if (rest === '/new') return can('gatehouse:clients:write') ? <NewClient /> : <NotAllowed />;
  if (rest.length > 1) return <ClientDetail id={decodeURIComponent(rest.slice(1))} />;
  return <ClientList route={route} />;
}

function NotAllowed() {
  return (
    <>
      <h1>Not found</h1>
      <p>
        Your roles do not let you create clients. <Link to="/clients">Back to clients</Link>
      </p>
    </>
  );
}

function ClientList({ route }: { route: Route }) {
  const q = route.query.get('q') ?? '';
  const status = route.query.get('status') ?? '';
  const cursor = route.query.get('cursor');
  const [text, setText] = useState(q);
  const load = useLoad(() => call<Page<Client>>('/clients', { query: { q, status, cursor: cursor ?? undefined, limit: '25' } }), `${q}|${status}|${cursor}`);
  const go = (p: Record<string, string | null>) => navigate(href('/clients', { q, status, cursor: null, ...p }));
  return (
    <>
      <div class="title-row">
        <h1>Clients</h1>
        {can('gatehouse:clients:write') ? (
          <Link to="/clients/new" class="button primary">
            New client
          </Link>
        ) : (
          <span class="badge">Read-only</span>
        )}
      </div>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          go({ q: text });
        }}
      >
        <div class="field">
          <label for="client-search">Search by name or id</label>
          <input id="client-search" type="search" value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="client-status">Status</label>
          <select id="client-status" value={status} onChange={(e) => go({ status: (e.target as HTMLSelectElement).value })}>
            <option value="">All</option>
            <option value="enabled">Enabled</option>
            <option value="disabled">Disabled</option>
          </select>
        </div>
        <button type="submit">Search</button>
      </form>
      {load.loading && <Loading />}
      <ErrorBox error={load.error} />
      {load.data && (
        <>
          <table>
            <caption class="sr-only">Clients</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Client id</th>
                <th scope="col">Kind</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {load.data.body.items.map((c) => (
                <tr key={c.id}>
                  <td>
                    <Link to={`/clients/${encodeURIComponent(c.id)}`}>{c.name}</Link>
                  </td>
                  <td class="mono">{c.id}</td>
                  <td>{kindOf(c)}</td>
                  <td>{c.disabled ? <span class="badge off">Disabled</span> : <span class="badge on">Enabled</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {load.data.body.items.length === 0 && <p class="muted">No client matches.</p>}
          <Pager cursor={cursor} next={load.data.body.nextCursor} go={(c) => go({ cursor: c })} />
        </>
      )}
    </>
  );
}

// ------------------------------------------------------------------ create

const KINDS = {
  web: {
    label: 'Web app',
    hint: 'A server-side application that signs people in. Confidential: it gets a secret (client_secret_basic); code flow with refresh tokens; use PKCE too.',
    body: { public: false, authMethod: 'client_secret_basic', grants: ['authorization_code', 'refresh_token'], scopes: ['openid', 'profile', 'email'] },
    redirects: true,
  },
  spa: {
    label: 'Single-page app',
    hint: 'Runs in the browser and cannot keep a secret. Public client (no secret); code flow with PKCE S256, which Gatehouse requires of public clients.',
    body: { public: true, authMethod: 'none', grants: ['authorization_code', 'refresh_token'], scopes: ['openid', 'profile', 'email'] },
    redirects: true,
  },
  service: {
    label: 'Service',
    hint: 'A machine calling APIs on its own behalf. Confidential (client_secret_basic); client credentials grant; choose the APIs and scopes it may get.',
    body: { public: false, authMethod: 'client_secret_basic', grants: ['client_credentials'], scopes: [] as string[] },
    redirects: false,
  },
  native: {
    label: 'Native app',
    hint: 'A desktop or mobile app. Public client (no secret); code flow with PKCE S256; redirect to a loopback address or a private-use scheme.',
    body: { public: true, authMethod: 'none', grants: ['authorization_code', 'refresh_token'], scopes: ['openid', 'profile', 'email'] },
    redirects: true,
  },
} as const;
type Kind = keyof typeof KINDS;

function NewClient() {
  const [kind, setKind] = useState<Kind>('web');
  const [name, setName] = useState('');
  const [redirects, setRedirects] = useState('');
  const [scopes, setScopes] = useState<string>(KINDS.web.body.scopes.join(' '));
  const [resources, setResources] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<Client | null>(null);
  const k = KINDS[kind];
  const choose = (next: Kind) => {
    setKind(next);
    setScopes(KINDS[next].body.scopes.join(' '));
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const body = {
        ...k.body,
        grants: [...k.body.grants],
        name,
        scopes: words(scopes),
        ...(k.redirects ? { redirectUris: lines(redirects) } : {}),
        ...(resources.trim() ? { resources: lines(resources) } : {}),
      };
      const r = await call<Client>('/clients', { method: 'POST', body });
      if (r.body.clientSecret) setCreated(r.body);
      else navigate(`/clients/${encodeURIComponent(r.body.id)}`);
    } catch (err) {
      setError(err);
    }
  };
  if (created?.clientSecret) {
    return (
      <>
        <h1>Client created: {created.name}</h1>
        <p>
          Client id: <code class="mono" id="new-client-id">{created.id}</code>
        </p>
        <SecretOnce secret={created.clientSecret} onDone={() => navigate(`/clients/${encodeURIComponent(created.id)}`)} />
      </>
    );
  }
  const fields = ['name', 'redirectUris', 'scopes', 'resources', 'grants', 'authMethod', 'public'];
  return (
    <>
      <h1>New client</h1>
      <form onSubmit={(e) => void submit(e)} novalidate>
        <fieldset class="kinds">
          <legend>What kind of application is it?</legend>
          {(Object.keys(KINDS) as Kind[]).map((id) => (
            <div class="kind" key={id}>
              <input type="radio" name="kind" id={`kind-${id}`} value={id} checked={kind === id} onChange={() => choose(id)} aria-describedby={`kind-${id}-hint`} />
              <label for={`kind-${id}`}>{KINDS[id].label}</label>
              <small id={`kind-${id}-hint`} class="hint">
                {KINDS[id].hint}
              </small>
            </div>
          ))}
        </fieldset>
        <FormError error={error} fields={fields} />
        <Field id="name" label="Name" error={error}>
          {(a) => <input {...a} value={name} required onInput={(e) => setName((e.target as HTMLInputElement).value)} />}
        </Field>
        {k.redirects && (
          <Field id="redirectUris" label="Redirect URIs" hint="One per line." error={error}>
            {(a) => <textarea {...a} rows={3} value={redirects} onInput={(e) => setRedirects((e.target as HTMLTextAreaElement).value)} />}
          </Field>
        )}
        <Field id="resources" label="APIs it may get tokens for" hint="Resource identifiers, one per line." error={error}>
          {(a) => <textarea {...a} rows={2} value={resources} onInput={(e) => setResources((e.target as HTMLTextAreaElement).value)} />}
        </Field>
        <Field id="scopes" label="Scopes" hint="Separated by spaces." error={error}>
          {(a) => <input {...a} value={scopes} onInput={(e) => setScopes((e.target as HTMLInputElement).value)} />}
        </Field>
        <p class="muted">
          Sets: {k.body.public ? 'public client, no secret' : `confidential, ${k.body.authMethod}`}; grants {k.body.grants.join(', ')}
          {k.body.public ? '; PKCE S256 required' : ''}.
        </p>
        <div class="actions">
          <button type="submit" class="primary">
            Create client
          </button>
          <Link to="/clients" class="button">
            Cancel
          </Link>
        </div>
      </form>
    </>
  );
}

// ------------------------------------------------------------------ one client

interface Draft {
  name: string;
  redirectUris: string;
  postLogoutRedirectUris: string;
  scopes: string;
  resources: string;
  grants: string[];
  requireMfa: boolean;
  requireDpop: boolean;
  firstParty: boolean;
  accessTokenTtl: string;
}

const toDraft = (c: Client): Draft => ({
  name: c.name,
  redirectUris: c.redirectUris.join('\n'),
  postLogoutRedirectUris: c.postLogoutRedirectUris.join('\n'),
  scopes: c.scopes.join(' '),
  resources: c.resources.join('\n'),
  grants: [...c.grants],
  requireMfa: c.requireMfa,
  requireDpop: c.requireDpop,
  firstParty: c.firstParty,
  accessTokenTtl: c.accessTokenTtl === null ? '' : String(c.accessTokenTtl),
});

const toPatch = (d: Draft) => ({
  name: d.name,
  redirectUris: lines(d.redirectUris),
  postLogoutRedirectUris: lines(d.postLogoutRedirectUris),
  scopes: words(d.scopes),
  resources: lines(d.resources),
  grants: d.grants,
  requireMfa: d.requireMfa,
  requireDpop: d.requireDpop,
  firstParty: d.firstParty,
  accessTokenTtl: d.accessTokenTtl.trim() === '' ? null : Number(d.accessTokenTtl),
});

const GRANTS = ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'];

function ClientDetail({ id }: { id: string }) {
  const load = useLoad(() => call<Client>(`/clients/${encodeURIComponent(id)}`), id);
  if (load.loading && !load.data) return <Loading />;
  if (!load.data) {
    return (
      <>
        <h1>Client</h1>
        <ErrorBox error={load.error} />
        <Link to="/clients">Back to clients</Link>
      </>
    );
  }
  return <ClientEditor key={`${load.data.etag}`} client={load.data.body} etag={load.data.etag} reload={load.reload} />;
}

function ClientEditor({ client, etag: initialEtag, reload }: { client: Client; etag: string | null; reload: () => void }) {
  const writable = can('gatehouse:clients:write');
  const [draft, setDraft] = useState(() => toDraft(client));
  const [etag, setEtag] = useState(initialEtag);
  const [current, setCurrent] = useState(client);
  const [error, setError] = useState<unknown>(null);
  const [conflict, setConflict] = useState<Client | null>(null);
  const [status, setStatus] = useState('');
  const [secret, setSecret] = useState<string | null>(null);
  const [dialog, confirm] = useConfirm();
  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => setDraft((d) => ({ ...d, [k]: v }));
  const path = `/clients/${encodeURIComponent(client.id)}`;

  const save = async (ifMatch: string | null) => {
    setError(null);
    setStatus('');
    try {
      const r = await call<Client>(path, { method: 'PATCH', body: toPatch(draft), ifMatch });
      setCurrent(r.body);
      setEtag(r.etag);
      setDraft(toDraft(r.body));
      setConflict(null);
      setStatus('Saved.');
    } catch (err) {
      if (isConflict(err)) {
        const now = await call<Client>(path);
        setConflict(now.body);
        setEtag(now.etag);
      } else setError(err);
    }
  };
  const toggle = async () => {
    const disabling = !current.disabled;
    if (disabling && !(await confirm({ title: `Disable ${current.name}?`, body: <p>It can get no token until it is enabled again.</p>, confirm: 'Disable', danger: true }))) return;
    setError(null);
    try {
      const r = await call<Client>(path, { method: 'PATCH', body: { disabled: disabling }, ifMatch: etag });
      setCurrent(r.body);
      setEtag(r.etag);
      setStatus(disabling ? 'Disabled.' : 'Enabled.');
    } catch (err) {
      if (isConflict(err)) reload();
      else setError(err);
    }
  };
  const rotate = async () => {
    if (!(await confirm({ title: 'Rotate the secret?', body: <p>A new secret is generated and shown once. The old one keeps working for the grace period set on this Gatehouse.</p>, confirm: 'Rotate secret' }))) return;
    setError(null);
    try {
      const r = await call<{ clientSecret: string } & Client>(`${path}/secret`, { method: 'POST', body: {} });
      setSecret(r.body.clientSecret);
      if (r.etag) setEtag(r.etag);
    } catch (err) {
      setError(err);
    }
  };
  const remove = async () => {
    if (!(await confirm({ title: `Delete ${current.name}?`, body: <p>Its tokens and grants end at once. This cannot be undone.</p>, confirm: 'Delete client', danger: true }))) return;
    try {
      await call(path, { method: 'DELETE', ifMatch: etag });
      navigate('/clients');
    } catch (err) {
      setError(err);
    }
  };

  if (secret) return <SecretOnce secret={secret} onDone={() => setSecret(null)} />;
  const fields = ['name', 'redirectUris', 'postLogoutRedirectUris', 'scopes', 'resources', 'grants', 'accessTokenTtl'];
  return (
    <>
      {dialog}
      <div class="title-row">
        <h1>{current.name}</h1>
        {current.disabled ? <span class="badge off">Disabled</span> : <span class="badge on">Enabled</span>}
        {!writable && <span class="badge">Read-only</span>}
      </div>
      <p>
        <Link to="/clients">All clients</Link>
      </p>
      <dl class="facts">
        <dt>Client id</dt>
        <dd class="mono">{current.id}</dd>
        <dt>Kind</dt>
        <dd>{kindOf(current)}</dd>
        <dt>Authentication</dt>
        <dd>{current.public ? 'public (no secret), PKCE required' : current.authMethod}</dd>
        <dt>Secret</dt>
        <dd>{current.hasSecret ? 'set (never shown again)' : '—'}</dd>
        <dt>Updated</dt>
        <dd>{when(current.updatedAt)}</dd>
      </dl>
      {status && <Status text={status} />}
      {conflict && (
        <ConflictView
          mine={toPatch(draft)}
          theirs={toPatch(toDraft(conflict))}
          onReload={() => {
            setDraft(toDraft(conflict));
            setCurrent(conflict);
            setConflict(null);
          }}
          onOverwrite={() => void save(etag)}
        />
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save(etag);
        }}
        novalidate
      >
        <fieldset disabled={!writable}>
          <legend>Settings</legend>
          <FormError error={error} fields={fields} />
          <Field id="name" label="Name" error={error}>
            {(a) => <input {...a} value={draft.name} onInput={(e) => set('name', (e.target as HTMLInputElement).value)} />}
          </Field>
          <Field id="redirectUris" label="Redirect URIs" hint="One per line." error={error}>
            {(a) => <textarea {...a} rows={3} value={draft.redirectUris} onInput={(e) => set('redirectUris', (e.target as HTMLTextAreaElement).value)} />}
          </Field>
          <Field id="postLogoutRedirectUris" label="Post-logout redirect URIs" hint="One per line." error={error}>
            {(a) => <textarea {...a} rows={2} value={draft.postLogoutRedirectUris} onInput={(e) => set('postLogoutRedirectUris', (e.target as HTMLTextAreaElement).value)} />}
          </Field>
          <Field id="resources" label="APIs" hint="Resource identifiers, one per line." error={error}>
            {(a) => <textarea {...a} rows={2} value={draft.resources} onInput={(e) => set('resources', (e.target as HTMLTextAreaElement).value)} />}
          </Field>
          <Field id="scopes" label="Scopes" hint="Separated by spaces." error={error}>
            {(a) => <input {...a} value={draft.scopes} onInput={(e) => set('scopes', (e.target as HTMLInputElement).value)} />}
          </Field>
          <fieldset class="inline">
            <legend>Grants</legend>
            {GRANTS.map((g) => (
              <Check
                key={g}
                id={`grant-${g.replace(/\W/g, '-')}`}
                label={g.replace('urn:ietf:params:oauth:grant-type:', '')}
                checked={draft.grants.includes(g)}
                onChange={(v) => set('grants', v ? [...draft.grants, g] : draft.grants.filter((x) => x !== g))}
              />
            ))}
          </fieldset>
          <Field id="accessTokenTtl" label="Access token lifetime (seconds)" hint="Empty: the API's own." error={error}>
            {(a) => <input {...a} inputMode="numeric" value={draft.accessTokenTtl} onInput={(e) => set('accessTokenTtl', (e.target as HTMLInputElement).value)} />}
          </Field>
          <Check id="requireMfa" label="Require a second factor at sign-in" checked={draft.requireMfa} onChange={(v) => set('requireMfa', v)} />
          <Check id="requireDpop" label="Require DPoP-bound tokens" checked={draft.requireDpop} onChange={(v) => set('requireDpop', v)} />
          <Check id="firstParty" label="First-party (no consent screen)" checked={draft.firstParty} onChange={(v) => set('firstParty', v)} />
          {writable && (
            <div class="actions">
              <button type="submit" class="primary">
                Save changes
              </button>
            </div>
          )}
        </fieldset>
      </form>
      {writable && (
        <section aria-labelledby="client-actions">
          <h2 id="client-actions">Actions</h2>
          <div class="actions">
            <button type="button" onClick={() => void toggle()}>
              {current.disabled ? 'Enable client' : 'Disable client'}
            </button>
            {current.hasSecret && (
              <button type="button" onClick={() => void rotate()}>
                Rotate secret
              </button>
            )}
            <button type="button" class="danger" onClick={() => void remove()}>
              Delete client
            </button>
          </div>
        </section>
      )}
      <p class="muted">Grants: {show(current.grants)}</p>
    </>
  );
}
