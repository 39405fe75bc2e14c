// The dashboard's side of the control plane, on a real server: the first admin made through
// the one-time setup link; a browser's session cookie on the API (admin routes for the admin
// group only, changes only with the CSRF header and from the control origin); GET /api/v1/me;
// the built app served from memory with a strict CSP, its pages answered with index.html and
// nothing else of the disk reachable; and a real Chromium using it all the way the app does.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { auditEvents, cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api, httpsFetch, takeCookies } from '../helpers/https.js';
import type { HttpsResponse } from '../helpers/https.js';
import { tempDir } from '../helpers/util.js';
import { launchChromium, dashboardContext, needsChromium } from '../helpers/dashboard.js';
import type { MeView } from '../../src/control/dashboard-types.js';

const PASSWORD = 'correct horse battery staple';
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";
const INDEX = `<!doctype html><html><head><meta charset="utf-8"><title>test dashboard</title>
<script>document.title = 'inline script ran';</script><script type="module" src="/assets/app.js"></script></head><body><pre id="out"></pre></body></html>`;
// What the dashboard does: ask who it is, then make changes with and without the CSRF header.
const APP_JS = `const out = document.getElementById('out');
const me = await (await fetch('/api/v1/me')).json();
const post = (name, headers) => fetch('/api/v1/sockets', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name }) }).then((r) => r.status);
const created = await post('from-chromium', { 'x-csrf-token': me.csrf });
const refused = await post('chromium-no-token', {});
out.textContent = JSON.stringify({ email: me.email, admin: me.admin, kind: me.kind, created, refused });
`;

/** One cookie jar for the control host. */
class Jar {
  readonly cookies = new Map<string, string>();

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  take(res: HttpsResponse): HttpsResponse {
    return takeCookies(this.cookies, res);
  }
}

function hidden(html: string, name: string): string {
  const value = new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];
  assert.ok(value !== undefined, `no hidden field ${name} in ${html}`);
  return value.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c))).replace(/&amp;/g, '&');
}

