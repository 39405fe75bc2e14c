// E2E: Debian's nginx in front of an upstream asks Postern for every request (`auth_request` to
// /_postern/authz/app): a person signed in on Postern's form gets the upstream's answer and the
// upstream sees the identity headers; a denied person and a denied path get 403; nobody signed in
// is sent to the sign-in page; and every decision is in Postern's request log.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { SignInBrowser } from '../helpers/browser.js';
import { api } from '../helpers/https.js';
import { Managed, cleanupAll, startServer, waitForAudit } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { freePort, tempDir, waitFor } from '../helpers/util.js';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((path) => existsSync(path));
const needsNginx = { skip: NGINX || process.env.CI === 'true' ? false : 'no nginx here (apt-get install nginx-light); the authorize endpoint is not tested against it' } as const;
if (needsNginx.skip) console.log(`# SKIP authz-nginx: ${needsNginx.skip}`);

const PASSWORD = 'correct horse battery staple';
const ANA = 'ana@corp.example';
const BOB = 'bob@corp.example';
const COOKIE = '__Host-postern_session';

/** The nginx.conf a reader would write: auth_request to Postern, identity headers passed on, 401 → sign-in. */
function nginxConfig(o: { dir: string; port: number; posternPort: number; upstreamPort: number; caFile: string }): string {
  const identity = ['x_auth_email', 'x_auth_user', 'x_auth_groups', 'x_postern_jwt_assertion'];
  return `
pid ${o.dir}/nginx.pid;
error_log ${o.dir}/error.log info;
events { worker_connections 64; }
http {
  access_log ${o.dir}/access.log;
  client_body_temp_path ${o.dir}/tmp/body; proxy_temp_path ${o.dir}/tmp/proxy; fastcgi_temp_path ${o.dir}/tmp/fastcgi;
  uwsgi_temp_path ${o.dir}/tmp/uwsgi; scgi_temp_path ${o.dir}/tmp/scgi;
  server {
    listen 127.0.0.1:${o.port};
    location / {
      auth_request /_postern_authz;
${identity.map((h) => `      auth_request_set $${h} $upstream_http_${h};\n      proxy_set_header ${h.replace(/_/g, '-')} $${h};`).join('\n')}
      auth_request_set $postern_login $upstream_http_location;
      error_page 401 = @postern_login;
      proxy_pass http://127.0.0.1:${o.upstreamPort};
    }
    location = /_postern_authz {
      internal;
      proxy_pass https://127.0.0.1:${o.posternPort}/_postern/authz/app;
      proxy_ssl_server_name on;
      proxy_ssl_name localhost;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${o.caFile};
      proxy_set_header Host localhost;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
    location @postern_login {
      return 302 $postern_login;
    }
  }
}
`;
}

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string }

