// Connectors: the enrolled ones with their live tunnels and last contact, revocation after a
// confirmation, and join tokens: a new token is shown once with the connector YAML it goes
// into; the list shows tokens without their secrets (usable, used or expired).
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../../api.js';
import type { ConnectorView, CreatedJoinTokenView, JoinTokenBody, JoinTokenList, SocketView } from '../../../../src/control/inventory-types.js';
import { CONNECTOR_START_COMMAND, connectorOnline, connectorYaml, formatTags, joinTokenState, parseList, parseTags } from '../../lib/inventory.js';
import { formatRelative, formatTimestamp } from '../../lib/format.js';
import { Page, Problem, Progress, useAction, useResource } from '../../ui.js';
import { ConfirmButton, CopyBlock, FieldError, LoadMore, Online, Tags, usePagedList } from './parts.js';

/** Tunnels come and go; the page looks again this often while it is open. */
const REFRESH_MS = 5_000;

const TTLS: readonly { seconds: number; label: string }[] = [
  { seconds: 600, label: '10 minutes' }, { seconds: 3600, label: '1 hour' }, { seconds: 86_400, label: '1 day' }, { seconds: 7 * 86_400, label: '7 days' },
];

export function ConnectorsPage() {
  const connectors = usePagedList<ConnectorView>('/api/v1/connectors', 'connectors');
  const tokens = useResource<JoinTokenList>('/api/v1/connectors/tokens');
  const revoke = useAction((id: string) => api<void>('DELETE', `/api/v1/connectors/${encodeURIComponent(id)}`));
  const { reload } = connectors;
  useEffect(() => {
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') {
        reload();
        tokens.reload();
      }
    }, REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload, tokens.reload]);
  const onRevoke = async (id: string) => {
    await revoke.run(id);
    reload();
  };
  const now = new Date();
  return (
    <Page title="Connectors" actions={<button type="button" onClick={() => { reload(); tokens.reload(); }}>Refresh</button>}>
      <JoinTokenCreator onCreated={() => tokens.reload()} />
      <h2>Enrolled connectors</h2>
      <Problem error={connectors.error ?? revoke.error} />
      <Progress active={connectors.loading && connectors.rows.length === 0} label="Loading connectors…" />
      <table>
        <thead><tr><th>Name</th><th>Status</th><th>Live tunnels</th><th>Last seen</th><th>Certificate until</th><th>Binds by tags</th><th><span class="muted">Actions</span></th></tr></thead>
        <tbody>
          {connectors.rows.map((c) => (
            <tr key={c.id}>
              <td>{c.name}<div class="muted mono">{c.id}</div></td>
              <td>{c.revokedAt ? <span class="badge bad">revoked</span> : <Online online={connectorOnline(c)} what="tunnel" />}</td>
              <td>{c.tunnels.length === 0 ? <span class="muted">none</span> : (
                <ul class="plain">{c.tunnels.map((t) => <li key={t.id}><span class="mono">{t.remoteAddress}</span> · {t.transport} · {t.sockets.join(', ') || 'no sockets'} · {t.activeStreams} streams{t.draining ? ' · draining' : ''}</li>)}</ul>
              )}</td>
              <td>{connectorOnline(c) ? 'now (connected)' : c.lastSeenAt ? <span title={formatTimestamp(c.lastSeenAt)}>{formatRelative(c.lastSeenAt, now)}</span> : <span class="muted">never</span>}</td>
              <td>{c.certNotAfter ? formatTimestamp(c.certNotAfter) : '–'}</td>
              <td>{c.socketTags ? <Tags tags={c.socketTags} /> : <span class="muted">–</span>}</td>
              <td>{c.revokedAt ? null : <ConfirmButton label="Revoke" question={`Revoke ${c.name}? Its tunnels are cut and it cannot reconnect.`} onConfirm={() => void onRevoke(c.id)} pending={revoke.pending} />}</td>
            </tr>
          ))}
          {!connectors.loading && connectors.rows.length === 0 ? <tr><td colSpan={7} class="muted">No connector has enrolled yet: create a join token above.</td></tr> : null}
        </tbody>
      </table>
      <LoadMore list={connectors} />
      <h2>Join tokens</h2>
      <Problem error={tokens.error} />
      <table>
        <thead><tr><th>Connector name</th><th>Binds</th><th>State</th><th>Expires</th><th>Enrolled connector</th></tr></thead>
        <tbody>
          {(tokens.data?.tokens ?? []).map((t) => {
            const state = joinTokenState(t, now);
            return (
              <tr key={t.id}>
                <td>{t.connectorName}</td>
                <td>{[...t.sockets, ...(t.socketTags ? [`tagged ${formatTags(t.socketTags)}`] : [])].join(', ') || <span class="muted">nothing yet</span>}</td>
                <td><span class={`badge ${state === 'usable' ? 'ok' : state === 'expired' ? 'bad' : ''}`}>{state}</span></td>
                <td>{formatTimestamp(t.expiresAt)}</td>
                <td class="mono">{t.connectorId ?? '–'}</td>
              </tr>
            );
          })}
          {tokens.data && tokens.data.tokens.length === 0 ? <tr><td colSpan={5} class="muted">No join tokens.</td></tr> : null}
        </tbody>
      </table>
    </Page>
  );
}

