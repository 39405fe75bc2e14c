// The web terminal's WebSocket on a real server, from node's `ws` as a browser would use it: no
// session → refused before the upgrade; the person's cookie but another Origin (a cross-site
// WebSocket) → refused; an unknown socket and a bad login → a line and a close code; and a login
// the policy does not name → the edge's own refusal line, as an `ssh` client gets it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { createPerson } from '../helpers/dashboard.js';
import { openTerminal, signIn } from '../helpers/terminal.js';
import { TERMINAL_CLOSE } from '../../src/control/terminal-types.js';
import { closeReason, terminalSocketOf } from '../../src/control/terminal.js';

const EMAIL = 'tess@corp.example';

describe('web terminal WebSocket', () => {
  let server: ServerHandle;
  let cookie: string;
  let origin: string;

  before(async () => {
    server = await startServer();
    origin = server.url;
    await createPerson(server, EMAIL);
    cookie = await signIn(server, EMAIL);
    // A managed socket with no connector: the edge decides the login before it dials any upstream.
    const created = await server.cli(['socket', 'create', '--name', 'prod', '--type', 'ssh', '--upstream', 'tcp://127.0.0.1:9']);
    assert.equal(created.code, 0, created.stderr);
    const policy = join(server.dataDir, 'policy.yaml');
    await writeFile(policy, stringify({ name: 'ssh-access', sockets: ['prod'], rules: [{ name: 'tess', effect: 'allow', who: { email: [EMAIL] }, what: { ssh: { logins: ['tess'], shell: true } } }] }));
    const applied = await server.cli(['policy', 'apply', '-f', policy]);
    assert.equal(applied.code, 0, applied.stderr);
  });

  after(async () => {
    await cleanupAll();
  });

  test('without a session the upgrade is refused with 401', async () => {
    const outcome = await openTerminal(server, '/api/v1/terminal/prod?login=tess', { origin });
    assert.equal(outcome.kind, 'refused');
    assert.equal(outcome.kind === 'refused' && outcome.status, 401);
    assert.match(outcome.kind === 'refused' ? outcome.body : '', /"code":"unauthenticated"/);
  });

  test('the person\'s cookie from another origin (a cross-site WebSocket) is refused with 403', async () => {
    for (const foreign of ['https://evil.example', `https://prod.localhost:${server.port}`]) {
      const outcome = await openTerminal(server, '/api/v1/terminal/prod?login=tess', { cookie, origin: foreign });
      assert.equal(outcome.kind === 'refused' && outcome.status, 403, `${foreign}: ${JSON.stringify(outcome)}`);
      assert.match(outcome.kind === 'refused' ? outcome.body : '', /"code":"csrf_failed"/);
    }
    const noOrigin = await openTerminal(server, '/api/v1/terminal/prod?login=tess', { cookie });
    assert.equal(noOrigin.kind === 'refused' && noOrigin.status, 403, 'no Origin at all: not the dashboard either');
  });

  test('other upgrades on the control host are still 404', async () => {
    const outcome = await openTerminal(server, '/api/v1/somewhere-else', { cookie, origin });
    assert.equal(outcome.kind === 'refused' && outcome.status, 404);
  });

  test('an unknown socket and a malformed login are told in the terminal and in the close code', async () => {
    const unknown = await openTerminal(server, '/api/v1/terminal/nosuch?login=tess', { cookie, origin });
    assert.equal(unknown.kind, 'closed');
    if (unknown.kind !== 'closed') return;
    assert.equal(unknown.code, TERMINAL_CLOSE.socketUnknown);
    assert.match(unknown.text, /postern: there is no managed SSH socket named nosuch/);
    const bad = await openTerminal(server, '/api/v1/terminal/prod?login=root%3Bid', { cookie, origin });
    assert.equal(bad.kind === 'closed' && bad.code, TERMINAL_CLOSE.badRequest);
  });

  test('a login the policy does not name gets the edge\'s reason, as an ssh client does', async () => {
    const outcome = await openTerminal(server, '/api/v1/terminal/prod?login=root&cols=100&rows=30', { cookie, origin });
    assert.equal(outcome.kind, 'closed', JSON.stringify(outcome));
    if (outcome.kind !== 'closed') return;
    assert.match(outcome.text, /postern: login root is not allowed on prod by ssh-access#tess/);
    assert.equal(outcome.code, TERMINAL_CLOSE.postern);
    assert.match(outcome.reason, /^postern: login root is not allowed on prod/);
    const denied = await server.cli(['audit', 'search', '--json', '--type', 'access.denied', '--socket', 'prod']);
    const events = JSON.parse(denied.stdout) as { actor: string; details: { login?: string } }[];
    assert.ok(events.some((e) => e.actor === EMAIL && e.details.login === 'root'), `the edge audited the refusal as the person: ${denied.stdout}`);
  });

  test('pure helpers: the socket of a path and close reasons that fit a close frame', () => {
    assert.equal(terminalSocketOf('/api/v1/terminal/Prod'), 'prod');
    assert.equal(terminalSocketOf('/api/v1/terminal/a/b'), undefined);
    assert.equal(terminalSocketOf('/api/v1/terminals'), undefined);
    const long = closeReason(`postern: ${'é'.repeat(200)}`);
    assert.ok(Buffer.byteLength(long) <= 123 && long.endsWith('…'), long);
    assert.equal(closeReason('a\r\nb'), 'a b');
  });
});
