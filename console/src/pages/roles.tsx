// Roles: scopes on one API, and the people who hold them.
import { useState } from 'preact/hooks';
import { ApiError, call, can, type Page } from '../api.ts';
import { href, navigate, type Route } from '../router.ts';
import { ConflictView, ErrorBox, Field, FormError, Link, Loading, Pager, Status, isConflict, isNotFound, useConfirm, useLoad, words } from '../ui.tsx';
import type { Person } from './people.tsx';

interface Role {
  name: string;
  resource: string;
  scopes: string[];
  accountCount: number;
  builtIn: boolean;
}

export function Roles({ route }: { route: Route }) {
  const rest = route.path.slice('/roles'.length);
  if (rest === '/new' && can('gatehouse:resources:write')) return <NewRole />;
  if (rest.length > 1) return <RoleDetail name={decodeURIComponent(rest.slice(1))} route={route} />;
  return <RoleList route={route} />;
}

function RoleList({ route }: { route: Route }) {
  const cursor = route.query.get('cursor');
  const api = route.query.get('api') ?? '';
  const load = useLoad(() => call<Page<Role>>('/roles', { query: { cursor: cursor ?? undefined, resource: api || undefined, limit: '25' } }), `${cursor}|${api}`);
  return (
    <>
      <div class="title-row">
        <h1>Roles</h1>
        {can('gatehouse:resources:write') && (
          <Link to="/roles/new" class="button primary">
            New role
          </Link>
        )}
      </div>
      {api && (
        <p>
          Roles on <span class="mono">{api}</span>. <Link to="/roles">All roles</Link>
        </p>
      )}
      {load.loading && <Loading />}
      <ErrorBox error={load.error} />
      {load.data && (
        <>
          <table>
            <caption class="sr-only">Roles</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">API</th>
                <th scope="col">Scopes</th>
                <th scope="col">Members</th>
              </tr>
            </thead>
            <tbody>
              {load.data.body.items.map((r) => (
                <tr key={r.name}>
                  <td>
                    <Link to={`/roles/${encodeURIComponent(r.name)}`}>{r.name}</Link>
                    {r.builtIn && <span class="badge">built-in</span>}
                  </td>
                  <td class="mono">{r.resource}</td>
                  <td>{r.scopes.join(' ')}</td>
                  <td>{r.accountCount}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager cursor={cursor} next={load.data.body.nextCursor} go={(c) => navigate(href('/roles', { api, cursor: c }))} />
        </>
      )}
    </>
  );
}

function NewRole() {
  const [name, setName] = useState('');
  const [resource, setResource] = useState('');
  const [scopes, setScopes] = useState('');
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const r = await call<Role>('/roles', { method: 'POST', body: { name, resource, scopes: words(scopes) } });
      navigate(`/roles/${encodeURIComponent(r.body.name)}`);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <h1>New role</h1>
      <form novalidate onSubmit={(e) => void submit(e)}>
        <FormError error={error} fields={['name', 'resource', 'scopes']} />
        <Field id="name" label="Name" error={error}>
          {(a) => <input {...a} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />}
        </Field>
        <Field id="resource" label="API (resource identifier)" error={error}>
          {(a) => <input {...a} value={resource} onInput={(e) => setResource((e.target as HTMLInputElement).value)} />}
        </Field>
        <Field id="scopes" label="Scopes" hint="Separated by spaces." error={error}>
          {(a) => <input {...a} value={scopes} onInput={(e) => setScopes((e.target as HTMLInputElement).value)} />}
        </Field>
        <div class="actions">
          <button type="submit" class="primary">
            Create role
          </button>
        </div>
      </form>
    </>
  );
}

function RoleDetail({ name, route }: { name: string; route: Route }) {
  const path = `/roles/${encodeURIComponent(name)}`;
  const role = useLoad(() => call<Role>(path), name);
  const cursor = route.query.get('cursor');
  const members = useLoad(
    () => (can('gatehouse:users:read') ? call<Page<Person>>(`${path}/members`, { query: { cursor: cursor ?? undefined, limit: '25' } }).then((r) => r.body) : Promise.resolve(undefined)),
    `${name}|${cursor}`,
  );
  const [email, setEmail] = useState('');
  const [scopes, setScopes] = useState<string | null>(null);
  const [conflict, setConflict] = useState<Role | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [status, setStatus] = useState('');
  const [dialog, confirm] = useConfirm();
  const writable = can('gatehouse:resources:write');
  const assign = can('gatehouse:users:write');
  const add = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      const found = await call<Page<Person>>('/users', { query: { email, limit: '2' } });
      const person = found.body.items.find((p) => p.email === email.trim().toLowerCase()) ?? (found.body.items.length === 1 ? found.body.items[0] : undefined);
      if (!person) throw new ApiError({ status: 422, title: 'Validation failed', detail: 'no such person', errors: [{ field: 'member-email', message: 'nobody has this email address' }] });
      await call(`/users/${person.id}/roles/${encodeURIComponent(name)}`, { method: 'PUT' });
      setStatus(`${person.email} now holds ${name}.`);
      setEmail('');
      members.reload();
      role.reload();
    } catch (err) {
      setError(err);
    }
  };
  const removeMember = async (p: Person) => {
    if (!(await confirm({ title: `Take ${name} from ${p.email}?`, body: <p>Tokens issued afterwards no longer carry its scopes.</p>, confirm: 'Remove', danger: true }))) return;
    try {
      await call(`/users/${p.id}/roles/${encodeURIComponent(name)}`, { method: 'DELETE' });
      members.reload();
      role.reload();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async () => {
    if (!(await confirm({ title: `Delete the role ${name}?`, body: <p>Everyone holding it loses it.</p>, confirm: 'Delete role', danger: true }))) return;
    try {
      await call(path, { method: 'DELETE', ifMatch: role.data?.etag ?? null });
      navigate('/roles');
    } catch (err) {
      setError(err);
    }
  };
  const saveScopes = async (ifMatch: string | null) => {
    setError(null);
    try {
      await call(path, { method: 'PATCH', body: { scopes: words(scopes ?? '') }, ifMatch });
      setStatus('Saved.');
      setConflict(null);
      setScopes(null);
      role.reload();
    } catch (err) {
      if (isConflict(err)) setConflict((await call<Role>(path)).body);
      else setError(err);
    }
  };
  if (!role.data) return role.loading ? <Loading /> : <ErrorBox error={role.error} />;
  const r = role.data.body;
  return (
    <>
      {dialog}
      <div class="title-row">
        <h1>Role {r.name}</h1>
        {r.builtIn && <span class="badge">built-in</span>}
      </div>
      <p>
        <Link to="/roles">All roles</Link>
      </p>
      <dl class="facts">
        <dt>API</dt>
        <dd class="mono">{r.resource}</dd>
        <dt>Scopes</dt>
        <dd>{r.scopes.join(' ')}</dd>
        <dt>Members</dt>
        <dd>{r.accountCount}</dd>
      </dl>
      {status && <Status text={status} />}
      <ErrorBox error={error instanceof ApiError && error.fieldError('member-email') ? null : error} />
      <section aria-labelledby="members-title">
        <h2 id="members-title">Members</h2>
        {members.loading && <Loading />}
        {!isNotFound(members.error) && <ErrorBox error={members.error} />}
        {members.data && (
          <>
            <ul class="plain">
              {members.data.items.map((p) => (
                <li key={p.id}>
                  <Link to={`/people/${p.id}`}>{p.email}</Link>
                  {assign && (
                    <button type="button" class="small" onClick={() => void removeMember(p)} aria-label={`Remove ${p.email} from ${r.name}`}>
                      Remove
                    </button>
                  )}
                </li>
              ))}
            </ul>
            {members.data.items.length === 0 && <p class="muted">Nobody holds this role.</p>}
            <Pager cursor={cursor} next={members.data.nextCursor} go={(c) => navigate(href(`/roles/${encodeURIComponent(name)}`, { cursor: c }))} />
          </>
        )}
        {assign && (
          <form class="filters" novalidate onSubmit={(e) => void add(e)}>
            <Field id="member-email" label="Give this role to (email)" error={error}>
              {(a) => <input {...a} type="email" value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />}
            </Field>
            <button type="submit">Add member</button>
          </form>
        )}
      </section>
      {conflict && (
        <ConflictView
          mine={{ scopes: words(scopes ?? '') }}
          theirs={{ scopes: conflict.scopes }}
          onReload={() => {
            setConflict(null);
            setScopes(null);
            role.reload();
          }}
          onOverwrite={() => void saveScopes(null)}
        />
      )}
      {writable && !r.builtIn && (
        <form
          class="filters"
          novalidate
          onSubmit={(e) => {
            e.preventDefault();
            void saveScopes(role.data?.etag ?? null);
          }}
        >
          <Field id="scopes" label="Scopes" hint="Separated by spaces." error={error}>
            {(a) => <input {...a} value={scopes ?? r.scopes.join(' ')} onInput={(e) => setScopes((e.target as HTMLInputElement).value)} />}
          </Field>
          <button type="submit">Save scopes</button>
        </form>
      )}
      {writable && !r.builtIn && (
        <div class="actions">
          <button type="button" class="danger" onClick={() => void remove()}>
            Delete role
          </button>
        </div>
      )}
    </>
  );
}
