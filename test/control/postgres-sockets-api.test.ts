// The control API and CLI for a postgres socket's default database: set at creation, changed and
// cleared by an update, shown by `socket ls` / `socket show`, and refused on other socket types.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';

interface Socket {
  name: string;
  type: string;
  database: string | null;
}

describe('control API: a postgres socket\'s default database', () => {
  let server: ServerHandle;

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await cleanupAll();
  });

  test('set at creation, changed, cleared with null; none by default', async () => {
    const created = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'orders', type: 'postgres', upstream: 'tcp://127.0.0.1:5432', database: 'orders' } });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json<Socket>().database, 'orders');
    const changed = await api(server, '/api/v1/sockets/orders', { method: 'PATCH', body: { database: 'billing' } });
    assert.equal(changed.json<Socket>().database, 'billing');
    const kept = await api(server, '/api/v1/sockets/orders', { method: 'PATCH', body: { description: 'the shop' } });
    assert.equal(kept.json<Socket>().database, 'billing', 'an update that does not name it keeps it');
    const cleared = await api(server, '/api/v1/sockets/orders', { method: 'PATCH', body: { database: null } });
    assert.equal(cleared.json<Socket>().database, null);
    const plain = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'metrics', type: 'postgres', upstream: 'tcp://127.0.0.1:5432' } });
    assert.equal(plain.json<Socket>().database, null);
  });

  test('refused on other socket types, and when empty or longer than an identifier', async () => {
    const http = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'wiki', type: 'http', database: 'orders' } });
    assert.equal(http.status, 400, http.text);
    assert.match(http.json<{ detail: string }>().detail, /database applies to postgres sockets only, not to a http socket/);
    assert.equal((await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'wiki', type: 'http' } })).status, 201);
    const patched = await api(server, '/api/v1/sockets/wiki', { method: 'PATCH', body: { database: 'orders' } });
    assert.equal(patched.status, 400, patched.text);
    for (const database of ['', 'x'.repeat(64)]) {
      const bad = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'bad', type: 'postgres', database } });
      assert.equal(bad.status, 400, `${JSON.stringify(database)}: ${bad.text}`);
    }
  });

  test('the CLI: socket create --database, socket update --database (\'\' clears it), shown by ls and show', async () => {
    const created = await server.cli(['socket', 'create', '--name', 'ledger', '--type', 'postgres', '--upstream', 'tcp://127.0.0.1:5432', '--database', 'ledger_prod']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^database:\s+ledger_prod$/m);
    const listed = await server.cli(['socket', 'ls']);
    assert.match(listed.stdout, /^NAME\s+TYPE\s+URL\s+UPSTREAM\s+DATABASE\s+ONLINE$/m);
    assert.match(listed.stdout, /^ledger\s+postgres\s+\S+\s+tcp:\/\/127\.0\.0\.1:5432\s+ledger_prod\s+no$/m);
    assert.match(listed.stdout, /^wiki\s+http\s+\S+\s+-\s+-\s+no$/m);
    const updated = await server.cli(['socket', 'update', 'ledger', '--database', 'ledger_test']);
    assert.match(updated.stdout, /^database:\s+ledger_test$/m);
    const cleared = await server.cli(['socket', 'update', 'ledger', '--database', '']);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.match((await server.cli(['socket', 'show', 'ledger'])).stdout, /^database:\s+-$/m);
  });
});
