// Security: the dashboard signs the API in with a cookie, and a browser sends cookies along on
// requests other sites make it send. A change that carries an admin's session cookie but comes
// from another origin, or without the CSRF token, is refused with 403 csrf_failed before the
// route runs — whatever the body's content type — and nothing changes. Real server, real sign-in.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api, httpsFetch } from '../helpers/https.js';

const PASSWORD = 'correct horse battery staple';

describe('security: cross-site changes with the dashboard\'s cookie', () => {
  let server: ServerHandle;
  let cookie: string;
  let csrf: string;

  before(async () => {
    server = await startServer();
    assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email: 'ana@corp.example', groups: ['admins'], password: PASSWORD } })).status, 201);
    assert.equal((await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'keep-me' } })).status, 201);
    // Sign in on the form, as the admin's browser did earlier.
    const form = await httpsFetch({ port: server.port, ca: server.caPem, path: '/auth/login' });
    const csrfCookie = /__Host-postern_csrf=[^;]+/.exec(String(form.headers['set-cookie']))![0];
    csrf = csrfCookie.split('=')[1]!;
    const field = /name="csrf" value="([^"]+)"/.exec(form.text)![1]!;
    const posted = await httpsFetch({
      port: server.port, ca: server.caPem, path: '/auth/login', method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfCookie },
      body: new URLSearchParams({ csrf: field, email: 'ana@corp.example', password: PASSWORD }).toString(),
    });
    assert.equal(posted.status, 303, posted.text);
    cookie = `${/__Host-postern_session=[^;]+/.exec(String(posted.headers['set-cookie']))![0]}; ${csrfCookie}`;
    assert.equal((await httpsFetch({ port: server.port, ca: server.caPem, path: '/api/v1/sockets', headers: { cookie } })).status, 200, 'the cookie is an admin\'s');
  });

  after(async () => {
    await cleanupAll();
  });

  const attempt = (method: string, path: string, headers: Record<string, string>, body?: string) => httpsFetch({
    port: server.port, ca: server.caPem, path, method, headers: { cookie, ...headers }, ...(body !== undefined ? { body } : {}),
  });

  test('a POST from https://evil.example with the cookie and no token is refused, and creates nothing', async () => {
    const json = JSON.stringify({ name: 'planted' });
    const tries: Record<string, string>[] = [
      { 'content-type': 'application/json', origin: 'https://evil.example' },
      // The shapes a plain HTML form or a no-cors fetch can send, with no preflight.
      { 'content-type': 'text/plain', origin: 'https://evil.example' },
      { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      // Even a stolen token does not help from another origin, a sibling socket host included.
      { 'content-type': 'application/json', origin: 'https://evil.example', 'x-csrf-token': csrf },
      { 'content-type': 'application/json', origin: `https://keep-me.localhost:${server.port}`, 'x-csrf-token': csrf },
      { 'content-type': 'application/json', origin: 'null', 'x-csrf-token': csrf },
      // No Origin at all (an old browser, a stripped header): the token is still required.
      { 'content-type': 'application/json' },
    ];
    for (const headers of tries) {
      const body = headers['content-type'] === 'application/x-www-form-urlencoded' ? 'name=planted' : json;
      const res = await attempt('POST', '/api/v1/sockets', headers, body);
      assert.equal(res.status, 403, `${JSON.stringify(headers)}: ${res.text}`);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      assert.equal(res.json<{ code: string }>().code, 'csrf_failed', JSON.stringify(headers));
    }
    for (const [method, path, body] of [['DELETE', '/api/v1/sockets/keep-me', undefined], ['PATCH', '/api/v1/sockets/keep-me', '{"description":"owned"}'], ['POST', '/api/v1/tokens', '{"name":"backdoor","scopes":["admin"]}']] as const) {
      const res = await attempt(method, path, { origin: 'https://evil.example', ...(body ? { 'content-type': 'application/json' } : {}) }, body);
      assert.equal(res.status, 403, `${method} ${path}: ${res.text}`);
      assert.equal(res.json<{ code: string }>().code, 'csrf_failed');
    }

    const sockets = (await api(server, '/api/v1/sockets')).json<{ sockets: { name: string; description: string }[] }>().sockets;
    assert.deepEqual(sockets.map((s) => [s.name, s.description]), [['keep-me', '']], 'nothing was created, changed or deleted');
    const tokens = (await api(server, '/api/v1/tokens')).json<{ tokens: { name: string }[] }>().tokens.map((t) => t.name);
    assert.deepEqual(tokens, ['first-admin']);
  });
});
