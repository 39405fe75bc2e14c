// The web terminal is decided, shown and audited with the browser's address, not the control
// node's: the control plane dials the edge from 127.0.0.1 while the "browser" (node's ws, bound
// to 127.0.0.2) opens the terminal from 127.0.0.2. The session's live connection and audit events
// carry 127.0.0.2; a deny for 127.0.0.2 cuts the open terminal and refuses a new one with the
// policy's reason, while an ssh client from 127.0.0.1 (the control node's address) still gets in.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { EMAIL, SOCKET, startManagedSsh } from '../helpers/managed-ssh.js';
import type { ManagedSsh } from '../helpers/managed-ssh.js';
import { DASHBOARD_PASSWORD } from '../helpers/dashboard.js';
import { api } from '../helpers/https.js';
import { cleanupAll } from '../helpers/processes.js';
import { LOGIN, haveOpenSsh } from '../helpers/sshd.js';
import { connectTerminal, openTerminal, signIn } from '../helpers/terminal.js';
import { waitFor } from '../helpers/util.js';
import { TERMINAL_CLOSE } from '../../src/control/terminal-types.js';

const BROWSER_IP = '127.0.0.2';
const skip = !haveOpenSsh && process.env.CI !== 'true' ? 'OpenSSH is not installed' : false;

describe('web terminal: the browser\'s address decides', { skip }, () => {
  let f: ManagedSsh;
  let cookie: string;

  before(async () => {
    f = await startManagedSsh();
    const password = await api(f.server, `/api/v1/users/${EMAIL}`, { method: 'PATCH', body: { password: DASHBOARD_PASSWORD } });
    assert.equal(password.status, 200, password.text);
    cookie = await signIn(f.server, EMAIL);
  });

  after(async () => {
    await cleanupAll();
    await f?.stop();
  });

  test('the live connection and the audit trail show the browser\'s address; a deny for it cuts and refuses the terminal', async () => {
    const path = `/api/v1/terminal/${SOCKET}?login=${LOGIN}`;
    const known = new Set((await f.liveConnections()).map((c) => c.id));
    const terminal = connectTerminal(f.server, path, { cookie, origin: f.server.url, localAddress: BROWSER_IP });
    try {
      const connection = await f.waitForNewConnection(known);
      const live = await api(f.server, `/api/v1/connections?socket=${SOCKET}`);
      const shown = live.json<{ connections: { id: string; clientIp: string }[] }>().connections.find((c) => c.id === connection.id);
      assert.equal(shown?.clientIp, BROWSER_IP, `the live connection shows the browser: ${live.text}`);
      const started = await f.waitForEvent('ssh.session.start', (e) => e.connectionId === connection.id, 'the terminal\'s session start');
      assert.equal(started.clientIp, BROWSER_IP);
      assert.match(String(started.details.client), /postern-web-terminal/);

      const file = join(f.dir, 'deny-browser.yaml');
      await writeFile(file, stringify({
        name: 'browser-ip', sockets: [SOCKET],
        rules: [{ name: 'not-from-there', effect: 'deny', who: { email: [EMAIL] }, where: { ip: [`${BROWSER_IP}/32`] }, what: { ssh: { logins: [LOGIN] } } }],
      }));
      const applied = await f.server.cli(['policy', 'apply', '-f', file]);
      assert.equal(applied.code, 0, applied.stderr);
      const cut = await terminal.outcome;
      assert.equal(cut.kind, 'closed', JSON.stringify(cut));
      assert.match(terminal.text(), /postern: .*browser-ip#not-from-there/, 'the open terminal is cut by the deny on the browser\'s address');
    } finally {
      terminal.ws.terminate();
    }

    const refused = await openTerminal(f.server, path, { cookie, origin: f.server.url, localAddress: BROWSER_IP });
    assert.equal(refused.kind, 'closed', JSON.stringify(refused));
    if (refused.kind !== 'closed') return;
    assert.equal(refused.code, TERMINAL_CLOSE.postern);
    assert.match(refused.text, new RegExp(`postern: login ${LOGIN} is not allowed on ${SOCKET} by browser-ip#not-from-there`));
    const denied = await f.waitForEvent('access.denied', (e) => e.details.login === LOGIN && /browser-ip#not-from-there$/.test(e.rule), 'the audited refusal');
    assert.equal(denied.clientIp, BROWSER_IP, 'the refusal is audited with the browser\'s address');

    // The control node's own address is not what is denied: an ssh client from 127.0.0.1 still gets in.
    const ssh = await f.runSsh([f.target(), 'echo', 'still-in']);
    assert.equal(ssh.code, 0, ssh.stderr);
    assert.match(ssh.stdout, /still-in/);
  });

  test('the terminal from 127.0.0.1 is not refused by the deny for 127.0.0.2', async () => {
    const known = new Set((await f.liveConnections()).map((c) => c.id));
    const terminal = connectTerminal(f.server, `/api/v1/terminal/${SOCKET}?login=${LOGIN}`, { cookie, origin: f.server.url, localAddress: '127.0.0.1' });
    try {
      const connection = await f.waitForNewConnection(known);
      const started = await f.waitForEvent('ssh.session.start', (e) => e.connectionId === connection.id, 'the session start from 127.0.0.1');
      assert.equal(started.clientIp, '127.0.0.1');
    } finally {
      terminal.ws.terminate();
      await terminal.outcome;
    }
    await waitFor(async () => !(await f.liveConnections()).some((c) => !known.has(c.id)), { what: 'the closed terminal gone from the live connections', timeoutMs: 10_000, intervalMs: 200 });
  });
});
