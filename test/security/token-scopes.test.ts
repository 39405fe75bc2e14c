// Security: every service token could once do everything an admin can (create sockets, issue
// certificates, change policies), so a token made for reading the audit trail was a master key.
// Tokens now carry scopes from a closed set; a route refuses a token without its scope with a
// 403 problem+json naming it; `admin` (and every token from before scopes) can still do all.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { createKeyAndCsr } from '../../src/ca/csr.js';

const USER = 'joe@corp.example';

interface Call {
  readonly method: string;
  readonly path: string;
  readonly scope: string;
  readonly body?: unknown;
}

describe('security: service token scopes', () => {
  let server: ServerHandle;
  let csr: string;
  const tokens = new Map<string, string>();

  /** `postern token create --scope …` through the real CLI; the secret it prints. */
  const createToken = async (name: string, scopes: string[]) => {
    const created = await server.cli(['token', 'create', '--name', name, ...scopes.flatMap((s) => ['--scope', s])]);
    assert.equal(created.code, 0, created.stderr);
    return created.stdout.trim();
  };

  before(async () => {
    server = await startServer();
    assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email: USER } })).status, 201);
    csr = (await createKeyAndCsr(USER)).csrPem;
    tokens.set('audit', await createToken('auditor', ['audit:read']));
    tokens.set('sockets', await createToken('deployer', ['sockets:write']));
    tokens.set('certs', await createToken('issuer', ['certs:issue']));
    tokens.set('admin', await createToken('automation', ['admin']));
  });

  after(async () => {
    await cleanupAll();
  });

  /** One call per scope-guarded route group (bodies valid, so only the scope can refuse them). */
  const calls = (): Call[] => [
    { method: 'GET', path: '/api/v1/audit?limit=1', scope: 'audit:read' },
    { method: 'GET', path: '/api/v1/sockets', scope: 'sockets:read' },
    { method: 'POST', path: '/api/v1/sockets', scope: 'sockets:write', body: { name: `s-${Math.random().toString(36).slice(2, 8)}` } },
    { method: 'POST', path: '/api/v1/certificates/tls', scope: 'certs:issue', body: { csr, email: USER } },
    { method: 'POST', path: '/api/v1/connectors/tokens', scope: 'connectors:write', body: {} },
    { method: 'GET', path: '/api/v1/connectors', scope: 'connectors:read' },
    { method: 'PUT', path: '/api/v1/policies', scope: 'policies:write', body: { document: { name: `p${Math.random().toString(36).slice(2, 8)}`, rules: [{ effect: 'allow', who: { email: [USER] } }] } } },
    { method: 'GET', path: '/api/v1/policies', scope: 'policies:read' },
    { method: 'POST', path: '/api/v1/users', scope: 'users:write', body: { email: `u${Math.random().toString(36).slice(2, 8)}@corp.example` } },
    { method: 'GET', path: '/api/v1/users', scope: 'users:read' },
    { method: 'GET', path: '/api/v1/sessions', scope: 'sessions:read' },
    { method: 'POST', path: '/api/v1/connections/kill', scope: 'sessions:write', body: { user: USER } },
    { method: 'GET', path: '/metrics', scope: 'metrics:read' },
    { method: 'GET', path: '/api/v1/identity-providers', scope: 'admin' },
    { method: 'GET', path: '/api/v1/tokens', scope: 'admin' },
  ];

  const call = (name: string, c: Call) => api(server, c.path, { method: c.method, token: tokens.get(name) ?? name, ...(c.body === undefined ? {} : { body: c.body }) });

  /** What each test token may do: its own scope, `:read` under its `:write`, everything for admin. */
  const allowed: Record<string, (scope: string) => boolean> = {
    audit: (s) => s === 'audit:read',
    sockets: (s) => s === 'sockets:write' || s === 'sockets:read',
    certs: (s) => s === 'certs:issue',
    admin: () => true,
  };

  for (const name of Object.keys(allowed)) {
    test(`the ${name} token: each route allows it exactly when it holds the route's scope; refusals are 403 problem+json naming the scope`, async () => {
      for (const c of calls()) {
        const res = await call(name, c);
        if (allowed[name]!(c.scope)) {
          assert.ok(res.status >= 200 && res.status < 300, `${name} ${c.method} ${c.path}: ${res.status} ${res.text}`);
          continue;
        }
        assert.equal(res.status, 403, `${name} ${c.method} ${c.path}: ${res.text}`);
        assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
        const problem = res.json<{ code: string; detail: string; status: number }>();
        assert.equal(problem.code, 'forbidden');
        assert.equal(problem.status, 403);
        assert.ok(problem.detail.includes(`"${c.scope}"`), `${name} ${c.method} ${c.path}: ${problem.detail}`);
      }
    });
  }

  test('the server\'s admin token (from before scopes) keeps doing everything', async () => {
    for (const c of calls()) {
      const res = await call(server.adminToken, c);
      assert.ok(res.status >= 200 && res.status < 300, `${c.method} ${c.path}: ${res.status} ${res.text}`);
    }
  });

  test('through the CLI: an audit:read token searches the audit trail but cannot create a socket (one line naming the scope)', async () => {
    const env = { POSTERN_TOKEN: tokens.get('audit')! };
    const search = await server.cli(['audit', 'search', '--json', '--limit', '5'], env);
    assert.equal(search.code, 0, search.stderr);
    const refused = await server.cli(['socket', 'create', '--name', 'nope'], env);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.match(refused.stderr, /^postern: the token "auditor" lacks the scope "sockets:write"/);
    const whoami = JSON.parse((await server.cli(['whoami', '--json'], env)).stdout) as { scopes: string[] };
    assert.deepEqual(whoami.scopes, ['audit:read']);
  });

  test('scopes are chosen from a closed set, never defaulted; token ls shows them', async () => {
    const unknown = await server.cli(['token', 'create', '--name', 'bad', '--scope', 'sockets:*']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr.trim().split('\n').length, 1, unknown.stderr);
    assert.match(unknown.stderr, /scopes/);
    const none = await server.cli(['token', 'create', '--name', 'bad']);
    assert.notEqual(none.code, 0, 'no --scope, no token');
    const viaApi = await api(server, '/api/v1/tokens', { method: 'POST', body: { name: 'bad' } });
    assert.equal(viaApi.status, 400, viaApi.text);
    const listed = JSON.parse((await server.cli(['token', 'ls', '--json'])).stdout) as { name: string; scopes: string[] }[];
    assert.ok(!listed.some((t) => t.name === 'bad'));
    assert.deepEqual(listed.find((t) => t.name === 'deployer')?.scopes, ['sockets:write']);
    assert.deepEqual(listed.find((t) => t.name === 'first-admin')?.scopes, ['admin']);
  });

  test('an admin-scoped service token still cannot mint tokens (no self-replication)', async () => {
    const minted = await api(server, '/api/v1/tokens', { method: 'POST', body: { name: 'more', scopes: ['admin'] }, token: tokens.get('admin')! });
    assert.equal(minted.status, 403, minted.text);
  });
});
