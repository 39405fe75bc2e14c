// Security: admin rights of a person's sign-in. Every route that needs a scope answers a CLI
// session token of someone outside the admin group with 403 admin_required before it runs —
// checked against every such route in the API document, so a route added later cannot forget.
// Group names that only look like the admin group do not count, and a disabled admin's sign-in
// is dead at once. Real server, real device sign-in.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { deviceLogin } from '../helpers/login.js';
import { tempDir } from '../helpers/util.js';
import { loadLogin } from '../../src/cli/credentials.js';

const PASSWORD = 'correct horse battery staple';

interface Route { method: string; path: string }

describe('a person\'s sign-in reaches admin routes only through the admin group', () => {
  let server: ServerHandle;
  let scoped: Route[];
  const tokens = new Map<string, string>();

  before(async () => {
    server = await startServer();
    const people: [string, string[]][] = [
      ['nora@corp.example', ['staff']], ['ada@corp.example', ['admins']], ['lookalike@corp.example', ['Admins', 'admins ', ' admins', 'admins/x', 'ADMINS']],
    ];
    for (const [email, groups] of people) {
      const created = await api(server, '/api/v1/users', { method: 'POST', body: { email, groups, password: PASSWORD } });
      assert.equal(created.status, 201, created.text);
      const configDir = join((await tempDir('postern-role-')).path, 'config');
      await deviceLogin(server, configDir, email, PASSWORD);
      tokens.set(email, loadLogin(configDir, server.url)!.token);
    }
    const doc = (await api(server, '/api/v1/openapi.json')).json<{ paths: Record<string, Record<string, { security?: { bearer?: string[] }[] }>> }>();
    scoped = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops)
      .filter(([, op]) => (op.security?.[0]?.bearer?.length ?? 0) > 0)
      .map(([method, _op]) => ({ method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, 'x') })));
    assert.ok(scoped.length >= 30, `only ${scoped.length} scoped routes found`);
    scoped.push({ method: 'GET', path: '/metrics' });
  });

  after(async () => {
    await cleanupAll();
  });

  test('outside the admin group, or in a group that only looks like it: admin_required on every scoped route', async () => {
    for (const email of ['nora@corp.example', 'lookalike@corp.example']) {
      for (const route of scoped) {
        const res = await api(server, route.path, { method: route.method, token: tokens.get(email)!, ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { body: {} }) });
        assert.equal(res.status, 403, `${email}: ${route.method} ${route.path}: ${res.text}`);
        assert.equal(res.json<{ code: string }>().code, 'admin_required', `${route.method} ${route.path}`);
      }
    }
  });

  test('an admin reaches them; disabled, her sign-in is refused at once', async () => {
    // Streams (the audit's JSONL, the dashboard's server-sent events) never end: their refusal is what matters, and that is checked above.
    for (const route of scoped.filter((r) => r.method === 'GET' && !/\/(stream|events)$/.test(r.path))) {
      const res = await api(server, route.path, { token: tokens.get('ada@corp.example')! });
      assert.ok(res.status !== 401 && res.status !== 403, `${route.path}: ${res.status} ${res.text}`);
    }
    const disabled = await api(server, '/api/v1/users/ada@corp.example', { method: 'PATCH', body: { disabled: true } });
    assert.equal(disabled.status, 200, disabled.text);
    const after = await api(server, '/api/v1/sockets', { token: tokens.get('ada@corp.example')! });
    assert.equal(after.status, 401, after.text);
  });
});