/** A request from the browser behind `jar` (JSON body, the jar's cookies, no bearer token). */
async function browse(server: ServerHandle, jar: Jar, path: string, init: { method?: string; body?: unknown; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<HttpsResponse> {
  const body = init.form ? new URLSearchParams(init.form).toString() : init.body === undefined ? undefined : JSON.stringify(init.body);
  return jar.take(await httpsFetch({
    port: server.port, ca: server.caPem, path, method: init.method ?? 'GET',
    headers: {
      accept: 'application/json',
      ...(jar.cookies.size ? { cookie: jar.header() } : {}),
      ...(body !== undefined ? { 'content-type': init.form ? 'application/x-www-form-urlencoded' : 'application/json' } : {}),
      ...init.headers,
    },
    ...(body !== undefined ? { body } : {}),
  }));
}

/** Signs `email` in on the control host's form; the jar then holds the session and CSRF cookies. */
async function signIn(server: ServerHandle, email: string): Promise<Jar> {
  const jar = new Jar();
  const form = await browse(server, jar, '/auth/login', { headers: { accept: 'text/html' } });
  assert.equal(form.status, 200, form.text);
  const posted = await browse(server, jar, '/auth/login', { method: 'POST', form: { csrf: hidden(form.text, 'csrf'), email, password: PASSWORD } });
  assert.equal(posted.status, 303, posted.text);
  assert.ok(jar.cookies.has('__Host-postern_session'));
  return jar;
}

async function me(server: ServerHandle, jar: Jar): Promise<MeView> {
  const res = await browse(server, jar, '/api/v1/me');
  assert.equal(res.status, 200, res.text);
  return res.json<MeView>();
}

function assertProblem(res: HttpsResponse, status: number, code: string): void {
  assert.equal(res.status, status, res.text);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  assert.equal(res.json<{ code: string }>().code, code, res.text);
}

describe('the dashboard on the control plane', () => {
  let server: ServerHandle;
  let dir: string;
  let webRoot: string;
  let setupUrl: URL;
  let admin: Jar;

  before(async () => {
    dir = (await tempDir('postern-dashboard-')).path;
    webRoot = join(dir, 'web');
    await mkdir(join(webRoot, 'assets', 'fonts'), { recursive: true });
    await writeFile(join(webRoot, 'index.html'), INDEX);
    await writeFile(join(webRoot, 'assets', 'app.js'), APP_JS);
    await writeFile(join(webRoot, 'assets', 'fonts', 'a.woff2'), Buffer.from([0x77, 0x4f, 0x46, 0x32]));
    // Beside the app and above it: files no request may ever read.
    await writeFile(join(webRoot, 'secret.txt'), 'TOP-SECRET-WEB');
    await writeFile(join(dir, 'package.json'), '{"name":"TOP-SECRET-PARENT"}');
    await symlink(join(webRoot, 'secret.txt'), join(webRoot, 'assets', 'link.js'));
    server = await startServer({ extraArgs: ['--web-root', webRoot] });
    const printed = /^ {2}First admin {6}(https:\/\/\S+) {3}\(one-time link: set the first admin's email and password\)$/m.exec(server.process.stdout);
    assert.ok(printed, `no setup link in the banner:\n${server.process.stdout}`);
    setupUrl = new URL(printed[1]!);
  });

  after(async () => {
    await cleanupAll();
  });

  test('the setup link creates the first admin and signs her in; a second use is refused', async () => {
    assert.equal(setupUrl.origin, server.url);
    assert.equal(setupUrl.pathname, '/setup');
    const jar = new Jar();
    const page = await browse(server, jar, setupUrl.pathname + setupUrl.search, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 200, page.text);
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.equal(page.headers['x-frame-options'], 'DENY');
    const token = hidden(page.text, 'token');
    assert.equal(token, setupUrl.searchParams.get('token'));

    const forged = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    assert.equal((await browse(server, jar, `/setup?token=${encodeURIComponent(forged)}`)).status, 400, 'a forged token is refused');
    const mismatch = await browse(server, jar, '/setup', { method: 'POST', form: { token, email: 'root@corp.example', password: PASSWORD, again: `${PASSWORD}!` } });
    assert.equal(mismatch.status, 400);
    assert.match(mismatch.text, /The two passwords differ/);
    const weak = await browse(server, jar, '/setup', { method: 'POST', form: { token, email: 'root@corp.example', password: 'short', again: 'short' } });
    assert.equal(weak.status, 400);
    assert.ok(!jar.cookies.has('__Host-postern_session'), 'no sign-in before the admin exists');

    const created = await browse(server, jar, '/setup', { method: 'POST', form: { token, email: ' Root@Corp.example ', password: PASSWORD, again: PASSWORD } });
    assert.equal(created.status, 303, created.text);
    assert.equal(created.headers.location, '/');
    assert.match(String(created.headers['set-cookie']), /__Host-postern_session=[A-Za-z0-9_-]{43}; Max-Age=\d+; Path=\/; Secure; HttpOnly; SameSite=Lax/);
    const who = await me(server, jar);
    assert.deepEqual({ ...who, csrf: typeof who.csrf }, { email: 'root@corp.example', groups: ['admins'], admin: true, kind: 'browser', csrf: 'string' });
    admin = jar;

    const again = await browse(server, new Jar(), '/setup', { method: 'POST', form: { token, email: 'mallory@corp.example', password: PASSWORD, again: PASSWORD } });
    assert.equal(again.status, 410);
    assert.match(again.text, /Setup is done: an admin exists\. <a href="\/auth\/login">Sign in<\/a>/);
    assert.equal((await browse(server, new Jar(), setupUrl.pathname + setupUrl.search)).status, 410);
    const users = (await api(server, '/api/v1/users')).json<{ users: { email: string }[] }>().users.map((u) => u.email);
    assert.deepEqual(users, ['root@corp.example']);
    const changes = await auditEvents(server, ['--type', 'admin.change']);
    assert.ok(changes.some((e) => e.actor === 'root@corp.example' && /created by the first-admin setup link/.test(e.reason)), JSON.stringify(changes));
    // The password works on the ordinary form too.
    await signIn(server, 'root@corp.example');
  });

  test('an admin\'s cookie reads admin routes; changes need the CSRF header and the control origin', async () => {
    const listed = await browse(server, admin, '/api/v1/sockets');
    assert.equal(listed.status, 200, listed.text);
    const { csrf } = await me(server, admin);
    assert.match(csrf!, /^[A-Za-z0-9_-]{43}$/);
    assert.equal((await me(server, admin)).csrf, csrf, 'the token stays the cookie\'s');

    assertProblem(await browse(server, admin, '/api/v1/sockets', { method: 'POST', body: { name: 'no-token' } }), 403, 'csrf_failed');
    assertProblem(await browse(server, admin, '/api/v1/sockets', { method: 'POST', body: { name: 'wrong-token' }, headers: { 'x-csrf-token': `${csrf!.slice(0, -1)}${csrf!.endsWith('A') ? 'B' : 'A'}` } }), 403, 'csrf_failed');
    assertProblem(await browse(server, admin, '/api/v1/sockets', { method: 'POST', body: { name: 'evil' }, headers: { 'x-csrf-token': csrf!, origin: 'https://evil.example' } }), 403, 'csrf_failed');
    assertProblem(await browse(server, admin, '/api/v1/sockets', { method: 'POST', body: { name: 'sibling' }, headers: { 'x-csrf-token': csrf!, origin: `https://grafana.localhost:${server.port}` } }), 403, 'csrf_failed');
    // The header alone is not enough: it must match this browser's cookie.
    const withoutCookie = new Jar();
    withoutCookie.cookies.set('__Host-postern_session', admin.cookies.get('__Host-postern_session')!);
    assertProblem(await browse(server, withoutCookie, '/api/v1/sockets', { method: 'POST', body: { name: 'no-cookie' }, headers: { 'x-csrf-token': csrf! } }), 403, 'csrf_failed');

    const created = await browse(server, admin, '/api/v1/sockets', { method: 'POST', body: { name: 'from-dashboard' }, headers: { 'x-csrf-token': csrf! } });
    assert.equal(created.status, 201, created.text);
    const sameOrigin = await browse(server, admin, '/api/v1/sockets', { method: 'POST', body: { name: 'same-origin' }, headers: { 'x-csrf-token': csrf!, origin: server.url } });
    assert.equal(sameOrigin.status, 201, sameOrigin.text);
    const names = (await api(server, '/api/v1/sockets')).json<{ sockets: { name: string }[] }>().sockets.map((s) => s.name).sort();
    assert.deepEqual(names, ['from-dashboard', 'same-origin']);
    const changes = await auditEvents(server, ['--type', 'admin.change']);
    assert.ok(changes.some((e) => e.actor === 'root@corp.example' && /socket from-dashboard created by root@corp\.example/.test(e.reason)), 'the audit names the person');

    // Bearer tokens are unaffected: no CSRF header, and a cookie beside one does not count.
    const byToken = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'by-token' }, headers: { origin: 'https://evil.example' } });
    assert.equal(byToken.status, 201, byToken.text);
    const tokenMe = (await api(server, '/api/v1/me')).json<MeView>();
    assert.deepEqual(tokenMe, { email: 'token:first-admin', displayName: 'first-admin', groups: [], admin: true, kind: 'token' });
    const whoami = await browse(server, admin, '/api/v1/auth/whoami');
    assert.equal(whoami.json<{ kind: string }>().kind, 'browser');
  });

  test('a non-admin\'s cookie gets /me and user routes, and admin_required on every admin route', async () => {
    assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email: 'bob@corp.example', name: 'Bob', groups: ['staff'], password: PASSWORD } })).status, 201);
    const bob = await signIn(server, 'bob@corp.example');
    const who = await me(server, bob);
    assert.equal(who.admin, false);
    assert.equal(who.kind, 'browser');
    assert.equal(who.displayName, 'Bob');
    assert.deepEqual(who.groups, ['staff']);
    assertProblem(await browse(server, bob, '/api/v1/sockets'), 403, 'admin_required');
    assertProblem(await browse(server, bob, '/api/v1/sockets', { method: 'POST', body: { name: 'bobs' }, headers: { 'x-csrf-token': who.csrf! } }), 403, 'admin_required');
    assertProblem(await browse(server, bob, '/api/v1/sockets', { method: 'POST', body: { name: 'bobs' } }), 403, 'csrf_failed');
    assertProblem(await browse(server, bob, '/metrics'), 403, 'admin_required');

    // Every route with a scope in the API document, so a route added later cannot forget.
    const doc = (await api(server, '/api/v1/openapi.json')).json<{ paths: Record<string, Record<string, { security?: { bearer?: string[] }[] }>> }>();
    const scoped = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops)
      .filter(([, op]) => (op.security?.[0]?.bearer?.length ?? 0) > 0)
      .map(([method]) => ({ method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, 'x') })));
    assert.ok(scoped.length >= 30, `only ${scoped.length} scoped routes`);
    for (const route of scoped) {
      const res = await browse(server, bob, route.path, { method: route.method, headers: { 'x-csrf-token': who.csrf! }, ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { body: {} }) });
      assertProblem(res, 403, 'admin_required');
    }

    // Signing out through the API ends the cookie's session.
    assertProblem(await browse(server, bob, '/api/v1/auth/logout', { method: 'POST' }), 403, 'csrf_failed');
    const signedOut = await browse(server, bob, '/api/v1/auth/logout', { method: 'POST', headers: { 'x-csrf-token': who.csrf! } });
    assert.equal(signedOut.status, 204, signedOut.text);
    assert.ok(!bob.cookies.has('__Host-postern_session'), 'the cookie is cleared');
    const stale = new Jar();
    stale.cookies.set('__Host-postern_session', 'A'.repeat(43));
    assertProblem(await browse(server, stale, '/api/v1/me'), 401, 'unauthenticated');
  });

  test('the built app: served from memory with a strict CSP, its pages answered with index.html', async () => {
    const assertUiHeaders = (res: HttpsResponse) => {
      assert.equal(res.headers['content-security-policy'], CSP);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['referrer-policy'], 'no-referrer');
      assert.equal(res.headers['x-frame-options'], 'DENY');
    };
    const get = (path: string, headers: Record<string, string> = {}) => httpsFetch({ port: server.port, ca: server.caPem, path, headers });

    const home = await get('/', { accept: 'text/html' });
    assert.equal(home.status, 200);
    assert.equal(home.text, INDEX);
    assert.match(String(home.headers['content-type']), /^text\/html; charset=utf-8/);
    assert.equal(home.headers['cache-control'], 'no-store');
    assertUiHeaders(home);

    const script = await get('/assets/app.js');
    assert.equal(script.status, 200);
    assert.equal(script.text, APP_JS);
    assert.match(String(script.headers['content-type']), /^text\/javascript/);
    assert.equal(script.headers['cache-control'], 'public, max-age=31536000, immutable');
    assertUiHeaders(script);
    const etag = String(script.headers.etag);
    assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
    const cached = await get('/assets/app.js', { 'if-none-match': etag });
    assert.equal(cached.status, 304);
    assert.equal(cached.body.length, 0);
    const font = await get('/assets/fonts/a.woff2');
    assert.equal(font.status, 200);
    assert.equal(font.headers['content-type'], 'font/woff2');

    for (const page of ['/sessions', '/sockets/grafana', '/audit?type=admin.change']) {
      const res = await get(page, { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' });
      assert.equal(res.status, 200, page);
      assert.equal(res.text, INDEX, page);
      assertUiHeaders(res);
    }
    assertProblem(await get('/sessions', { accept: 'application/json' }), 404, 'not_found');
    for (const path of ['/api/v1/nope', '/assets/missing.js', '/auth/nope', '/setup/x', '/favicon.ico', '/.well-known/nope', '/metricsx/..']) {
      assertProblem(await get(path, { accept: 'text/html' }), 404, 'not_found');
    }
    assertProblem(await get('/api/v1/nope'), 404, 'not_found');

    // Nothing beside or above the app, nor behind a link inside it, is ever read.
    for (const path of [
      '/assets/../package.json', '/assets/../../package.json', '/assets/%2e%2e/secret.txt', '/assets/..%2fsecret.txt', '/assets/..%2f..%2fpackage.json',
      '/assets/%2e%2e%2f%2e%2e%2fpackage.json', '/../package.json', '/secret.txt', '/assets//secret.txt', '/assets/link.js', '/assets/app.js/../../secret.txt',
      '/assets/..\\secret.txt', '/%2e%2e/package.json', '/sessions/..%2f..%2fpackage.json', '/assets/fonts/../../secret.txt',
    ]) {
      const res = await get(path, { accept: 'text/html' });
      assert.ok(!/TOP-SECRET/.test(res.text), `${path} leaked a file: ${res.status} ${res.text}`);
      assert.notEqual(res.text, APP_JS, path);
      assert.equal(res.status, 404, `${path}: ${res.status}`);
    }
  });

  test('a real browser: the app asks /me, its change with the token is made, without it refused; the CSP blocks inline script', needsChromium, async () => {
    const browser = await launchChromium();
    try {
      const page = await (await dashboardContext(browser)).newPage();
      await page.goto(`${server.url}/auth/login`);
      await page.fill('input[name=email]', 'root@corp.example');
      await page.fill('input[name=password]', PASSWORD);
      await Promise.all([page.waitForURL((url) => url.pathname === '/'), page.click('button[type=submit]')]);
      await page.waitForFunction(() => document.getElementById('out')?.textContent !== '', undefined, { timeout: 15_000 });
      const result = JSON.parse((await page.textContent('#out'))!) as Record<string, unknown>;
      assert.deepEqual(result, { email: 'root@corp.example', admin: true, kind: 'browser', created: 201, refused: 403 });
      assert.equal(await page.title(), 'test dashboard', 'the inline script did not run');
      const names = (await api(server, '/api/v1/sockets')).json<{ sockets: { name: string }[] }>().sockets.map((s) => s.name);
      assert.ok(names.includes('from-chromium') && !names.includes('chromium-no-token'), names.join(', '));
    } finally {
      await browser.close();
    }
  });

  test('after a restart with an admin: no link is printed, the old one is refused; without a built app, / is the landing page', async () => {
    await server.stop();
    const empty = (await tempDir('postern-no-web-')).path;
    const again = await startServer({ dataDir: server.dataDir, extraArgs: ['--web-root', empty] });
    assert.doesNotMatch(again.process.stdout, /First admin/);
    assert.equal((await httpsFetch({ port: again.port, ca: again.caPem, path: setupUrl.pathname + setupUrl.search })).status, 410);
    const home = await httpsFetch({ port: again.port, ca: again.caPem, path: '/', headers: { accept: 'text/html' } });
    assert.equal(home.status, 200);
    assert.match(home.text, /This is the control plane/);
    assertProblem(await httpsFetch({ port: again.port, ca: again.caPem, path: '/sessions', headers: { accept: 'text/html' } }), 404, 'not_found');
  });
});
