// E2E: `postern login` as a real child process against a real server — the RFC 8628 device
// flow approved in a scripted browser (sign-in form, then Approve with CSRF), whoami, the CLI
// session in `sessions ls`, logout revoking it; denial; expiry and the token endpoint's
// RFC 8628 JSON errors; the loopback `--browser` flow (approval page, PKCE); service tokens.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupAll, spawnCli, startServer, runCli } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api, httpsFetch } from '../helpers/https.js';
import type { HttpsResponse } from '../helpers/https.js';
import { baseEnv } from '../helpers/processes.js';
import { tempDir, withTimeout } from '../helpers/util.js';
import { ControlBrowser, hidden } from '../helpers/login.js';

const PASSWORD = 'correct horse battery staple';
const EMAIL = 'alice@corp.example';

function tokenRequest(server: ServerHandle, form: Record<string, string>): Promise<HttpsResponse> {
  return httpsFetch({
    port: server.port, ca: server.caPem, path: '/api/v1/auth/token', method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(),
  });
}

describe('CLI sign-in: device flow, loopback, service tokens', () => {
  let server: ServerHandle;
  /** A laptop: knows the server URL and its CA, has no admin token. */
  let laptop: NodeJS.ProcessEnv;
  let configDir: string;

  before(async () => {
    server = await startServer();
    const created = await api(server, '/api/v1/users', { method: 'POST', body: { email: EMAIL, groups: ['staff'], password: PASSWORD } });
    assert.equal(created.status, 201, created.text);
    const home = (await tempDir('postern-laptop-')).path;
    configDir = join(home, 'config');
    await mkdir(join(home, 'data'));
    laptop = baseEnv({ POSTERN_SERVER: server.url, POSTERN_CA: server.caFile, POSTERN_CONFIG_DIR: configDir, POSTERN_DATA_DIR: join(home, 'data') });
  });

  after(async () => {
    await cleanupAll();
  });

  test('login with a device code approved in a browser; whoami, sessions ls, logout', async () => {
    const login = spawnCli('login', ['login'], laptop);
    const code = (await login.waitForOutput(/shows the code: ([A-Z]{4}-[A-Z]{4})/))[1]!;
    const link = (await login.waitForOutput(/(https:\/\/\S+\/device\?user_code=\S+)/))[1]!;
    assert.ok(link.endsWith(`user_code=${code}`), link);

    const browser = new ControlBrowser(server, EMAIL, PASSWORD);
    const confirm = await browser.openSigningIn(link);
    assert.match(confirm.text, new RegExp(code));
    assert.match(confirm.text, /alice@corp\.example/);
    assert.match(confirm.text, /postern 0\.1\.0 on /, 'shows which client asks');
    const done = await browser.decide(confirm, 'approve');
    assert.equal(done.status, 200, done.text);
    assert.match(done.text, /Approved/);

    const exit = await withTimeout(login.exited, 20_000, 'postern login to finish');
    assert.equal(exit.code, 0, login.stderr);
    assert.match(login.stdout, /Signed in to https:\/\/localhost:\d+ as alice@corp\.example \(session ses_/);

    const file = join(configDir, 'credentials.json');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const stored = JSON.parse(await readFile(file, 'utf8')) as { servers: Record<string, { token: string; sessionId: string }> };
    const entry = stored.servers[server.url]!;
    assert.match(entry.token, /^pst1_/);

    const whoami = await runCli(['whoami'], laptop);
    assert.equal(whoami.code, 0, whoami.stderr);
    assert.match(whoami.stdout, /email:\s+alice@corp\.example/);
    assert.match(whoami.stdout, /groups:\s+staff/);
    assert.match(whoami.stdout, new RegExp(`session:\\s+${entry.sessionId}`));

    const sessions = await server.cli(['sessions', 'ls', '--json']);
    assert.equal(sessions.code, 0, sessions.stderr);
    const cli = (JSON.parse(sessions.stdout) as { id: string; kind: string; user: string }[]).find((s) => s.id === entry.sessionId);
    assert.equal(cli?.kind, 'cli');
    assert.equal(cli?.user, EMAIL);

    const admin = await runCli(['socket', 'ls'], laptop);
    assert.equal(admin.code, 1, 'a person outside the admin group has no admin rights with their sign-in');
    assert.match(admin.stderr, /^postern: alice@corp\.example is signed in but is not in the admin group "admins"/);

    const logout = await runCli(['logout'], laptop);
    assert.equal(logout.code, 0, logout.stderr);
    assert.match(logout.stdout, /Signed out/);
    const revoked = (JSON.parse((await server.cli(['sessions', 'ls', '--all', '--json'])).stdout) as { id: string; revokedAt: string | null }[]).find((s) => s.id === entry.sessionId);
    assert.ok(revoked?.revokedAt, 'revoked on the server');

    const gone = await runCli(['whoami'], laptop);
    assert.equal(gone.code, 1);
    assert.equal(gone.stderr.trim().split('\n').length, 1, gone.stderr);
    assert.match(gone.stderr, /^postern: not signed in to https:\/\/localhost:\d+: run `postern login`/);
    const old = await runCli(['whoami', '--token', entry.token], laptop);
    assert.equal(old.code, 1);
    assert.equal(old.stderr.trim().split('\n').length, 1, old.stderr);
    assert.match(old.stderr, /^postern: your sign-in has ended \(revoked, expired or unknown\): run `postern login` again/);
  });

  test('a denied code ends the login with one clear line', async () => {
    const login = spawnCli('login', ['login'], laptop);
    const link = (await login.waitForOutput(/(https:\/\/\S+\/device\?user_code=\S+)/))[1]!;
    const browser = new ControlBrowser(server, EMAIL, PASSWORD);
    const done = await browser.decide(await browser.openSigningIn(link), 'deny');
    assert.match(done.text, /Denied/);
    const exit = await withTimeout(login.exited, 20_000, 'postern login to give up');
    assert.equal(exit.code, 1);
    assert.equal(login.stderr, 'postern: the sign-in was denied in the browser\n');
    const again = await browser.request(link);
    assert.match(again.text, /already denied/, 'a decided code cannot be approved later');
  });

  test('token endpoint errors are RFC 8628 JSON; an expired code is expired_token', async () => {
    const started = await httpsFetch({
      port: server.port, ca: server.caPem, path: '/api/v1/auth/device', method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'client_name=script&expires_in=5',
    });
    assert.equal(started.status, 200, started.text);
    const device = started.json<{ device_code: string; user_code: string; verification_uri: string; verification_uri_complete: string; expires_in: number; interval: number }>();
    assert.match(device.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    assert.equal(device.verification_uri, `${server.url}/device`);
    assert.equal(device.expires_in, 5);
    assert.equal(device.interval, 5);
    const grant = { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code };

    const pending = await tokenRequest(server, grant);
    assert.equal(pending.status, 400);
    assert.match(String(pending.headers['content-type']), /^application\/json/);
    assert.equal(pending.headers['cache-control'], 'no-store');
    assert.equal(pending.json<{ error: string }>().error, 'authorization_pending');
    assert.equal((await tokenRequest(server, grant)).json<{ error: string }>().error, 'slow_down', 'polled again at once');

    for (const [form, error] of [
      [{ ...grant, device_code: 'pdc1_' + 'A'.repeat(43) }, 'invalid_grant'],
      [{ grant_type: grant.grant_type }, 'invalid_request'],
      [{ device_code: device.device_code }, 'invalid_request'],
      [{ grant_type: 'password', username: 'x' }, 'unsupported_grant_type'],
      [{ grant_type: 'authorization_code', code: 'nope' }, 'invalid_grant'],
    ] as const) {
      const res = await tokenRequest(server, form);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.json<{ error: string }>().error, error, JSON.stringify(form));
      assert.equal(typeof res.json<{ error_description: string }>().error_description, 'string');
    }

    await new Promise((resolve) => setTimeout(resolve, 5200));
    const expired = await tokenRequest(server, grant);
    assert.equal(expired.status, 400);
    assert.equal(expired.json<{ error: string }>().error, 'expired_token');
    const browser = new ControlBrowser(server, EMAIL, PASSWORD);
    const page = await browser.openSigningIn(device.verification_uri_complete);
    assert.equal(page.status, 400);
    assert.match(page.text, /expired/);
  });

  test('login --browser: approved on a page, loopback redirect with state, one-time code bound to the CLI\'s PKCE verifier', async () => {
    const login = spawnCli('login --browser', ['login', '--browser'], laptop);
    const start = (await login.waitForOutput(/(https:\/\/\S+\/auth\/cli\/start\?port=\d+&state=\S+)/))[1]!;
    const checkCode = (await login.waitForOutput(/check code: ([A-Z]{4}-[A-Z]{4})/))[1]!;
    assert.equal(new URL(start).searchParams.get('code_challenge_method'), 'S256');
    const browser = new ControlBrowser(server, EMAIL, PASSWORD);
    const approval = await browser.openSigningIn(start);
    assert.equal(approval.status, 200, approval.text);
    assert.match(approval.text, new RegExp(checkCode), 'the page shows the check code the terminal printed');
    assert.match(approval.text, /alice@corp\.example/);
    const landed = await browser.request('/auth/cli/start', {
      method: 'POST',
      form: { csrf: hidden(approval.text, 'csrf')!, port: hidden(approval.text, 'port')!, state: hidden(approval.text, 'state')!, code_challenge: hidden(approval.text, 'code_challenge')!, decision: 'approve' },
    });
    assert.equal(landed.status, 303, landed.text);
    const callback = new URL(landed.headers.location!);
    assert.equal(callback.origin.replace(/:\d+$/, ''), 'http://127.0.0.1');
    assert.equal(callback.searchParams.get('state'), new URL(start).searchParams.get('state'));
    const answered = await new Promise<number>((resolve, reject) => http.get(callback, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', reject));
    assert.equal(answered, 200);
    const exit = await withTimeout(login.exited, 20_000, 'postern login --browser to finish');
    assert.equal(exit.code, 0, login.stderr);
    assert.match(login.stdout, /Signed in to .* as alice@corp\.example/);
    const replay = await tokenRequest(server, { grant_type: 'authorization_code', code: callback.searchParams.get('code')! });
    assert.equal(replay.json<{ error: string }>().error, 'invalid_grant', 'the code works once');
    const whoami = await runCli(['whoami', '--json'], laptop);
    assert.equal(JSON.parse(whoami.stdout).email, EMAIL);

    // Disabling the user ends the CLI sign-in too; logout still cleans up locally.
    assert.equal((await api(server, `/api/v1/users/${EMAIL}`, { method: 'PATCH', body: { disabled: true } })).status, 200);
    const disabled = await runCli(['whoami'], laptop);
    assert.equal(disabled.code, 1);
    assert.match(disabled.stderr, /^postern: your sign-in has ended/);
    assert.equal((await api(server, `/api/v1/users/${EMAIL}`, { method: 'PATCH', body: { disabled: false } })).status, 200);
    assert.equal((await runCli(['logout'], laptop)).code, 0);
    assert.match((await runCli(['whoami'], laptop)).stderr, /not signed in/);
  });

  test('service tokens: created once, listed without secrets, revoked', async () => {
    const created = await server.cli(['token', 'create', '--name', 'ci-deploy', '--scope', 'admin']);
    assert.equal(created.code, 0, created.stderr);
    const secret = created.stdout.trim();
    assert.match(secret, /^pat1_/);
    assert.match(created.stderr, /not shown again/);
    assert.equal((await api(server, '/api/v1/sockets', { token: secret })).status, 200);
    const whoami = await server.cli(['whoami', '--json'], { POSTERN_TOKEN: secret });
    assert.deepEqual({ ...JSON.parse(whoami.stdout), tokenId: undefined, server: undefined }, { kind: 'token', name: 'ci-deploy', role: 'service', scopes: ['admin'], tokenId: undefined, server: undefined, source: 'env' });
    const minted = await api(server, '/api/v1/tokens', { method: 'POST', body: { name: 'more', scopes: ['admin'] }, token: secret });
    assert.equal(minted.status, 403, 'a service token cannot mint more');

    const listed = await server.cli(['token', 'ls', '--json']);
    const rows = JSON.parse(listed.stdout) as { id: string; name: string; role: string }[];
    const row = rows.find((t) => t.name === 'ci-deploy')!;
    assert.equal(row.role, 'service');
    assert.ok(!listed.stdout.includes(secret) && !listed.stdout.includes('tokenHash'));
    const admin = rows.find((t) => t.role === 'admin')!;
    const refused = await server.cli(['token', 'revoke', admin.id]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /admin token is not revoked/);

    assert.equal((await server.cli(['token', 'revoke', row.id])).code, 0);
    assert.equal((await api(server, '/api/v1/sockets', { token: secret })).status, 401);
  });
});
