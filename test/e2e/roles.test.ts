// E2E: roles. A member of the admin group runs admin commands with their own `postern login`
// (sessions ls, socket create, policy apply) and the audit trail names them; a non-member gets
// one line that says why; taking the group away ends the rights on the next request;
// `--admin-group ops` moves the role to another group; on the server's own machine a stored
// sign-in that is not an admin falls back to the admin token file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { auditEvents, cleanupAll, runCli, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { deviceLogin, signedInLaptop } from '../helpers/login.js';
import { tempDir } from '../helpers/util.js';
import { loadLogin } from '../../src/cli/credentials.js';

const PASSWORD = 'correct horse battery staple';

async function createUser(server: ServerHandle, email: string, groups: string[]): Promise<void> {
  const created = await api(server, '/api/v1/users', { method: 'POST', body: { email, groups, password: PASSWORD } });
  assert.equal(created.status, 201, created.text);
}

/** The refusal is one line on stderr, naming the person and the group. */
function assertRefused(result: { code: number | null; stdout: string; stderr: string }, email: string, group: string): void {
  assert.equal(result.code, 1, result.stdout);
  assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr);
  assert.match(result.stderr, new RegExp(`^postern: ${email.replace(/\./g, '\\.')} is signed in but is not in the admin group "${group}": ask an admin to add you to it, or pass an admin token`));
}

