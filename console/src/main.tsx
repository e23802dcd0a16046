// The Gatehouse admin console: signs in with the built-in public client,
// then shows the pages the person's admin-API scopes allow.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { BASE, can, completeSignIn, currentSession, features, loadFeatures, signIn, signOut } from './api.ts';
import { navigate, useRoute, type Route } from './router.ts';
import { ErrorBox, Link } from './ui.tsx';
import { Overview } from './pages/overview.tsx';
import { Clients } from './pages/clients.tsx';
import { Apis } from './pages/apis.tsx';
import { Roles } from './pages/roles.tsx';
import { People } from './pages/people.tsx';
import { Keys } from './pages/keys.tsx';
import { Audit } from './pages/audit.tsx';
import { AccessMap } from './pages/access-map.tsx';
import './style.css';

interface Section {
  path: string;
  label: string;
  visible: () => boolean;
  page: (r: Route) => preact.JSX.Element;
}

const SECTIONS: Section[] = [
  { path: '/overview', label: 'Overview', visible: () => can('gatehouse:audit:read') || can('gatehouse:keys:read'), page: () => <Overview /> },
  { path: '/clients', label: 'Clients', visible: () => can('gatehouse:clients:read'), page: (r) => <Clients route={r} /> },
  { path: '/apis', label: 'APIs', visible: () => can('gatehouse:resources:read'), page: (r) => <Apis route={r} /> },
  { path: '/roles', label: 'Roles', visible: () => can('gatehouse:resources:read'), page: (r) => <Roles route={r} /> },
  { path: '/people', label: 'People', visible: () => can('gatehouse:users:read'), page: (r) => <People route={r} /> },
  { path: '/keys', label: 'Keys', visible: () => can('gatehouse:keys:read'), page: () => <Keys /> },
  { path: '/audit', label: 'Audit', visible: () => can('gatehouse:audit:read'), page: (r) => <Audit route={r} /> },
  {
    path: '/access-map',
    label: 'Access map',
    visible: () => features.accessMap && can('gatehouse:clients:read') && can('gatehouse:resources:read'),
    page: (r) => <AccessMap route={r} />,
  },
];

function Shell() {
  const route = useRoute();
  const sections = SECTIONS.filter((s) => s.visible());
  const section = sections.find((s) => route.path === s.path || route.path.startsWith(`${s.path}/`));
  const mainRef = useRef<HTMLElement>(null);
  const first = useRef(true);
  useEffect(() => {
    if (!section && sections[0] && (route.path === '/' || route.path === '')) navigate(sections[0].path, true);
  }, [route.path]);
  // after a navigation, focus moves to the new page's heading (keyboard and screen-reader users start there)
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const h = mainRef.current?.querySelector('h1');
    if (h) {
      h.setAttribute('tabindex', '-1');
      h.focus();
    }
  }, [section?.path]);
  const s = currentSession();
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Gatehouse console</span>
        <nav aria-label="Console sections">
          <ul>
            {sections.map((x) => (
              <li key={x.path}>
                <Link to={x.path} aria-current={x === section ? 'page' : undefined}>
                  {x.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          <span class="muted">{s?.name}</span>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" ref={mainRef}>
        {section ? (
          section.page(route)
        ) : sections.length === 0 ? (
          <>
            <h1>No access</h1>
            <p>Your account holds no role on the Gatehouse admin API. Ask an administrator for one (for example gatehouse-admin, or a narrower role).</p>
          </>
        ) : (
          <>
            <h1>Not found</h1>
            <p>
              There is no such page, or your roles do not let you see it. <Link to={sections[0]!.path}>Go to {sections[0]!.label}</Link>.
            </p>
          </>
        )}
      </main>
    </>
  );
}

function App() {
  const route = useRoute();
  const [ready, setReady] = useState(!!currentSession());
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (currentSession()) return;
    if (route.path === '/callback') {
      completeSignIn(route.query).then(
        async (to) => {
          await loadFeatures();
          history.replaceState(null, '', to);
          setReady(true);
          navigate(to.slice(BASE.length) || '/', true);
        },
        (e: unknown) => setError(e),
      );
    } else {
      void signIn(`${location.pathname}${location.search}`);
    }
  }, []);
  if (error) {
    return (
      <main id="main">
        <h1>Sign-in failed</h1>
        <ErrorBox error={error} />
        <button type="button" class="primary" onClick={() => void signIn(`${BASE}/`)}>
          Sign in again
        </button>
      </main>
    );
  }
  if (!ready) {
    return (
      <main id="main">
        <h1>Gatehouse console</h1>
        <p role="status">Signing you in…</p>
      </main>
    );
  }
  return <Shell />;
}

render(<App />, document.getElementById('app')!);
