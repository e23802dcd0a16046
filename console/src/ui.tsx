// Shared pieces of the console's pages: links, loading, errors next to
// fields, paging, confirmation, copy, diffs and the conflict view.
import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, BASE } from './api.ts';
import { navigate } from './router.ts';

export function Link(props: { to: string; children: ComponentChildren; class?: string; 'aria-current'?: 'page' | undefined }) {
  const onClick = (e: MouseEvent) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={`${BASE}${props.to}`} onClick={onClick} class={props.class} aria-current={props['aria-current']}>
      {props.children}
    </a>
  );
}

export interface Load<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Runs `fn` when `key` changes; `reload()` runs it again. */
export function useLoad<T>(fn: () => Promise<T>, key: string): Load<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => live && setState({ data, loading: false }),
      (error: unknown) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [key, n]);
  return { data: state.data, error: state.error, loading: state.loading, reload: useCallback(() => setN((x) => x + 1), []) };
}

export const isNotFound = (e: unknown) => e instanceof ApiError && e.status === 404;
export const isConflict = (e: unknown) => e instanceof ApiError && e.status === 412;

export function messageOf(e: unknown): string {
  if (e instanceof ApiError) return `${e.problem.title}: ${e.problem.detail}`;
  return e instanceof Error ? e.message : String(e);
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      {messageOf(error)}
    </div>
  );
}

export function Loading() {
  return (
    <p class="muted" role="status">
      Loading…
    </p>
  );
}

/** A labelled control with its error (from the problem's `errors`) right next to it. */
export function Field(props: {
  id: string;
  label: string;
  error?: unknown;
  /** the API's field name, when it differs from id */
  field?: string;
  hint?: string;
  children: (attrs: { id: string; 'aria-invalid'?: 'true'; 'aria-describedby'?: string }) => JSX.Element;
}) {
  const msg = props.error instanceof ApiError ? props.error.fieldError(props.field ?? props.id) : undefined;
  const described = [props.hint && `${props.id}-hint`, msg && `${props.id}-error`].filter(Boolean).join(' ');
  return (
    <div class={`field${msg ? ' invalid' : ''}`}>
      <label for={props.id}>{props.label}</label>
      {props.hint && (
        <small id={`${props.id}-hint`} class="hint">
          {props.hint}
        </small>
      )}
      {props.children({ id: props.id, ...(msg && { 'aria-invalid': 'true' as const }), ...(described && { 'aria-describedby': described }) })}
      {msg && (
        <small id={`${props.id}-error`} class="field-error">
          {msg}
        </small>
      )}
    </div>
  );
}

/** Errors that name no field shown here, or a field this form has no control for. */
export function FormError({ error, fields }: { error: unknown; fields: string[] }) {
  if (!error) return null;
  if (error instanceof ApiError && error.problem.errors?.length && error.problem.errors.every((e) => fields.some((f) => e.field === f || e.field.startsWith(`${f}.`)))) {
    return (
      <div class="error" role="alert">
        {error.problem.title}: see the fields marked below.
      </div>
    );
  }
  return <ErrorBox error={error} />;
}

export function Check(props: { id: string; label: string; checked: boolean; disabled?: boolean; onChange: (v: boolean) => void }) {
  return (
    <div class="check">
      <input type="checkbox" id={props.id} checked={props.checked} disabled={props.disabled} onChange={(e) => props.onChange((e.target as HTMLInputElement).checked)} />
      <label for={props.id}>{props.label}</label>
    </div>
  );
}

/** First page / next page; the cursor lives in the URL. */
export function Pager({ cursor, next, go }: { cursor: string | null; next: string | null | undefined; go: (cursor: string | null) => void }) {
  if (!cursor && !next) return null;
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled={!cursor} onClick={() => go(null)}>
        First page
      </button>
      <button type="button" disabled={!next} onClick={() => next && go(next)}>
        Next page
      </button>
    </nav>
  );
}

export interface ConfirmRequest {
  title: string;
  body: ComponentChildren;
  confirm: string;
  danger?: boolean;
  /** a word the person must type, for the most dangerous actions */
  typeToConfirm?: string;
}

/** A modal confirmation: Escape or Cancel says no; focus starts on Cancel and stays inside. */
export function useConfirm(): [JSX.Element | null, (r: ConfirmRequest) => Promise<boolean>] {
  const [req, setReq] = useState<(ConfirmRequest & { resolve: (v: boolean) => void }) | null>(null);
  const ask = useCallback((r: ConfirmRequest) => new Promise<boolean>((resolve) => setReq({ ...r, resolve })), []);
  const el = req ? <ConfirmDialog req={req} done={(v) => (req.resolve(v), setReq(null))} /> : null;
  return [el, ask];
}