describe('roles: the admin group signs in as itself', () => {
  let server: ServerHandle;
  let ana: NodeJS.ProcessEnv;
  let bob: NodeJS.ProcessEnv;

  before(async () => {
    server = await startServer();
    await createUser(server, 'ana@corp.example', ['staff', 'admins']);
    await createUser(server, 'bob@corp.example', ['staff']);
    ana = await signedInLaptop(server, 'ana@corp.example', PASSWORD);
    bob = await signedInLaptop(server, 'bob@corp.example', PASSWORD);
  });

  after(async () => {
    await cleanupAll();
  });

  test('an admin-group member runs sessions ls, socket create and policy apply; the audit names her', async () => {
    const whoami = await runCli(['whoami'], ana);
    assert.equal(whoami.code, 0, whoami.stderr);
    assert.match(whoami.stdout, /role:\s+admin/);

    const sessions = await runCli(['sessions', 'ls', '--json'], ana);
    assert.equal(sessions.code, 0, sessions.stderr);
    const listed = JSON.parse(sessions.stdout) as { user: string; kind: string }[];
    assert.ok(listed.some((s) => s.user === 'bob@corp.example' && s.kind === 'cli'), sessions.stdout);

    const socket = await runCli(['socket', 'create', '--name', 'grafana', '--cloudauth'], ana);
    assert.equal(socket.code, 0, socket.stderr);

    const dir = (await tempDir('postern-roles-')).path;
    const file = join(dir, 'grafana.yaml');
    await writeFile(file, 'name: grafana-staff\nsockets: [grafana]\nrules:\n  - effect: allow\n    who: { group: [staff] }\n');
    const applied = await runCli(['policy', 'apply', '-f', file], ana);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /policy grafana-staff applied/);

    const changes = await auditEvents(server, ['--type', 'admin.change']);
    const socketChange = changes.find((e) => (e.details as { entity?: string }).entity === 'socket');
    assert.equal(socketChange?.actor, 'ana@corp.example', JSON.stringify(changes));
    assert.match(socketChange.reason ?? '', /socket grafana created by ana@corp\.example/);
    const policyChange = changes.find((e) => /policy grafana-staff/.test(e.reason ?? ''));
    assert.equal(policyChange?.actor, 'ana@corp.example', JSON.stringify(changes));
    const versions = await runCli(['policy', 'history', 'grafana-staff', '--json'], ana);
    assert.equal(versions.code, 0, versions.stderr);
    assert.match(versions.stdout, /"author": "ana@corp\.example"/);
  });

  test('a signed-in non-member gets one clear line, on every admin command', async () => {
    for (const args of [['sessions', 'ls'], ['socket', 'ls'], ['socket', 'create', '--name', 'bobs'], ['user', 'ls'], ['token', 'ls']]) {
      assertRefused(await runCli(args, bob), 'bob@corp.example', 'admins');
    }
    const whoami = await runCli(['whoami'], bob);
    assert.equal(whoami.code, 0, 'user-level routes stay open');
    assert.match(whoami.stdout, /role:\s+user/);
    const sockets = await server.cli(['socket', 'ls', '--json']);
    assert.ok(!sockets.stdout.includes('"bobs"'), 'the refused create did nothing');
  });

  test('removing the group takes the rights away at once; adding it gives them back', async () => {
    const removed = await server.cli(['user', 'update', 'ana@corp.example', '--groups', 'staff']);
    assert.equal(removed.code, 0, removed.stderr);
    assertRefused(await runCli(['sessions', 'ls'], ana), 'ana@corp.example', 'admins');
    assertRefused(await runCli(['socket', 'ls'], ana), 'ana@corp.example', 'admins');

    const restored = await server.cli(['user', 'update', 'ana@corp.example', '--groups', 'staff,admins']);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal((await runCli(['socket', 'ls'], ana)).code, 0);
  });

  test('an admin person may mint service tokens; a service token scoped admin still may not', async () => {
    const minted = await runCli(['token', 'create', '--name', 'ana-ci', '--scope', 'sockets:read', '--json'], ana);
    assert.equal(minted.code, 0, minted.stderr);
    const secret = (JSON.parse(minted.stdout) as { token: string }).token;
    const admin = await runCli(['token', 'create', '--name', 'wide', '--scope', 'admin', '--json'], ana);
    const wide = (JSON.parse(admin.stdout) as { token: string }).token;
    const again = await api(server, '/api/v1/tokens', { method: 'POST', body: { name: 'more', scopes: ['admin'] }, token: wide });
    assert.equal(again.status, 403, again.text);
    assert.equal((await api(server, '/api/v1/sockets', { token: secret })).status, 200);
    const events = await auditEvents(server, ['--type', 'admin.change']);
    assert.ok(events.some((e) => e.actor === 'ana@corp.example' && (e.details as { entity?: string }).entity === 'api_token'), 'minting is audited under her email');
  });

  test('on the server machine, a stored non-admin sign-in falls back to the admin token file', async () => {
    // The server's own machine: its data dir (admin.token) and its config dir, where bob signs in.
    await deviceLogin(server, server.env.POSTERN_CONFIG_DIR!, 'bob@corp.example', PASSWORD);
    const whoami = await server.cli(['whoami']);
    assert.match(whoami.stdout, /email:\s+bob@corp\.example/, 'user-level commands act as the sign-in');

    const listed = await server.cli(['sessions', 'ls']);
    assert.equal(listed.code, 0, listed.stderr);
    const created = await server.cli(['socket', 'create', '--name', 'from-server-machine']);
    assert.equal(created.code, 0, created.stderr);
    const changes = await auditEvents(server, ['--type', 'admin.change']);
    const change = changes.find((e) => /from-server-machine/.test(JSON.stringify(e.details)));
    assert.equal(change?.actor, 'token:first-admin', 'the admin token did it, and the audit says so');

    // A token given explicitly is never swapped for the admin token file.
    const explicit = await server.cli(['socket', 'ls'], { POSTERN_TOKEN: loadLogin(server.env.POSTERN_CONFIG_DIR!, server.url)!.token });
    assertRefused(explicit, 'bob@corp.example', 'admins');
  });
});

describe('roles: --admin-group names another group', () => {
  let server: ServerHandle;

  before(async () => {
    server = await startServer({ extraArgs: ['--admin-group', 'ops'] });
    await createUser(server, 'olga@corp.example', ['ops']);
    await createUser(server, 'adam@corp.example', ['admins']);
  });

  after(async () => {
    await cleanupAll();
  });

  test('members of ops are admins; members of admins are not', async () => {
    const olga = await signedInLaptop(server, 'olga@corp.example', PASSWORD);
    const adam = await signedInLaptop(server, 'adam@corp.example', PASSWORD);
    const listed = await runCli(['sessions', 'ls'], olga);
    assert.equal(listed.code, 0, listed.stderr);
    assertRefused(await runCli(['sessions', 'ls'], adam), 'adam@corp.example', 'ops');
  });
});
