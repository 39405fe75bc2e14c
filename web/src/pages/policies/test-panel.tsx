// The policy test panel: a made-up request (socket, who, from where, when, doing what) decided
// against the stored policies, shown as the decision, a row per rule (matched or why not) and
// the very lines `postern policy test` prints. On its own page and under the editor.
import { useState } from 'preact/hooks';
import type { PolicyTestAnswer, PolicyTestBody } from '../../../../src/control/policy-types.js';
import type { SocketList } from '../../../../src/control/inventory-types.js';
import { api } from '../../api.js';
import { Page, Problem, useAction, useResource } from '../../ui.js';
import './policies.css';

type Kind = 'http' | 'ssh' | 'tls';

interface Inputs {
  socket: string;
  email: string;
  groups: string;
  ip: string;
  country: string;
  at: string;
  kind: Kind;
  method: string;
  path: string;
  login: string;
}

/** The request body from the form: empty fields are left out so the server's defaults apply. */
function bodyOf(f: Inputs): PolicyTestBody {
  const groups = f.groups.split(',').map((g) => g.trim()).filter(Boolean);
  return {
    socket: f.socket.trim(), email: f.email.trim(), ip: f.ip.trim(),
    ...(groups.length ? { groups } : {}),
    ...(f.country.trim() ? { country: f.country.trim() } : {}),
    // datetime-local is the browser's local time without a zone.
    ...(f.at ? { at: new Date(f.at).toISOString() } : {}),
    ...(f.kind === 'http' ? { method: f.method.trim() || 'GET', path: f.path.trim() || '/' } : {}),
    ...(f.kind === 'ssh' ? { ssh_login: f.login.trim() } : {}),
  };
}

function Answer({ answer }: { answer: PolicyTestAnswer }) {
  return (
    <div class="test-answer" aria-live="polite">
      <p class="decision">
        <span class={`badge ${answer.effect}`}>{answer.effect === 'allow' ? 'ALLOW' : 'DENY'}</span> {answer.summary}
        {answer.knownUser ? null : <span class="muted"> (not a user yet: groups are only those given)</span>}
      </p>
      {answer.rules.length ? (
        <table aria-label="Rules">
          <thead><tr><th>Rule</th><th>Effect</th><th>Outcome</th><th>Why</th></tr></thead>
          <tbody>
            {answer.rules.map((r) => (
              <tr key={r.label} class={r.label === answer.rule ? 'deciding' : undefined}>
                <td>{r.label}{r.label === answer.rule ? <span class="badge">decided</span> : null}</td>
                <td>{r.effect}</td>
                <td>{r.outcome === 'matched' ? <span class="badge ok">matched</span> : <span class="badge">{r.outcome}</span>}</td>
                <td>{r.detail}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <details open>
        <summary>As <code>postern policy test</code> prints it</summary>
        <pre class="block" aria-label="policy test output">{answer.lines.join('\n')}</pre>
      </details>
    </div>
  );
}

export function TestPanel({ socket = '' }: { socket?: string }) {
  const [f, setF] = useState<Inputs>({ socket, email: '', groups: '', ip: '10.0.0.1', country: '', at: '', kind: 'http', method: 'GET', path: '/', login: '' });
  const [answer, setAnswer] = useState<PolicyTestAnswer>();
  const sockets = useResource<SocketList>('/api/v1/sockets?limit=200');
  const test = useAction((body: PolicyTestBody) => api<PolicyTestAnswer>('POST', '/api/v1/policies/test', body));
  const set = (key: keyof Inputs) => (e: Event) => setF({ ...f, [key]: (e.currentTarget as HTMLInputElement).value });
  const submit = async (e: Event) => {
    e.preventDefault();
    const result = await test.run(bodyOf(f));
    setAnswer(result);
  };
  return (
    <section class="panel test-panel" aria-label="Test panel">
      <h2>Test a request</h2>
      <form class="grid" onSubmit={submit}>
        <label>Socket<input name="socket" required list="policy-test-sockets" value={f.socket} onInput={set('socket')} /></label>
        <datalist id="policy-test-sockets">{sockets.data?.sockets.map((s) => <option key={s.name} value={s.name} />)}</datalist>
        <label>User email<input name="email" type="email" required value={f.email} onInput={set('email')} /></label>
        <label>Groups (default: the user's own)<input name="groups" placeholder="staff, support" value={f.groups} onInput={set('groups')} /></label>
        <label>IP<input name="ip" required value={f.ip} onInput={set('ip')} /></label>
        <label>Country<input name="country" size={4} placeholder="from IP" value={f.country} onInput={set('country')} /></label>
        <label>Time (default: now)<input name="at" type="datetime-local" value={f.at} onInput={set('at')} /></label>
        <label>Request
          <select name="kind" value={f.kind} onChange={set('kind')}>
            <option value="http">HTTP</option><option value="ssh">SSH</option><option value="tls">TLS connection</option>
          </select>
        </label>
        {f.kind === 'http' ? <>
          <label>Method<input name="method" size={7} value={f.method} onInput={set('method')} /></label>
          <label>Path<input name="path" value={f.path} onInput={set('path')} /></label>
        </> : null}
        {f.kind === 'ssh' ? <label>SSH login<input name="login" required value={f.login} onInput={set('login')} /></label> : null}
        <button type="submit" class="primary" disabled={test.pending}>Test</button>
      </form>
      <Problem error={test.error} />
      {answer && !test.error ? <Answer answer={answer} /> : null}
    </section>
  );
}

export function PolicyTestPage() {
  return <Page title="Policy test"><TestPanel /></Page>;
}
