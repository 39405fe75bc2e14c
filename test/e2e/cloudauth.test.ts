// E2E: identity-aware HTTP sockets with local accounts — sign-in redirect, one-time hand-off,
// host-only cookie, identity headers and a verifiable assertion upstream, 403 with a reason,
// revocation back to sign-in, refused open redirects and replayed codes, WebSockets with identity.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
import type { ClientOptions } from 'ws';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { JSONWebKeySet } from 'jose';
import { CLI, cleanupAll, startConnector, startServer, waitForAudit, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api, httpsFetch, loopbackLookup } from '../helpers/https.js';
import { SignInBrowser } from '../helpers/browser.js';
import type { HttpsResponse } from '../helpers/https.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { tempDir, withTimeout } from '../helpers/util.js';

interface Echo {
  url: string;
  headers: Record<string, string | undefined>;
}

const PASSWORD = 'correct horse battery staple';

/** Signs in with the suite's password. */
class Browser extends SignInBrowser {
  constructor(handle: ServerHandle) {
    super(handle, PASSWORD);
  }
}

describe('cloudauth sockets with local accounts', () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let appUrl: string;

  before(async () => {
    upstream = await startUpstream();
    server = await startServer();
    appUrl = `https://app.localhost:${server.port}`;
    for (const email of ['alice@corp.example', 'bob@other.example']) {
      const created = await api(server, '/api/v1/users', { method: 'POST', body: { email, groups: ['staff', 'on,call'], password: PASSWORD } });
      assert.equal(created.status, 201, created.text);
    }
    const socket = await server.cli(['socket', 'create', '--name', 'app', '--type', 'http', '--upstream', upstream.url, '--cloudauth', '--allowed_email_domains', 'corp.example']);
    assert.equal(socket.code, 0, socket.stderr);
    const token = await server.cli(['connector', 'token', 'create', '--name', 'auth', '--socket', 'app']);
    const dir = (await tempDir()).path;
    const config = await writeConnectorConfig(dir, 'c.yaml', { server: server.url, token: token.stdout.trim(), sockets: [{ name: 'app', type: 'http', upstream: upstream.url }] });
    await startConnector(['connector', 'start', '--config', config], server.env);
  });

  after(async () => {
    await cleanupAll();
    await upstream?.close();
  });

  test('an allowed user signs in and the upstream sees who it is, with a verifiable assertion', async () => {
    const browser = new Browser(server);
    const first = await browser.request(`${appUrl}/dashboards/1?x=y`);
    assert.equal(first.status, 302);
    const login = new URL(first.headers.location!);
    assert.equal(login.origin, server.url);
    assert.equal(login.searchParams.get('return_to'), '/dashboards/1?x=y');

    const res = await browser.signIn(`${appUrl}/dashboards/1?x=y`, 'alice@corp.example');
    assert.equal(res.status, 200, res.text);
    const echo = res.json<Echo>();
    assert.equal(echo.url, '/dashboards/1?x=y');
    assert.equal(echo.headers['x-auth-email'], 'alice@corp.example');
    assert.equal(echo.headers['x-auth-groups'], 'staff,on%2Ccall');
    const jwks = (await httpsFetch({ port: server.port, ca: server.caPem, path: '/.well-known/jwks.json' })).json<JSONWebKeySet>();
    const { payload } = await jwtVerify(echo.headers['x-postern-jwt-assertion']!, createLocalJWKSet(jwks), { issuer: server.url, audience: appUrl });
    assert.equal(payload.email, 'alice@corp.example');
    assert.equal(payload.sub, echo.headers['x-auth-user']);

    const cookie = browser.cookies('app.localhost');
    assert.ok(cookie.has('__Host-postern_session'), 'the socket host has its own cookie');
    const spoofed = await browser.request(`${appUrl}/again`, { headers: { 'x-auth-email': 'mallory@corp.example', 'x-postern-jwt-assertion': 'forged' } });
    assert.equal(spoofed.json<Echo>().headers['x-auth-email'], 'alice@corp.example');
    assert.notEqual(spoofed.json<Echo>().headers['x-postern-jwt-assertion'], 'forged');
  });

  test('the socket cookie is host-only, Secure, HttpOnly and SameSite=Lax', async () => {
    const browser = new Browser(server);
    const first = await browser.request(`${appUrl}/`);
    const login = await browser.request(first.headers.location!);
    const csrf = /name="csrf" value="([^"]*)"/.exec(login.text)![1]!;
    const posted = await browser.request(`${server.url}/auth/login`, { method: 'POST', form: { csrf, socket: 'app', return_to: '/', email: 'alice@corp.example', password: PASSWORD } });
    const callback = await browser.request(posted.headers.location!);
    const setCookie = String(callback.headers['set-cookie']);
    assert.match(setCookie, /^__Host-postern_session=/);
    for (const attribute of ['Secure', 'HttpOnly', 'SameSite=Lax', 'Path=/']) assert.ok(setCookie.includes(attribute), `${attribute} in ${setCookie}`);
    assert.doesNotMatch(setCookie, /Domain=/i);
    const replay = await browser.request(posted.headers.location!);
    assert.equal(replay.status, 400, 'a hand-off code works once');
    assert.match(replay.text, /already been used|used/);
  });

  test('a user from another domain gets a 403 that says why', async () => {
    const res = await new Browser(server).signIn(`${appUrl}/`, 'bob@other.example');
    assert.equal(res.status, 403);
    assert.equal(res.headers['postern-error'], 'forbidden');
    assert.match(res.text, /no rule allows this .*email domain other\.example is not one of corp\.example/);
  });

  test('a wrong password is refused on the form; a tampered code or CSRF token fails clearly', async () => {
    const browser = new Browser(server);
    const first = await browser.request(`${appUrl}/`);
    const login = await browser.request(first.headers.location!);
    const csrf = /name="csrf" value="([^"]*)"/.exec(login.text)![1]!;
    const wrong = await browser.request(`${server.url}/auth/login`, { method: 'POST', form: { csrf, socket: 'app', email: 'alice@corp.example', password: 'not the password at all' } });
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /Wrong email or password/);
    const failed = await waitForAudit(server, ['--type', 'login.failed'], (e) => e.actor === 'alice@corp.example', 'the refused sign-in in the audit trail');
    assert.deepEqual([failed.decision, failed.reason, failed.details.provider], ['deny', 'wrong email or password', 'local']);
    const started = await waitForAudit(server, ['--type', 'session.start'], (e) => e.actor === 'alice@corp.example', 'an earlier sign-in in the audit trail');
    assert.deepEqual([started.decision, started.details.provider, started.details.kind], ['allow', 'local', 'browser']);
    const noCsrf = await browser.request(`${server.url}/auth/login`, { method: 'POST', form: { csrf: 'x'.repeat(43), socket: 'app', email: 'alice@corp.example', password: PASSWORD } });
    assert.equal(noCsrf.status, 403);
    const tampered = await browser.request(`${appUrl}/_postern/callback?code=${'A'.repeat(43)}`);
    assert.equal(tampered.status, 400);
    assert.match(tampered.text, /sign-in failed/);
  });

  test('a return_to pointing off-domain is never followed', async () => {
    const browser = new Browser(server);
    await browser.request(`${server.url}/auth/login`);
    const login = await browser.request(`${server.url}/auth/login?socket=app&return_to=${encodeURIComponent('https://evil.example/steal')}`);
    const csrf = /name="csrf" value="([^"]*)"/.exec(login.text)![1]!;
    const returnTo = /name="return_to" value="([^"]*)"/.exec(login.text)![1]!;
    assert.equal(returnTo, '/');
    const posted = await browser.request(`${server.url}/auth/login`, { method: 'POST', form: { csrf, socket: 'app', return_to: 'https://evil.example/steal', email: 'alice@corp.example', password: PASSWORD } });
    assert.equal(posted.status, 303);
    assert.ok(posted.headers.location!.startsWith(`${appUrl}/_postern/callback?`), posted.headers.location);
    const callback = await browser.request(posted.headers.location!);
    assert.equal(callback.headers.location, '/');
  });

  test('revoking the session sends the browser back to sign-in', async () => {
    const browser = new Browser(server);
    assert.equal((await browser.signIn(`${appUrl}/`, 'alice@corp.example')).status, 200);
    const listed = await server.cli(['sessions', 'ls', '--user', 'alice@corp.example', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const sessions = JSON.parse(listed.stdout) as { id: string; user: string; provider: string; clientIp: string }[];
    assert.ok(sessions.length >= 1);
    assert.ok(sessions.every((s) => s.user === 'alice@corp.example' && s.provider === 'local'));
    for (const session of sessions) assert.equal((await server.cli(['sessions', 'revoke', session.id])).code, 0);
    const after = await browser.request(`${appUrl}/`);
    assert.equal(after.status, 302, 'back to sign-in');
    assert.ok(after.headers.location!.startsWith(`${server.url}/auth/login`));
  });

  test('WebSockets carry the same identity; without a session they get 401', async () => {
    const browser = new Browser(server);
    assert.equal((await browser.signIn(`${appUrl}/`, 'alice@corp.example')).status, 200);
    const cookie = [...browser.cookies('app.localhost')].map(([k, v]) => `${k}=${v}`).join('; ');
    const open = (headers: Record<string, string>) => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`wss://app.localhost:${server.port}/ws`, { ca: server.caPem, lookup: loopbackLookup, headers, perMessageDeflate: false } as ClientOptions);
      ws.once('open', () => resolve(ws)).once('error', reject).once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    const ws = await withTimeout(open({ cookie }), 10_000, 'WebSocket open');
    ws.close();
    const upgrade = upstream.seen.filter((s) => s.method === 'UPGRADE').at(-1);
    assert.equal(upgrade?.headers['x-auth-email'], 'alice@corp.example');
    await assert.rejects(open({}), /HTTP 401/);
  });

  test('an invited user sets their own password once, then signs in', async () => {
    const created = await server.cli(['user', 'create', '--email', 'dora@corp.example', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const invite = new URL((JSON.parse(created.stdout) as { invite: { url: string } }).invite.url);
    const browser = new Browser(server);
    const form = await browser.request(invite.toString());
    assert.equal(form.status, 200);
    assert.match(form.text, /dora@corp\.example/);
    const token = invite.searchParams.get('token')!;
    const mismatch = await browser.request(`${server.url}/auth/set-password`, { method: 'POST', form: { token, password: PASSWORD, again: 'something else entirely' } });
    assert.equal(mismatch.status, 400);
    const set = await browser.request(`${server.url}/auth/set-password`, { method: 'POST', form: { token, password: PASSWORD, again: PASSWORD } });
    assert.equal(set.status, 303);
    assert.equal((await new Browser(server).signIn(`${appUrl}/`, 'dora@corp.example')).status, 200);
    const reused = await browser.request(invite.toString());
    assert.equal(reused.status, 400);
    assert.match(reused.text, /already been used/);
    const tampered = await browser.request(`${server.url}/auth/set-password?token=${token.slice(0, -2)}xx`);
    assert.equal(tampered.status, 400);
  });

  test('the CLI one-liner takes the mysocket flags', async () => {
    const res = await server.cli(['socket', 'create', '--name', 'flags', '--type', 'http', '--allowed-email-addresses', 'a@x.example,b@y.example', '--json']);
    assert.equal(res.code, 0, res.stderr);
    const created = JSON.parse(res.stdout) as { auth: { cloudauth: boolean; allowedEmailAddresses: string[] } };
    assert.deepEqual(created.auth, { cloudauth: true, allowedEmailDomains: [], allowedEmailAddresses: ['a@x.example', 'b@y.example'] });
    const user = spawn(process.execPath, [CLI, 'user', 'create', '--email', 'carol@corp.example', '--password-stdin'], { env: server.env });
    user.stdin.end(`${PASSWORD}\n`);
    const code = await new Promise((resolve) => user.once('close', resolve));
    assert.equal(code, 0);
    assert.equal((await new Browser(server).signIn(`${appUrl}/`, 'carol@corp.example')).status, 200);
  });
});
