// Runs the store suite on SQLite files in a temporary directory (removed afterwards), plus
// SQLite-specific checks: WAL mode, nested directories, :memory:.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import BetterSqlite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { noSocketAuth, openStore, silentLogger } from '../../src/store/index.js';
import type { Store } from '../../src/store/index.js';
import type { StoreFixture } from './helpers.js';
import { runStoreSuite } from './suite.js';
import { assertUpgradedBindings, assertUpgradedSshFields, prepareAt0001 } from './upgrade.js';

async function makeSqliteStore(): Promise<StoreFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-store-'));
  const file = join(dir, 'nested', 'postern.db');
  const opened: Store[] = [];
  const open = async (): Promise<Store> => {
    const store = await openStore(file, { logger: silentLogger });
    opened.push(store);
    return store;
  };
  const store = await open();
  return {
    store,
    openPeer: open,
    async cleanup() {
      for (const s of opened) await s.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('store suite: SQLite file', async (t) => {
  await runStoreSuite(t, makeSqliteStore);
});

test('store suite: SQLite :memory:', async (t) => {
  await runStoreSuite(t, async () => {
    const store = await openStore(':memory:', { logger: silentLogger });
    return { store, cleanup: () => store.close() };
  });
});

test('SQLite: creates parent directories, uses WAL, reopens with data and revision', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'postern-store-'));
  try {
    const file = join(dir, 'a', 'b', 'postern.db');
    const store = await openStore(file, { logger: silentLogger });
    await store.sockets.create({ name: 'kept', type: 'http' });
    const rev = await store.currentRevision();
    assert.ok(existsSync(`${file}-wal`), 'write-ahead log in use');
    await store.close();
    const again = await openStore(file, { logger: silentLogger });
    assert.equal((await again.sockets.get('kept'))?.name, 'kept');
    assert.equal(await again.currentRevision(), rev);
    await again.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('SQLite: 0002…0011 upgrade a 0001 database; old sockets get noSocketAuth and the connectors not revoked, old tokens the admin scope, no host key pins', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'postern-store-'));
  try {
    const file = join(dir, 'old.db');
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new BetterSqlite(file) }) });
    await prepareAt0001(db, 'sqlite');
    await db.destroy();
    const store = await openStore(file, { logger: silentLogger });
    try {
      assert.deepEqual((await store.sockets.get('old'))?.auth, noSocketAuth);
      await assertUpgradedBindings(store);
      await assertUpgradedSshFields(store);
      assert.deepEqual((await store.apiTokens.findByHash('old-hash'))?.scopes, ['admin'], 'tokens from before scopes keep doing everything');
      const user = await store.users.create({ email: 'a@b.c' });
      assert.equal((await store.users.get(user.id))?.email, 'a@b.c');
    } finally {
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
