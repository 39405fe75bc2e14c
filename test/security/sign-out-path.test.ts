// Security: the sign-out path of socket hosts. `/_postern/logout` was once passed to the
// upstream, so an app could answer it (and a user believed they had signed out while the session
// lived on). Now the edge keeps it, in every spelling that reaches the same canonical path, for
// every method, signed in or not, on sign-in and public sockets, and for WebSocket upgrades.
// And signing out is CSRF-safe: a cross-site GET, a POST without the form's token, with a wrong
// one, with another session's, or without the cookie ends nothing and clears nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { cleanupAll, startConnector, startServer, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api, httpsFetch } from '../helpers/https.js';
import type { HttpsResponse } from '../helpers/https.js';
import { SignInBrowser } from '../helpers/browser.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { tempDir, withTimeout } from '../helpers/util.js';

const PASSWORD = 'correct horse battery staple';
const COOKIE = '__Host-postern_session';

const SPELLINGS = [
  '/_postern/logout', '/_postern/logout/', '/_postern/logout?next=/admin', '/_postern//logout', '//_postern/logout', '/_postern/./logout',
  '/x/../_postern/logout', '/_postern/logout/.', '/_postern/%6cogout', '/_postern/%6Cogout', '/%5Fpostern/logout', '/%5fpostern/%6C%6F%67%6F%75%74',
  '/_POSTERN/LOGOUT', '/_Postern/Logout/', '/./_postern/x/../logout',
];
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];