describe('nginx auth_request in front of an upstream, decided by Postern', { skip: needsNginx.skip }, () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let nginx: Managed;
  let nginxPort: number;
  const cookies = new Map<string, string>();

  /** A request to nginx with the path on the wire exactly as written. */
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') => new Promise<Answer>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: nginxPort, path, method, headers, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`nginx did not answer ${path} in time`)));
    req.on('error', reject);
    req.end();
  });
  const as = (email: string) => ({ cookie: `theme=dark; ${COOKIE}=${cookies.get(email)!}` });

  before(async () => {
    upstream = await startUpstream();
    server = await startServer({ extraArgs: ['--trusted-proxies', '127.0.0.1'] });
    for (const email of [ANA, BOB]) assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email, password: PASSWORD, groups: ['staff'] } })).status, 201);
    const dir = (await tempDir('postern-authz-nginx-')).path;
    const cli = async (args: string[]) => {
      const result = await server.cli(args);
      assert.equal(result.code, 0, `postern ${args.join(' ')}: ${result.stderr}`);
    };
    // No connector: the socket only names the policies nginx asks about.
    await cli(['socket', 'create', '--name', 'app', '--type', 'http', '--cloudauth']);
    await writeFile(join(dir, 'app.yaml'), [
      'name: app-rules', 'sockets: [app]', 'rules:',
      '  - name: not-bob', '    effect: deny', `    who: { email: [${BOB}] }`,
      '  - name: no-admin', '    effect: deny', '    what: { http: { paths: ["/admin/*"] } }', '',
    ].join('\n'));
    await cli(['policy', 'apply', '-f', join(dir, 'app.yaml')]);
    // Signing in on Postern's form (through the socket host, as a browser would) leaves the socket host's cookie.
    for (const email of [ANA, BOB]) {
      const browser = new SignInBrowser(server, PASSWORD);
      await browser.signIn(`https://app.localhost:${server.port}/`, email);
      const cookie = browser.cookies('app.localhost').get(COOKIE);
      assert.ok(cookie, `${email} has a session cookie of the socket host`);
      cookies.set(email, cookie);
    }
    nginxPort = await freePort();
    await mkdir(join(dir, 'tmp'));
    const conf = join(dir, 'nginx.conf');
    await writeFile(conf, nginxConfig({ dir, port: nginxPort, posternPort: server.port, upstreamPort: upstream.port, caFile: server.caFile }));
    // In the foreground, one process (no workers to switch users for), logging into the temp dir only.
    nginx = new Managed('nginx', spawn(NGINX ?? 'nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf, '-g', 'daemon off; master_process off;'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    await waitFor(() => new Promise<boolean>((resolve) => {
      const probe = net.connect(nginxPort, '127.0.0.1', () => (probe.destroy(), resolve(true)));
      probe.on('error', () => resolve(false));
    }), { what: `nginx listening on ${nginxPort} (${nginx.stderr})`, timeoutMs: 10_000, intervalMs: 100 });
  });

  after(async () => {
    await nginx?.stop('SIGTERM');
    await cleanupAll();
    await upstream?.close();
  });

  test('an allowed person gets the upstream, which sees who it is; the assertion works as a bearer token too', async () => {
    upstream.seen.length = 0;
    const res = await get('/reports?month=3', as(ANA));
    assert.equal(res.status, 200, res.body);
    const seen = upstream.seen.at(-1)!;
    assert.equal(seen.url, '/reports?month=3');
    assert.equal(seen.headers['x-auth-email'], ANA);
    assert.equal(seen.headers['x-auth-groups'], 'staff');
    const assertion = String(seen.headers['x-postern-jwt-assertion']);
    assert.deepEqual([decodeJwt(assertion).email, decodeJwt(assertion).aud], [ANA, `https://app.localhost:${server.port}`]);
    const bearer = await get('/reports', { authorization: `Bearer ${assertion}` });
    assert.equal(bearer.status, 200, bearer.body);
    await waitForAudit(server, ['--type', 'http.request', '--user', ANA, '--decision', 'allow'], (e) => e.details.via === 'authorize' && e.details.path === '/reports', 'the allowed request in the log');
  });

  test('a denied person, and a denied path in any spelling, get 403 and never reach the upstream', async () => {
    upstream.seen.length = 0;
    assert.equal((await get('/reports', as(BOB))).status, 403);
    for (const spelling of ['/admin/users', '/x/../admin/users', '/x/%2e%2e/admin/users', '//admin//users', '/%61dmin/users']) {
      assert.equal((await get(spelling, as(ANA))).status, 403, spelling);
    }
    assert.equal((await get('/admin%2Fusers', as(ANA))).status, 403, 'an encoded slash is refused, as the edge refuses it');
    assert.equal((await get('/admin/users', as(ANA), 'POST')).status, 403);
    assert.deepEqual(upstream.seen.map((s) => s.url), []);
    const denied = await waitForAudit(server, ['--type', 'http.request', '--user', BOB, '--decision', 'deny'], (e) => e.details.via === 'authorize', 'the denied request in the log');
    assert.equal(denied.rule, 'app-rules#not-bob');
  });

  test('no identity: nginx sends the browser to Postern sign-in with return_to', async () => {
    const res = await get('/reports?month=3', { cookie: 'theme=dark' });
    assert.equal(res.status, 302, res.body);
    const login = new URL(String(res.headers.location));
    assert.equal(`${login.origin}${login.pathname}`, `https://localhost:${server.port}/auth/login`);
    assert.deepEqual([login.searchParams.get('socket'), login.searchParams.get('return_to')], ['app', '/reports?month=3']);
    assert.equal(upstream.seen.filter((s) => s.url === '/reports?month=3' && !s.headers['x-auth-email']).length, 0);
  });
});
