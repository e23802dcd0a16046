// Signing keys: the list, a planned rotation (the new key is published for
// a lead time before it signs) and an emergency rotation (signs at once).
import { useState } from 'preact/hooks';
import { call, can, type Page } from '../api.ts';
import { ErrorBox, Field, Loading, Status, useConfirm, useLoad, when } from '../ui.tsx';

export interface Key {
  kid: string;
  alg: string;
  status: string;
  createdAt: string;
  activatesAt: string;
  retiredAt: string | null;
  publishUntil: string | null;
}

export function Keys() {
  const load = useLoad(() => call<Page<Key>>('/keys', { query: { limit: '100' } }), 'keys');
  const [alg, setAlg] = useState('RS256');
  const [leadHours, setLeadHours] = useState('24');
  const [error, setError] = useState<unknown>(null);
  const [status, setStatus] = useState('');
  const [dialog, confirm] = useConfirm();
  const rotate = async (emergency: boolean) => {
    setError(null);
    setStatus('');
    const leadSeconds = emergency ? 0 : Math.round(Number(leadHours) * 3600);
    const ok = emergency
      ? await confirm({
          title: `Emergency rotation of the ${alg} key`,
          body: (
            <>
              <p>
                <strong>The new key signs at once.</strong> Services that cached the old key set will refuse new tokens until they fetch /jwks again.
              </p>
              <p>Use this only when the current key may be compromised. Tokens already issued stay valid until they expire.</p>
            </>
          ),
          confirm: 'Rotate now',
          danger: true,
          typeToConfirm: 'ROTATE',
        })
      : await confirm({
          title: `Plan a rotation of the ${alg} key`,
          body: <p>A new key is published now and starts signing in {leadHours} hours; the old one stays published until its tokens expire.</p>,
          confirm: 'Plan rotation',
        });
    if (!ok) return;
    try {
      const r = await call<{ kid: string; activatesAt: string }>('/keys/rotate', { method: 'POST', body: { alg, leadSeconds } });
      setStatus(`New ${alg} key ${r.body.kid} signs from ${when(r.body.activatesAt)}.`);
      load.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      {dialog}
      <h1>Signing keys</h1>
      {status && <Status text={status} />}
      <ErrorBox error={error} />
      {load.loading && <Loading />}
      <ErrorBox error={load.error} />
      {load.data && (
        <table>
          <caption class="sr-only">Signing keys</caption>
          <thead>
            <tr>
              <th scope="col">Key id</th>
              <th scope="col">Algorithm</th>
              <th scope="col">Status</th>
              <th scope="col">Created</th>
              <th scope="col">Signs from</th>
              <th scope="col">Published until</th>
            </tr>
          </thead>
          <tbody>
            {load.data.body.items.map((k) => (
              <tr key={k.kid}>
                <td class="mono">{k.kid}</td>
                <td>{k.alg}</td>
                <td>
                  <span class={`badge ${k.status === 'active' ? 'on' : k.status === 'pending' ? 'pending' : 'off'}`}>{k.status}</span>
                </td>
                <td>{when(k.createdAt)}</td>
                <td>{when(k.activatesAt)}</td>
                <td>{when(k.publishUntil)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {can('gatehouse:keys:write') && (
        <section aria-labelledby="rotate-title">
          <h2 id="rotate-title">Rotate a key</h2>
          <div class="filters">
            <Field id="rotate-alg" label="Algorithm">
              {(a) => (
                <select {...a} value={alg} onChange={(e) => setAlg((e.target as HTMLSelectElement).value)}>
                  {['RS256', 'PS256', 'ES256', 'EdDSA'].map((x) => (
                    <option key={x}>{x}</option>
                  ))}
                </select>
              )}
            </Field>
            <Field id="rotate-lead" label="Lead time (hours)" hint="How long the new key is published before it signs.">
              {(a) => <input {...a} inputMode="decimal" value={leadHours} onInput={(e) => setLeadHours((e.target as HTMLInputElement).value)} />}
            </Field>
          </div>
          <div class="actions">
            <button type="button" class="primary" onClick={() => void rotate(false)}>
              Plan rotation
            </button>
            <button type="button" class="danger" onClick={() => void rotate(true)}>
              Emergency rotation…
            </button>
          </div>
        </section>
      )}
    </>
  );
}