/** A raw WebSocket upgrade request; resolves with the answer's head. */
function rawUpgrade(port: number, ca: string, host: string, path: string, cookie?: string): Promise<string> {
  return withTimeout(new Promise<string>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: host, ca }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nhost: ${host}:${port}\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n${cookie ? `cookie: ${cookie}\r\n` : ''}\r\n`);
    });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\r\n\r\n')) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('error', reject);
    socket.on('end', () => resolve(text));
  }), 10_000, `upgrade ${path}`);
}

describe('the sign-out path belongs to the edge', () => {
  let server: ServerHandle;
  let upstream: Upstream;
  const url = (socket: string, path: string) => `https://${socket}.localhost:${server.port}${path}`;

  before(async () => {
    upstream = await startUpstream();
    server = await startServer();
    for (const email of ['alice@corp.example', 'bob@corp.example']) {
      const created = await api(server, '/api/v1/users', { method: 'POST', body: { email, password: PASSWORD } });
      assert.equal(created.status, 201, created.text);
    }
    assert.equal((await server.cli(['socket', 'create', '--name', 'app', '--upstream', upstream.url, '--cloudauth'])).code, 0);
    assert.equal((await server.cli(['socket', 'create', '--name', 'open', '--upstream', upstream.url])).code, 0);
    const token = await server.cli(['connector', 'token', 'create', '--name', 'web', '--socket', 'app', '--socket', 'open']);
    const config = await writeConnectorConfig((await tempDir()).path, 'c.yaml', {
      server: server.url, token: token.stdout.trim(), sockets: [{ name: 'app', upstream: upstream.url }, { name: 'open', upstream: upstream.url }],
    });
    await startConnector(['connector', 'start', '--config', config], server.env);
    const probe = await httpsFetch({ port: server.port, ca: server.caPem, host: 'open.localhost', path: '/probe' });
    assert.equal(probe.headers['x-upstream'], 'e2e', 'the public socket reaches the upstream');
  });

  after(async () => {
    await cleanupAll();
    await upstream?.close();
  });

  const neverUpstream = () => {
    const leaked = upstream.seen.filter((r) => /postern|%5f|logout|%6c/i.test(r.url));
    assert.deepEqual(leaked.map((r) => `${r.method} ${r.url}`), [], 'the upstream saw the sign-out path');
  };

  test('no spelling, method, cookie or socket kind reaches the upstream', async () => {
    const browser = new SignInBrowser(server, PASSWORD);
    assert.equal((await browser.signIn(url('app', '/'), 'alice@corp.example')).status, 200);
    const cookie = `${COOKIE}=${browser.cookies('app.localhost').get(COOKIE)}`;
    for (const socket of ['app', 'open']) {
      for (const path of SPELLINGS) {
        for (const method of METHODS) {
          for (const withCookie of [false, true]) {
            const res = await httpsFetch({ port: server.port, ca: server.caPem, host: `${socket}.localhost`, path, method, headers: withCookie ? { cookie } : {} });
            assert.equal(res.headers['x-upstream'], undefined, `${method} ${path} on ${socket} was answered by the upstream`);
            assert.ok(res.status === 200 || res.status === 403 || res.status === 405, `${method} ${path} on ${socket}: ${res.status}`);
          }
        }
      }
    }
    neverUpstream();
    assert.equal((await browser.request(url('app', '/still'))).status, 200, 'none of that signed alice out: no form token was sent');
  });

  test('a WebSocket upgrade to the sign-out path is answered by the edge', async () => {
    for (const socket of ['app', 'open']) {
      for (const path of ['/_postern/logout', '/_postern/%6Cogout', '/_POSTERN/logout/']) {
        const head = await rawUpgrade(server.port, server.caPem, `${socket}.localhost`, path);
        assert.match(head, /^HTTP\/1\.1 400 /, head);
        assert.match(head, /postern-error: bad_request/, head);
      }
    }
    neverUpstream();
  });

  test('CSRF: nothing but the form with its token signs out', async () => {
    const alice = new SignInBrowser(server, PASSWORD);
    assert.equal((await alice.signIn(url('app', '/'), 'alice@corp.example')).status, 200);
    const bob = new SignInBrowser(server, PASSWORD);
    assert.equal((await bob.signIn(url('app', '/'), 'bob@corp.example')).status, 200);
    const bobsToken = /action="\/_postern\/logout\?token=([^"]+)"/.exec((await bob.request(url('app', '/_postern/logout'))).text)![1]!;
    const aliceCookie = `${COOKIE}=${alice.cookies('app.localhost').get(COOKIE)}`;

    const attempts: [string, () => Promise<HttpsResponse>][] = [
      ['a cross-site GET (cookie sent, as for a top-level link)', () => alice.request(url('app', '/_postern/logout'), { headers: { 'sec-fetch-site': 'cross-site' } })],
      ['a GET carrying a token', () => alice.request(url('app', `/_postern/logout?token=${bobsToken}`))],
      ['a POST without a token', () => alice.request(url('app', '/_postern/logout'), { method: 'POST' })],
      ['a POST with an empty token', () => alice.request(url('app', '/_postern/logout?token='), { method: 'POST' })],
      ['a POST with a made-up token', () => alice.request(url('app', `/_postern/logout?token=${'A'.repeat(43)}`), { method: 'POST' })],
      ['a POST with another session\'s token', () => alice.request(url('app', `/_postern/logout?token=${bobsToken}`), { method: 'POST' })],
      ['a POST with the token in the body', () => alice.request(url('app', '/_postern/logout'), { method: 'POST', form: { token: bobsToken } })],
      ['a POST with a token but no cookie (SameSite=Lax keeps it off cross-site POSTs)', () => httpsFetch({ port: server.port, ca: server.caPem, host: 'app.localhost', path: `/_postern/logout?token=${bobsToken}`, method: 'POST' })],
    ];
    for (const [what, attempt] of attempts) {
      const res = await attempt();
      assert.equal(res.headers['set-cookie'], undefined, `${what}: the cookie was touched`);
      assert.equal((await httpsFetch({ port: server.port, ca: server.caPem, host: 'app.localhost', path: '/ok', headers: { cookie: aliceCookie } })).status, 200, `${what} signed alice out`);
    }
    assert.equal((await bob.request(url('app', '/ok'))).status, 200, 'nor bob, whose token was used');

    // Bob's own form, from his own browser, does sign him out (and only him).
    const confirm = await bob.request(url('app', '/_postern/logout'));
    const action = /action="([^"]+)"/.exec(confirm.text)![1]!;
    assert.equal((await bob.request(url('app', action), { method: 'POST' })).status, 200);
    assert.equal((await bob.request(url('app', '/ok'))).status, 302);
    assert.equal((await alice.request(url('app', '/ok'))).status, 200);
    neverUpstream();
  });
});
