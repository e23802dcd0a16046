// People: search, invite (or add), and one person: details, disable, reset
// MFA, end sessions, roles, factors and sessions. Features whose admin-API
// operation this Gatehouse lacks (invitations, factors, sessions) are hidden.
import { useState } from 'preact/hooks';
import { call, can, offers, type Page } from '../api.ts';
import { href, navigate, type Route } from '../router.ts';
import { ConflictView, ErrorBox, Field, FormError, Link, Loading, Pager, Status, isConflict, show, useConfirm, useLoad, when } from '../ui.tsx';

export interface Person {
  id: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  disabled: boolean;
  hasPassword: boolean;
  mfaEnabled: boolean;
  createdAt: string;
  lastLoginAt: string | null;
  version: number;
}

export function People({ route }: { route: Route }) {
  const rest = route.path.slice('/people'.length);
  if (rest === '/new' && can('gatehouse:users:write')) return <Invite />;
  if (rest.length > 1) return <PersonDetail id={decodeURIComponent(rest.slice(1))} />;
  return <PeopleList route={route} />;
}

function PeopleList({ route }: { route: Route }) {
  const email = route.query.get('email') ?? '';
  const cursor = route.query.get('cursor');
  const [text, setText] = useState(email);
  const load = useLoad(() => call<Page<Person>>('/users', { query: { email, cursor: cursor ?? undefined, limit: '25' } }), `${email}|${cursor}`);
  return (
    <>
      <div class="title-row">
        <h1>People</h1>
        {can('gatehouse:users:write') && (
          <Link to="/people/new" class="button primary">
            Invite someone
          </Link>
        )}
      </div>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(href('/people', { email: text }));
        }}
      >
        <div class="field">
          <label for="people-search">Search by email</label>
          <input id="people-search" type="search" value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
        </div>
        <button type="submit">Search</button>
      </form>
      {load.loading && <Loading />}
      <ErrorBox error={load.error} />
      {load.data && (
        <>
          <table>
            <caption class="sr-only">People</caption>
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Name</th>
                <th scope="col">MFA</th>
                <th scope="col">Status</th>
                <th scope="col">Last sign-in</th>
              </tr>
            </thead>
            <tbody>
              {load.data.body.items.map((p) => (
                <tr key={p.id}>
                  <td>
                    <Link to={`/people/${p.id}`}>{p.email}</Link>
                  </td>
                  <td>{show(p.name)}</td>
                  <td>{p.mfaEnabled ? 'on' : 'off'}</td>
                  <td>{p.disabled ? <span class="badge off">Disabled</span> : <span class="badge on">Active</span>}</td>
                  <td>{when(p.lastLoginAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {load.data.body.items.length === 0 && <p class="muted">Nobody matches.</p>}
          <Pager cursor={cursor} next={load.data.body.nextCursor} go={(c) => navigate(href('/people', { email, cursor: c }))} />
        </>
      )}
    </>
  );
}

function Invite() {
  const invites = useLoad(() => offers('post', '/users/invitations'), 'invites');
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [roles, setRoles] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [status, setStatus] = useState('');
  if (invites.loading) return <Loading />;
  const inviting = invites.data === true;
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      if (inviting) {
        const roleNames = roles.split(/[\s,]+/).filter(Boolean);
        const r = await call<{ mailed: boolean; mailError?: string; user: { id: string } }>('/users/invitations', {
          method: 'POST',
          body: { email, ...(name && { name }), ...(roleNames.length && { roles: roleNames }) },
        });
        if (r.body.mailed) {
          setStatus(`Invitation sent to ${email}.`);
          setEmail('');
          setName('');
          setRoles('');
        } else {
          setError(new Error(`${email} was added, but the mail did not go out (${r.body.mailError ?? 'mail server refused it'}). Resend it from their page.`));
        }
      } else {
        const r = await call<Person>('/users', { method: 'POST', body: { email, name: name || null, ...(password && { password }) } });
        for (const role of roles.split(/[\s,]+/).filter(Boolean)) await call(`/users/${r.body.id}/roles/${encodeURIComponent(role)}`, { method: 'PUT' });
        navigate(`/people/${r.body.id}`);
      }
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <h1>{inviting ? 'Invite someone' : 'Add a person'}</h1>
      <p>
        <Link to="/people">All people</Link>
      </p>
      {!inviting && <p class="muted">This Gatehouse sends no invitations: give the person a first password, or none and set it later.</p>}
      {status && <Status text={status} />}
      <form novalidate onSubmit={(e) => void submit(e)}>
        <FormError error={error} fields={['email', 'name', 'password', 'roles']} />
        <Field id="email" label="Email address" error={error}>
          {(a) => <input {...a} type="email" value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />}
        </Field>
        <Field id="name" label="Name (optional)" error={error}>
          {(a) => <input {...a} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />}
        </Field>
        <Field id="roles" label="Roles (optional)" hint="Role names, separated by commas or spaces." error={error}>
          {(a) => <input {...a} value={roles} onInput={(e) => setRoles((e.target as HTMLInputElement).value)} />}
        </Field>
        {!inviting && (
          <Field id="password" label="First password (optional)" error={error}>
            {(a) => <input {...a} type="password" autocomplete="new-password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />}
          </Field>
        )}
        <div class="actions">
          <button type="submit" class="primary">
            {inviting ? 'Send invitation' : 'Add person'}
          </button>
        </div>
      </form>
    </>
  );
}

interface Item {
  id: string;
  [k: string]: unknown;
}

function PersonDetail({ id }: { id: string }) {
  const path = `/users/${encodeURIComponent(id)}`;
  const load = useLoad(() => call<Person>(path), id);
  const roles = useLoad(() => call<{ items: { name: string; resource: string; scopes: string[] }[] }>(`${path}/roles`).then((r) => r.body.items), `${id}|roles`);
  const factors = useLoad(
    async () => ((await offers('get', '/users/{id}/factors')) ? (await call<{ items: Item[] }>(`${path}/factors`)).body.items : undefined),
    `${id}|factors`,
  );
  const sessions = useLoad(
    async () => ((await offers('get', '/users/{id}/sessions')) ? (await call<{ items: Item[] }>(`${path}/sessions`)).body.items : undefined),
    `${id}|sessions`,
  );
  const resend = useLoad(() => offers('post', '/users/{id}/invitation:resend'), 'resend');
  const [error, setError] = useState<unknown>(null);
  const [status, setStatus] = useState('');
  const [conflict, setConflict] = useState<Person | null>(null);
  const [role, setRole] = useState('');
  const [dialog, confirm] = useConfirm();
  const writable = can('gatehouse:users:write');
  if (!load.data) return load.loading ? <Loading /> : <ErrorBox error={load.error} />;
  const p = load.data.body;
  const etag = load.data.etag;

  const act = async (fn: () => Promise<unknown>, done: string, reload = true) => {
    setError(null);
    setStatus('');
    try {
      await fn();
      setStatus(done);
      if (reload) load.reload();
      factors.reload();
      sessions.reload();
      roles.reload();
    } catch (err) {
      if (isConflict(err)) {
        const now = await call<Person>(path);
        setConflict(now.body);
      } else setError(err);
    }
  };
  const toggle = async () => {
    if (!p.disabled && !(await confirm({ title: `Disable ${p.email}?`, body: <p>They cannot sign in, and their sessions end.</p>, confirm: 'Disable', danger: true }))) return;
    await act(() => call(path, { method: 'PATCH', body: { disabled: !p.disabled }, ifMatch: etag }), p.disabled ? 'Enabled.' : 'Disabled.');
  };
  const resetMfa = async () => {
    if (!(await confirm({ title: `Reset the second factor of ${p.email}?`, body: <p>Their authenticator and recovery codes stop working; they enrol again at their next sign-in.</p>, confirm: 'Reset MFA', danger: true })))
      return;
    await act(() => call(`${path}/mfa:reset`, { method: 'POST' }), 'MFA reset.');
  };
  const endSessions = async () => {
    if (!(await confirm({ title: `Sign ${p.email} out everywhere?`, body: <p>Every session, grant and refresh token of theirs ends now.</p>, confirm: 'End all sessions', danger: true })))
      return;
    await act(() => call(`${path}/sessions:revoke`, { method: 'POST' }), 'All sessions ended.');
  };
  const removeItem = async (kind: 'factors' | 'sessions', item: Item) => {
    const what = kind === 'factors' ? 'factor' : 'session';
    if (!(await confirm({ title: `Remove this ${what}?`, body: <p>{show(item.type ?? item.id)}</p>, confirm: `Remove ${what}`, danger: true }))) return;
    await act(() => call(`${path}/${kind}/${encodeURIComponent(item.id)}`, { method: 'DELETE' }), `The ${what} was removed.`);
  };
  return (
    <>
      {dialog}
      <div class="title-row">
        <h1>{p.name ?? p.email}</h1>
        {p.disabled ? <span class="badge off">Disabled</span> : <span class="badge on">Active</span>}
      </div>
      <p>
        <Link to="/people">All people</Link>
      </p>
      <dl class="facts">
        <dt>Email</dt>
        <dd>
          {p.email} {p.emailVerified ? '(verified)' : '(not verified)'}
        </dd>
        <dt>Password</dt>
        <dd>{p.hasPassword ? 'set' : 'none yet'}</dd>
        <dt>Second factor</dt>
        <dd>{p.mfaEnabled ? 'on' : 'off'}</dd>
        <dt>Last sign-in</dt>
        <dd>{when(p.lastLoginAt)}</dd>
        <dt>Id</dt>
        <dd class="mono">{p.id}</dd>
      </dl>
      {status && <Status text={status} />}
      <ErrorBox error={error} />
      {conflict && (
        <ConflictView
          mine={{ disabled: !p.disabled }}
          theirs={{ disabled: conflict.disabled }}
          onReload={() => {
            setConflict(null);
            load.reload();
          }}
          onOverwrite={() => void act(() => call(path, { method: 'PATCH', body: { disabled: !p.disabled } }), 'Saved.').then(() => setConflict(null))}
        />
      )}
      {writable && (
        <div class="actions">
          <button type="button" onClick={() => void toggle()}>
            {p.disabled ? 'Enable' : 'Disable'}
          </button>
          <button type="button" onClick={() => void resetMfa()}>
            Reset MFA
          </button>
          <button type="button" class="danger" onClick={() => void endSessions()}>
            End all sessions
          </button>
          {resend.data && !p.hasPassword && (
            <button type="button" onClick={() => void act(() => call(`${path}/invitation:resend`, { method: 'POST' }), 'Invitation sent again.', false)}>
              Resend invitation
            </button>
          )}
        </div>
      )}
      <section aria-labelledby="roles-title">
        <h2 id="roles-title">Roles</h2>
        <ErrorBox error={roles.error} />
        {roles.data && (
          <ul class="plain">
            {roles.data.map((r) => (
              <li key={r.name}>
                {can('gatehouse:resources:read') ? <Link to={`/roles/${encodeURIComponent(r.name)}`}>{r.name}</Link> : r.name}{' '}
                <span class="muted">
                  on {r.resource}: {r.scopes.join(' ')}
                </span>
                {writable && (
                  <button
                    type="button"
                    class="small"
                    aria-label={`Remove ${r.name}`}
                    onClick={() => void act(() => call(`${path}/roles/${encodeURIComponent(r.name)}`, { method: 'DELETE' }), `${r.name} taken away.`, false)}
                  >
                    Remove
                  </button>
                )}
              </li>
            ))}
            {roles.data.length === 0 && <li class="muted">No role.</li>}
          </ul>
        )}
        {writable && (
          <form
            class="filters"
            novalidate
            onSubmit={(e) => {
              e.preventDefault();
              void act(() => call(`${path}/roles/${encodeURIComponent(role.trim())}`, { method: 'PUT' }), `${role} given.`, false).then(() => setRole(''));
            }}
          >
            <Field id="role" label="Give a role (name)">
              {(a) => <input {...a} value={role} onInput={(e) => setRole((e.target as HTMLInputElement).value)} />}
            </Field>
            <button type="submit">Give role</button>
          </form>
        )}
      </section>
      {factors.data && <Items title="Second factors" kind="factors" items={factors.data} writable={writable} remove={removeItem} />}
      {sessions.data && <Items title="Sessions" kind="sessions" items={sessions.data} writable={writable} remove={removeItem} />}
    </>
  );
}

function Items(props: { title: string; kind: 'factors' | 'sessions'; items: Item[]; writable: boolean; remove: (k: 'factors' | 'sessions', i: Item) => Promise<void> }) {
  const cols = [...new Set(props.items.flatMap((i) => Object.keys(i)))].filter((k) => k !== 'id').slice(0, 5);
  return (
    <section aria-labelledby={`${props.kind}-title`}>
      <h2 id={`${props.kind}-title`}>{props.title}</h2>
      {props.items.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Id</th>
              {cols.map((c) => (
                <th scope="col" key={c}>
                  {c}
                </th>
              ))}
              {props.writable && <th scope="col">Action</th>}
            </tr>
          </thead>
          <tbody>
            {props.items.map((i) => (
              <tr key={i.id}>
                <td class="mono">{i.id.slice(0, 12)}</td>
                {cols.map((c) => (
                  <td key={c}>{/At$/.test(c) ? when(i[c]) : show(i[c])}</td>
                ))}
                {props.writable && (
                  <td>
                    <button type="button" class="small" onClick={() => void props.remove(props.kind, i)}>
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
