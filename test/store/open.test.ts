// openStore's failure modes: every bad configuration is one clear typed error, never a crash
// and never a leaked password.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeDatabase, isPostgresUrl, openStore, silentLogger } from '../../src/store/index.js';
import { rejectsWith } from './helpers.js';

test('openStore: unreachable PostgreSQL is store_unavailable in one line, without the password', async () => {
  const url = 'postgres://admin:s3cretpw@127.0.0.1:1/postern';
  await assert.rejects(openStore(url, { logger: silentLogger, connectTimeoutMs: 2000 }), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'store_unavailable');
    const message = (err as Error).message;
    assert.match(message, /^cannot connect to PostgreSQL at 127\.0\.0\.1:1\/postern: /);
    assert.doesNotMatch(message, /s3cretpw/);
    assert.doesNotMatch(message, /\n/);
    assert.ok((err as Error).cause !== undefined);
    return true;
  });
});

test('openStore: malformed PostgreSQL URL is store_unavailable', async () => {
  await rejectsWith(openStore('postgres://[not-a-host', { logger: silentLogger }), 'store_unavailable');
});

test('openStore: bad configuration is config_invalid', async () => {
  await rejectsWith(openStore(''), 'config_invalid');
  await rejectsWith(openStore('mysql://root@localhost/x'), 'config_invalid', /unsupported database URL scheme/);
  await rejectsWith(openStore('postgres://u@127.0.0.1:1/x', { schema: 'Robert"; drop' }), 'config_invalid');
  await rejectsWith(openStore(':memory:', { schema: 'x' }), 'config_invalid');
});

test('openStore: an SQLite path that cannot be created is store_unavailable', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'postern-open-'));
  try {
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    await rejectsWith(openStore(join(file, 'db.sqlite'), { logger: silentLogger }), 'store_unavailable', /cannot open SQLite file/);
    await writeFile(join(dir, 'garbage.db'), 'this is not an SQLite database, just some text '.repeat(100));
    await rejectsWith(openStore(join(dir, 'garbage.db'), { logger: silentLogger }), 'store_unavailable');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('describeDatabase and isPostgresUrl', () => {
  assert.equal(isPostgresUrl('postgresql://x@h/db'), true);
  assert.equal(isPostgresUrl('POSTGRES://x@h/db'), true);
  assert.equal(isPostgresUrl('./data/postern.db'), false);
  assert.equal(describeDatabase('postgres://u:pw@db.example:6543/app'), 'PostgreSQL at db.example:6543/app');
  assert.equal(describeDatabase(':memory:'), 'in-memory SQLite');
});