/** The form, and after it the new token: shown once, with the YAML file that uses it. */
function JoinTokenCreator({ onCreated }: { onCreated: () => void }) {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState('');
  const [sockets, setSockets] = useState('');
  const [tags, setTags] = useState('');
  const [ttl, setTtl] = useState(3600);
  const [tagErrors, setTagErrors] = useState<string[]>([]);
  const [created, setCreated] = useState<{ token: CreatedJoinTokenView; yaml: string }>();
  const create = useAction(async (body: JoinTokenBody) => {
    const token = await api<CreatedJoinTokenView>('POST', '/api/v1/connectors/tokens', body);
    // The YAML lists the bound sockets with their types and upstreams, as the connector must dial them.
    const bound = await Promise.all(token.sockets.map((s) => api<SocketView>('GET', `/api/v1/sockets/${encodeURIComponent(s)}`).catch((err: unknown) => {
      if (err instanceof ApiError && err.status === 404) return { name: s, type: 'http' as const, upstream: null };
      throw err;
    })));
    return { token, yaml: connectorYaml(window.location.origin, token.token, bound) };
  });
  const submit = async (e: Event) => {
    e.preventDefault();
    const parsed = parseTags(tags);
    setTagErrors(parsed.errors);
    if (parsed.errors.length > 0) return;
    const names = parseList(sockets);
    const result = await create.run({
      ...(name.trim() ? { name: name.trim() } : {}), ttl_seconds: ttl,
      ...(names.length ? { sockets: names } : {}), ...(Object.keys(parsed.tags).length ? { tags: parsed.tags } : {}),
    });
    if (result) {
      setCreated(result);
      setOpen(false);
      onCreated();
    }
  };
  return (
    <>
      {created ? (
        <div class="panel once" role="region" aria-label="New join token">
          <h2>Join token for connector “{created.token.name}”</h2>
          <p class="warning">Copy it now: it will not be shown again. It works once, until {formatTimestamp(created.token.expiresAt)}.</p>
          <CopyBlock label="Join token" text={created.token.token} />
          <CopyBlock label="connector.yaml" text={created.yaml} />
          <CopyBlock label="Start the connector beside the service" text={CONNECTOR_START_COMMAND} />
          <button type="button" onClick={() => setCreated(undefined)}>Done</button>
        </div>
      ) : null}
      {open ? (
        <div class="panel">
          <h2>Create join token</h2>
          <Problem error={create.error} />
          <form class="inventory-form" onSubmit={(e) => void submit(e)} aria-label="Create join token">
            <label>Connector name
              <input name="connector-name" value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} placeholder="office-nuc" />
              <FieldError error={create.error} field="name" />
            </label>
            <label>Sockets it may serve
              <input name="sockets" value={sockets} onInput={(e) => setSockets((e.currentTarget as HTMLInputElement).value)} placeholder="grafana, db" />
              <FieldError error={create.error} field="sockets" />
            </label>
            <label>And every socket tagged
              <input name="tags" value={tags} onInput={(e) => setTags((e.currentTarget as HTMLInputElement).value)} placeholder="env=prod" />
              {tagErrors.length > 0 ? <span class="field-error" role="alert">{tagErrors.join('; ')}</span> : <FieldError error={create.error} field="tags" />}
            </label>
            <label>Usable for
              <select value={String(ttl)} onChange={(e) => setTtl(Number((e.currentTarget as HTMLSelectElement).value))}>
                {TTLS.map((t) => <option key={t.seconds} value={String(t.seconds)}>{t.label}</option>)}
              </select>
            </label>
            <div class="buttons">
              <button type="submit" class="primary" disabled={create.pending}>Create token</button>
              <button type="button" onClick={() => setOpen(false)}>Cancel</button>
            </div>
          </form>
        </div>
      ) : (
        <p><button type="button" class="primary" onClick={() => { create.clear(); setOpen(true); }}>Create join token</button></p>
      )}
    </>
  );
}