function ConfirmDialog({ req, done }: { req: ConfirmRequest; done: (v: boolean) => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [typed, setTyped] = useState('');
  useEffect(() => {
    const d = ref.current;
    const before = document.activeElement as HTMLElement | null;
    d?.showModal();
    return () => before?.focus();
  }, []);
  const ok = !req.typeToConfirm || typed === req.typeToConfirm;
  return (
    <dialog
      ref={ref}
      aria-labelledby="confirm-title"
      onCancel={(e) => {
        e.preventDefault();
        done(false);
      }}
    >
      <h2 id="confirm-title">{req.title}</h2>
      <div class={req.danger ? 'warning' : ''}>{req.body}</div>
      {req.typeToConfirm && (
        <div class="field">
          <label for="confirm-type">
            Type <strong>{req.typeToConfirm}</strong> to confirm
          </label>
          <input id="confirm-type" value={typed} onInput={(e) => setTyped((e.target as HTMLInputElement).value)} autocomplete="off" />
        </div>
      )}
      <div class="actions">
        <button type="button" autofocus onClick={() => done(false)}>
          Cancel
        </button>
        <button type="button" class={req.danger ? 'danger' : 'primary'} disabled={!ok} onClick={() => done(true)}>
          {req.confirm}
        </button>
      </div>
    </dialog>
  );
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [done, setDone] = useState('');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone('Copied to the clipboard.');
    } catch {
      setDone('Copying failed: select the text and copy it.');
    }
  };
  return (
    <span class="copy">
      <button type="button" onClick={() => void copy()}>
        {label}
      </button>
      <span role="status" class="muted">
        {done}
      </span>
    </span>
  );
}

/** A secret shown once: read-only text, a copy button, and the warning. */
export function SecretOnce({ secret, onDone }: { secret: string; onDone: () => void }) {
  return (
    <section class="secret" aria-labelledby="secret-title">
      <h2 id="secret-title">Client secret</h2>
      <p class="warning">This is the only time the secret is shown. Copy it now and keep it somewhere safe.</p>
      <div class="secret-row">
        <label for="secret-value" class="sr-only">
          Client secret
        </label>
        <input id="secret-value" readonly value={secret} class="mono" onFocus={(e) => (e.target as HTMLInputElement).select()} />
        <CopyButton text={secret} />
      </div>
      <button type="button" class="primary" onClick={onDone}>
        I have copied it
      </button>
    </section>
  );
}

export const show = (v: unknown): string =>
  v === null || v === undefined ? '—' : Array.isArray(v) ? (v.length ? v.join(', ') : '—') : typeof v === 'object' ? JSON.stringify(v) : String(v);

/** Before/after, field by field: only the fields that differ, unless `all`. */
export function Diff({ before, after, labels = ['Before', 'After'], all = false }: { before: unknown; after: unknown; labels?: [string, string]; all?: boolean }) {
  const b = (before ?? {}) as Record<string, unknown>;
  const a = (after ?? {}) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter((k) => all || JSON.stringify(b[k]) !== JSON.stringify(a[k]));
  if (keys.length === 0) return <p class="muted">No field differs.</p>;
  return (
    <table class="diff">
      <thead>
        <tr>
          <th scope="col">Field</th>
          <th scope="col">{labels[0]}</th>
          <th scope="col">{labels[1]}</th>
        </tr>
      </thead>
      <tbody>
        {keys.map((k) => {
          const changed = JSON.stringify(b[k]) !== JSON.stringify(a[k]);
          return (
            <tr key={k} class={changed ? 'changed' : ''}>
              <th scope="row">{k}</th>
              <td class="before">{show(b[k])}</td>
              <td class="after">{show(a[k])}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** Someone else saved first (412): both versions, and what to do. */
export function ConflictView(props: { mine: Record<string, unknown>; theirs: Record<string, unknown>; onReload: () => void; onOverwrite: () => void }) {
  const fields = Object.keys(props.mine);
  const theirs = Object.fromEntries(fields.map((f) => [f, props.theirs[f]]));
  return (
    <section class="conflict" role="alert" aria-labelledby="conflict-title">
      <h2 id="conflict-title">Someone else changed this while you were editing</h2>
      <p>Your changes were not saved. Compare your version with the one saved now, then keep theirs or save yours over it.</p>
      <Diff before={theirs} after={props.mine} labels={['Saved now', 'Your version']} all />
      <div class="actions">
        <button type="button" onClick={props.onReload}>
          Discard mine, load theirs
        </button>
        <button type="button" class="danger" onClick={props.onOverwrite}>
          Save mine over theirs
        </button>
      </div>
    </section>
  );
}

export function Status({ text }: { text: string }) {
  return (
    <p role="status" class="status">
      {text}
    </p>
  );
}

export const when = (iso: unknown) => (typeof iso === 'string' ? new Date(iso).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' }) : '—');

export const lines = (s: string) =>
  s
    .split(/[\n,]/)
    .map((x) => x.trim())
    .filter(Boolean);
export const words = (s: string) => s.split(/\s+/).filter(Boolean);
