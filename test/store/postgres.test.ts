// Runs the store suite on a real PostgreSQL (POSTERN_TEST_PG), in a schema unique to this run
// that is dropped at the end. Unreachable: fails under CI=true, otherwise skips visibly.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { isPosternError } from '../../src/errors.js';
import { describeDatabase, noSocketAuth, openStore, silentLogger, storeTables } from '../../src/store/index.js';
import type { Store } from '../../src/store/index.js';
import type { StoreFixture } from './helpers.js';
import { runStoreSuite } from './suite.js';
import { assertUpgradedBindings, assertUpgradedSshFields, prepareAt0001 } from './upgrade.js';

const url = process.env.POSTERN_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `postern_test_${randomBytes(6).toString('hex')}`;

const upgradeSchema = `${schema}_up`;
const secondSchema = `${schema}_two`;

async function dropSchema(): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  try {
    await pool.query(`drop schema if exists "${schema}" cascade`);
    await pool.query(`drop schema if exists "${upgradeSchema}" cascade`);
    await pool.query(`drop schema if exists "${secondSchema}" cascade`);
  } finally {
    await pool.end();
  }
}

test('store suite: PostgreSQL', async (t) => {
  let probe: Store;
  try {
    probe = await openStore(url, { schema, logger: silentLogger, connectTimeoutMs: 5000 });
  } catch (err) {
    if (!isPosternError(err, 'store_unavailable')) throw err;
    const where = describeDatabase(url).replace(/^PostgreSQL at /, '');
    const message = `PostgreSQL unreachable at ${where} (set POSTERN_TEST_PG to change): ${err.message}`;
    if (process.env.CI === 'true') assert.fail(message);
    t.diagnostic(message);
    t.skip(message);
    return;
  }
  await probe.close();
  const pool = new pg.Pool({ connectionString: url, max: 1 });

  const makeStore = async (): Promise<StoreFixture> => {
    const opened: Store[] = [];
    const open = async (): Promise<Store> => {
      const store = await openStore(url, { schema, logger: silentLogger });
      opened.push(store);
      return store;
    };
    const store = await open();
    // One schema per run; each case starts from empty tables and revision 0.
    await pool.query(`truncate ${storeTables.map((n) => `"${schema}"."${n}"`).join(', ')} restart identity`);
    return {
      store,
      openPeer: open,
      async cleanup() {
        for (const s of opened) await s.close();
      },
    };
  };

  try {
    await runStoreSuite(t, makeStore);

    await t.test('tables live in the run schema, not in public', async () => {
      const { rows } = await pool.query<{ table_schema: string }>(
        `select distinct table_schema from information_schema.tables where table_name = 'changes' and table_schema = $1`,
        [schema],
      );
      assert.deepEqual(rows.map((r) => r.table_schema), [schema]);
    });

    await t.test('a fresh second schema in the same database migrates on its own', async () => {
      const store = await openStore(url, { schema: secondSchema, logger: silentLogger });
      try {
        assert.equal(await store.currentRevision(), 0);
        await store.users.create({ email: 'two@example.com' });
        const { rows } = await pool.query<{ table_schema: string }>(
          `select table_schema from information_schema.tables where table_name = 'kysely_migration' and table_schema = $1`,
          [secondSchema],
        );
        assert.equal(rows.length, 1, 'its own migration table');
      } finally {
        await store.close();
      }
    });

    await t.test('0002…0011 upgrade a 0001 database; old sockets get noSocketAuth and the connectors not revoked, old tokens the admin scope, no host key pins', async () => {
      await pool.query(`create schema "${upgradeSchema}"`);
      const db = new Kysely<any>({
        dialect: new PostgresDialect({
          pool: new pg.Pool({ connectionString: url, max: 1, options: `-c search_path=${upgradeSchema}` }),
        }),
      });
      try {
        await prepareAt0001(db, 'postgres', upgradeSchema);
      } finally {
        await db.destroy();
      }
      const store = await openStore(url, { schema: upgradeSchema, logger: silentLogger });
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
    });

    await t.test('revision is a JS number after BIGSERIAL', async () => {
      const store = await openStore(url, { schema, logger: silentLogger });
      try {
        await store.secrets.put('n', '1');
        const [change] = await store.changesSince(0, 1);
        assert.equal(typeof change?.revision, 'number');
        assert.equal(typeof (await store.currentRevision()), 'number');
      } finally {
        await store.close();
      }
    });
  } finally {
    await pool.end();
    await dropSchema();
  }
});
