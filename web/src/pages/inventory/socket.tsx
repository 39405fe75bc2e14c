// One socket: its facts, what to copy to reach it (the URL, or the CLI, ssh and openssl commands),
// for tls and ssh sockets the sshd lines and CA keys, the edit form, and delete after a confirmation.
import { useState } from 'preact/hooks';
import { api } from '../../api.js';
import type { SocketView, SshHostCaView, SshUserCaView, UpdateSocketBody } from '../../../../src/control/inventory-types.js';
import { connectLines, knownHostsLine, sshdSetupLines } from '../../lib/inventory.js';
import { formatTimestamp } from '../../lib/format.js';
import type { PageProps } from '../../pages.js';
import { Link, useLocation } from '../../router.js';
import { Page, Problem, Progress, useAction, useResource } from '../../ui.js';
import { ConfirmButton, CopyBlock, Online, Tags } from './parts.js';
import { SocketForm } from './socket-form.js';

export function SocketPage({ params }: PageProps) {
  const name = params.name ?? '';
  const path = `/api/v1/sockets/${encodeURIComponent(name)}`;
  const socket = useResource<SocketView>(path);
  const { navigate } = useLocation();
  const [editing, setEditing] = useState(false);
  const save = useAction((body: UpdateSocketBody) => api<SocketView>('PATCH', path, body));
  const remove = useAction(() => api<void>('DELETE', path).then(() => true));
  const onSave = async (body: UpdateSocketBody) => {
    if (await save.run(body)) {
      setEditing(false);
      socket.reload();
    }
  };
  const onDelete = async () => {
    if (await remove.run()) navigate('/sockets');
  };
  const s = socket.data;
  return (
    <Page title={`Socket ${name}`} actions={s && !editing ? (
      <>
        <button type="button" onClick={() => { save.clear(); setEditing(true); }}>Edit</button>
        <ConfirmButton label="Delete" question={`Delete socket ${name}?`} onConfirm={() => void onDelete()} pending={remove.pending} />
      </>
    ) : null}>
      <p><Link href="/sockets">← All sockets</Link></p>
      <Problem error={socket.error ?? remove.error} />
      <Progress active={socket.loading && !s} />
      {s ? (
        <>
          {editing ? (
            <div class="panel">
              <h2>Edit socket</h2>
              <Problem error={save.error} />
              <SocketForm socket={s} onSubmit={onSave} onCancel={() => setEditing(false)} error={save.error} pending={save.pending} />
            </div>
          ) : null}
          <div class="panel">
            <dl class="facts">
              <dt>Type</dt><dd>{s.type}</dd>
              <dt>Upstream</dt><dd class="mono">{s.upstream ?? '–'}</dd>
              <dt>Connector</dt><dd><Online online={s.online} /> {s.connectors.length === 0 ? <span class="muted">no connector is bound to it yet</span> : s.connectors.map((c) => `${c.name} (${c.binding === 'tags' ? 'by tags' : 'by name'})`).join(', ')}</dd>
              <dt>Tags</dt><dd><Tags tags={s.tags} /></dd>
              <dt>Sign-in</dt><dd>{s.auth.cloudauth ? 'required' : 'not required'}{s.auth.allowedEmailDomains.length ? ` · domains ${s.auth.allowedEmailDomains.join(', ')}` : ''}{s.auth.allowedEmailAddresses.length ? ` · addresses ${s.auth.allowedEmailAddresses.join(', ')}` : ''}</dd>
              {s.description ? <><dt>Description</dt><dd>{s.description}</dd></> : null}
              {s.type === 'ssh' ? <><dt>Recording</dt><dd>{s.recordInput ? 'output and keystrokes' : 'output'}{s.upstreamHostKey ? ' · upstream host key pinned' : ''}</dd></> : null}
              <dt>Updated</dt><dd>{formatTimestamp(s.updatedAt)}</dd>
            </dl>
          </div>
          <Reach socket={s} />
        </>
      ) : null}
    </Page>
  );
}

function Reach({ socket }: { socket: SocketView }) {
  const tcp = socket.type === 'tls' || socket.type === 'ssh';
  const userCa = useResource<SshUserCaView>(tcp ? '/api/v1/ssh/ca' : null);
  const hostCa = useResource<SshHostCaView>(socket.type === 'ssh' ? '/api/v1/ssh/host-ca' : null);
  return (
    <>
      <div class="panel">
        <h2>Reach it</h2>
        {connectLines(socket, window.location.origin).map((line) => <CopyBlock key={line.text} label={line.label} text={line.text} />)}
      </div>
      {tcp ? (
        <div class="panel">
          <h2>{socket.type === 'ssh' ? 'The upstream sshd and ssh clients' : 'SSH behind this socket'}</h2>
          <Problem error={userCa.error ?? hostCa.error} />
          {userCa.data ? (
            <>
              <p class="muted">{socket.type === 'ssh' ? 'The edge logs in to the upstream sshd with a short-lived certificate of Postern\'s user CA: let sshd trust it.' : 'Let the sshd behind this socket trust Postern\'s user certificates.'}</p>
              <CopyBlock label="sshd setup" text={sshdSetupLines(userCa.data)} />
              <CopyBlock label="sshd_config lines" text={userCa.data.sshdConfig.join('\n')} />
              <CopyBlock label="User CA public key" text={userCa.data.publicKey} />
            </>
          ) : null}
          {hostCa.data ? <CopyBlock label="known_hosts line for ssh clients" text={knownHostsLine(hostCa.data)} /> : null}
        </div>
      ) : null}
    </>
  );
}
