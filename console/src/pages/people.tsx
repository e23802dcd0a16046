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

/** GET /users/{id}/factors (UserFactors in the OpenAPI document) */
interface Factor {
  /** 'totp' for the authenticator app, the passkey's id for a passkey */
  id: string;
  type: 'totp' | 'passkey';
  name: string;
  createdAt: string | null;
  lastUsedAt: string | null;
  backedUp?: boolean;
  deviceType?: string;
}
interface Factors {
  emailVerified: boolean;
  items: Factor[];
  recoveryCodesLeft: number;
}

/** GET /users/{id}/sessions (SessionView): a session is named by its uid */
interface SignInSession {
  uid: string;
  loginAt: string | null;
  expiresAt: string | null;
  clients: string[];
  acr: string | null;
  amr: string[];
  userAgent: string | null;
  ip: string | null;
  lastUsedAt: string | null;
}

const factorLabel = (f: Factor) => (f.type === 'totp' ? 'the authenticator app' : `the passkey “${f.name}”`);
const sessionLabel = (s: SignInSession) => `session from ${when(s.loginAt)}${s.userAgent ? ` on ${s.userAgent}` : ''}`;

function PersonDetail({ id }: { id: string }) {
  const path = `/users/${encodeURIComponent(id)}`;
  const load = useLoad(() => call<Person>(path), id);
  const roles = useLoad(() => call<{ items: { name: string; resource: string; scopes: string[] }[] }>(`${path}/roles`).then((r) => r.body.items), `${id}|roles`);
  const factors = useLoad(async () => ((await offers('get', '/users/{id}/factors')) ? (await call<Factors>(`${path}/factors`)).body : undefined), `${id}|factors`);
  const sessions = useLoad(
    async () => ((await offers('get', '/users/{id}/sessions')) ? (await call<{ items: SignInSession[] }>(`${path}/sessions`)).body.items : undefined),
    `${id}|sessions`,
  );
  const resend = useLoad(() => offers('post', '/users/{id}/invitation:resend'), 'resend');
  const [error, setError] = useState<unknown>(null);
  const [status, setStatus] = useState('');
  const [conflict, setConflict] = useState<Person | null>(null);
  const [role, setRole] = useState('');
  const [profile, setProfile] = useState<{ name: string; email: string } | null>(null);
  const [dialog, confirm] = useConfirm();
  const writable = can('gatehouse:users:write');
  if (!load.data) return load.loading ? <Loading /> : <ErrorBox error={load.error} />;
  const p = load.data.body;
  const etag = load.data.etag;
  const draft = profile ?? { name: p.name ?? '', email: p.email };
  const saveProfile = async (ifMatch: string | null) => {
    setError(null);
    setStatus('');
    try {
      await call(path, { method: 'PATCH', body: { name: draft.name.trim() === '' ? null : draft.name, ...(draft.email !== p.email && { email: draft.email }) }, ifMatch });
      setProfile(null);
      setConflict(null);
      setStatus('Saved.');
      load.reload();
    } catch (err) {
      if (isConflict(err)) setConflict((await call<Person>(path)).body);
      else setError(err);
    }
  };

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
  const removeFactor = async (f: Factor) => {
    const what = factorLabel(f);
    if (
      !(await confirm({
        title: `Remove ${what} of ${p.email}?`,
        body: <p>It stops working for their sign-in at once. Their other factors and recovery codes stay.</p>,
        confirm: f.type === 'totp' ? 'Remove authenticator app' : 'Remove passkey',
        danger: true,
      }))
    )
      return;
    await act(() => call(`${path}/factors/${encodeURIComponent(f.id)}`, { method: 'DELETE' }), `Removed ${what}.`);
  };
  const endSession = async (s: SignInSession) => {
    const what = sessionLabel(s);
    if (!(await confirm({ title: `End this ${what}?`, body: <p>That device is signed out, and the grants and refresh tokens of this session end now.</p>, confirm: 'End session', danger: true })))
      return;
    await act(() => call(`${path}/sessions/${encodeURIComponent(s.uid)}`, { method: 'DELETE' }), `Ended the ${what}.`);
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
          mine={profile ? { name: draft.name, email: draft.email } : { disabled: !p.disabled }}
          theirs={profile ? { name: conflict.name ?? '', email: conflict.email } : { disabled: conflict.disabled }}
          onReload={() => {
            setConflict(null);
            setProfile(null);
            load.reload();
          }}
          onOverwrite={() =>
            profile ? void saveProfile(null) : void act(() => call(path, { method: 'PATCH', body: { disabled: !p.disabled } }), 'Saved.').then(() => setConflict(null))
          }
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
      {writable && (
        <form
          novalidate
          onSubmit={(e) => {
            e.preventDefault();
            void saveProfile(etag);
          }}
        >
          <fieldset>
            <legend>Profile</legend>
            <Field id="name" label="Name" error={error}>
              {(a) => <input {...a} value={draft.name} onInput={(e) => setProfile({ ...draft, name: (e.target as HTMLInputElement).value })} />}
            </Field>
            <Field id="email" label="Email address" hint="A new address is unverified until they confirm it." error={error}>
              {(a) => <input {...a} type="email" value={draft.email} onInput={(e) => setProfile({ ...draft, email: (e.target as HTMLInputElement).value })} />}
            </Field>
            <button type="submit" class="primary">
              Save profile
            </button>
          </fieldset>
        </form>
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
      {factors.data && <FactorList factors={factors.data} writable={writable} remove={removeFactor} />}
      <ErrorBox error={factors.error} />
      {sessions.data && <SessionList sessions={sessions.data} writable={writable} end={endSession} />}
      <ErrorBox error={sessions.error} />
    </>
  );
}

function FactorList({ factors, writable, remove }: { factors: Factors; writable: boolean; remove: (f: Factor) => Promise<void> }) {
  return (
    <section aria-labelledby="factors-title">
      <h2 id="factors-title">Second factors</h2>
      {factors.items.length === 0 ? (
        <p class="muted">No authenticator app or passkey.</p>
      ) : (
        <table>
          <caption class="sr-only">Second factors</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Kind</th>
              <th scope="col">Added</th>
              <th scope="col">Last used</th>
              {writable && <th scope="col">Action</th>}
            </tr>
          </thead>
          <tbody>
            {factors.items.map((f) => (
              <tr key={f.id}>
                <td>{f.name}</td>
                <td>{f.type === 'totp' ? 'Authenticator app' : `Passkey${f.backedUp ? ' (synced)' : f.deviceType === 'singleDevice' ? ' (this device only)' : ''}`}</td>
                <td>{when(f.createdAt)}</td>
                <td>{when(f.lastUsedAt)}</td>
                {writable && (
                  <td>
                    <button type="button" class="small" aria-label={`Remove ${factorLabel(f)}`} onClick={() => void remove(f)}>
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="muted">Recovery codes left: {factors.recoveryCodesLeft}</p>
    </section>
  );
}

function SessionList({ sessions, writable, end }: { sessions: SignInSession[]; writable: boolean; end: (s: SignInSession) => Promise<void> }) {
  return (
    <section aria-labelledby="sessions-title">
      <h2 id="sessions-title">Sessions</h2>
      {sessions.length === 0 ? (
        <p class="muted">Not signed in anywhere.</p>
      ) : (
        <table>
          <caption class="sr-only">Sessions</caption>
          <thead>
            <tr>
              <th scope="col">Signed in</th>
              <th scope="col">Last used</th>
              <th scope="col">Device</th>
              <th scope="col">Address</th>
              <th scope="col">Apps</th>
              <th scope="col">Methods</th>
              {writable && <th scope="col">Action</th>}
            </tr>
          </thead>
          <tbody>
            {sessions.map((s) => (
              <tr key={s.uid}>
                <td>{when(s.loginAt)}</td>
                <td>{when(s.lastUsedAt)}</td>
                <td>{show(s.userAgent)}</td>
                <td class="mono">{show(s.ip)}</td>
                <td>{show(s.clients)}</td>
                <td>{show(s.amr)}</td>
                {writable && (
                  <td>
                    <button type="button" class="small" aria-label={`End ${sessionLabel(s)}`} onClick={() => void end(s)}>
                      End session
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
