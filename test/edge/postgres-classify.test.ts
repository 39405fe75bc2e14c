// The read-only classifier against PostgreSQL's own parser: a table of statements with the
// verdict a read-only session must reach, including writes hidden behind comments, quoting,
// CTEs and multi-statement strings, and everything that could lift the upstream read-only setting.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SqlSyntaxError, classifyStatements, readOnlyVerdict } from '../../src/edge/postgres/classify.js';
import type { StatementClass, StatementKind } from '../../src/edge/postgres/classify.js';

type Row = [sql: string, verdict: 'allow' | 'refuse', kind?: StatementKind];

const TABLE: Row[] = [
  // Plain reads.
  ['SELECT 1', 'allow', 'read'],
  ['select * from orders where id = $1', 'allow', 'read'],
  ['SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.region', 'allow', 'read'],
  ['WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval \'1 day\') SELECT * FROM recent', 'allow', 'read'],
  ['WITH a AS (WITH b AS (SELECT 1 AS x) SELECT x FROM b) SELECT * FROM a', 'allow', 'read'],
  ['VALUES (1, \'a\'), (2, \'b\')', 'allow', 'read'],
  ['SELECT 1 UNION ALL SELECT 2 INTERSECT SELECT 2', 'allow', 'read'],
  ['TABLE orders', 'allow', 'read'],
  ['SHOW search_path', 'allow', 'read'],
  ['SHOW ALL', 'allow', 'read'],
  ['EXPLAIN SELECT * FROM orders', 'allow', 'read'],
  ['EXPLAIN DELETE FROM orders', 'allow', 'read'],
  ['EXPLAIN (ANALYZE false) DELETE FROM orders', 'allow', 'read'],
  ['EXPLAIN ANALYZE SELECT * FROM orders', 'allow', 'read'],
  ['SELECT my_writer()', 'allow', 'read'], // opaque to a parser: default_transaction_read_only upstream refuses its writes
  ['SELECT pg_sleep(30)', 'allow', 'read'],
  ['SELECT current_setting(\'default_transaction_read_only\')', 'allow', 'read'],
  ['SELECT set_config(\'application_name\', \'report\', false)', 'allow', 'read'],
  ['COPY orders TO STDOUT', 'allow', 'copy-out'],
  ['COPY (SELECT id FROM orders) TO STDOUT WITH (FORMAT csv)', 'allow', 'copy-out'],
  ['DECLARE c CURSOR FOR SELECT * FROM orders', 'allow', 'read'],
  ['FETCH 10 FROM c', 'allow', 'read'],
  ['CLOSE c', 'allow', 'other'],
  ['PREPARE q AS SELECT * FROM orders WHERE id = $1', 'allow', 'read'],
  ['DEALLOCATE q', 'allow', 'other'],
  ['LISTEN orders_changed', 'allow', 'other'],
  ['DISCARD PLANS', 'allow', 'other'],
  // Transactions.
  ['BEGIN', 'allow', 'transaction'],
  ['BEGIN READ ONLY', 'allow', 'transaction'],
  ['START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY', 'allow', 'transaction'],
  ['COMMIT', 'allow', 'transaction'],
  ['ROLLBACK', 'allow', 'transaction'],
  ['SAVEPOINT s1', 'allow', 'transaction'],
  ['BEGIN READ WRITE', 'refuse', 'transaction'],
  ['START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE', 'refuse', 'transaction'],
  ['COMMIT PREPARED \'gid\'', 'refuse', 'transaction'],
  ['PREPARE TRANSACTION \'gid\'', 'refuse', 'transaction'],
  // Harmless settings.
  ['SET search_path = reporting, public', 'allow', 'set'],
  ['SET application_name TO \'psql\'', 'allow', 'set'],
  ['SET LOCAL statement_timeout = 5000', 'allow', 'set'],
  ['RESET statement_timeout', 'allow', 'set'],
  ['SET default_transaction_read_only = on', 'allow', 'set'],
  ['SET TRANSACTION READ ONLY', 'allow', 'set'],
  ['RESET ROLE', 'allow', 'set'],
  // Settings that would lift the read-only defence or the mapped role.
  ['SET default_transaction_read_only = off', 'refuse', 'set'],
  ['SET SESSION default_transaction_read_only TO false', 'refuse', 'set'],
  ['set default_transaction_read_only = 0', 'refuse', 'set'],
  ['SET default_transaction_read_only TO DEFAULT', 'refuse', 'set'],
  ['SET transaction_read_only = off', 'refuse', 'set'],
  ['RESET default_transaction_read_only', 'refuse', 'set'],
  ['RESET ALL', 'refuse', 'set'],
  ['DISCARD ALL', 'refuse', 'set'],
  ['SET TRANSACTION READ WRITE', 'refuse', 'set'],
  ['SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', 'refuse', 'set'],
  ['SET ROLE postgres', 'refuse', 'set'],
  ['SET SESSION AUTHORIZATION postgres', 'refuse', 'set'],
  ['SELECT set_config(\'default_transaction_read_only\', \'off\', false)', 'refuse', 'write'],
  ['SELECT * FROM pg_catalog.set_config(\'transaction_read_only\', \'off\', true)', 'refuse', 'write'],
  ['SELECT set_config(name, \'off\', false) FROM (VALUES (\'default_transaction_read_only\')) v(name)', 'refuse', 'write'],
  // Writes.
  ['INSERT INTO orders (id) VALUES (1)', 'refuse', 'write'],
  ['UPDATE orders SET total = 0', 'refuse', 'write'],
  ['DELETE FROM orders', 'refuse', 'write'],
  ['MERGE INTO orders o USING staged s ON o.id = s.id WHEN MATCHED THEN UPDATE SET total = s.total', 'refuse', 'write'],
  ['TRUNCATE orders', 'refuse', 'write'],
  ['REFRESH MATERIALIZED VIEW totals', 'refuse', 'write'],
  ['COPY orders FROM STDIN', 'refuse', 'copy-in'],
  ['COPY orders TO \'/tmp/orders.csv\'', 'refuse', 'copy-out'],
  ['COPY orders TO PROGRAM \'sh -c id\'', 'refuse', 'copy-out'],
  ['SELECT * FROM orders FOR UPDATE', 'refuse', 'write'],
  ['SELECT * FROM orders FOR KEY SHARE SKIP LOCKED', 'refuse', 'write'],
  ['SELECT * FROM (SELECT * FROM orders FOR SHARE) s', 'refuse', 'write'],
  ['SELECT * INTO orders_copy FROM orders', 'refuse', 'write'],
  ['SELECT * INTO TEMP scratch FROM orders', 'refuse', 'write'],
  ['WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone', 'refuse', 'write'],
  ['WITH a AS (SELECT 1), b AS (WITH c AS (UPDATE orders SET total = 1 RETURNING id) SELECT id FROM c) SELECT * FROM a UNION SELECT * FROM b', 'refuse', 'write'],
  ['SELECT 1 UNION SELECT id FROM (WITH x AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM x) y', 'refuse', 'write'],
  ['COPY (WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x) TO STDOUT', 'refuse', 'write'],
  ['EXPLAIN ANALYZE DELETE FROM orders', 'refuse', 'write'],
  ['EXPLAIN (ANALYZE, BUFFERS) UPDATE orders SET total = 0', 'refuse', 'write'],
  ['DECLARE c CURSOR FOR SELECT * FROM orders FOR UPDATE', 'refuse', 'write'],
  ['PREPARE w AS INSERT INTO orders VALUES ($1)', 'refuse', 'write'],
  ['EXECUTE unknown_statement(1)', 'refuse', 'other'],
  // DDL.
  ['CREATE TABLE t (id int)', 'refuse', 'ddl'],
  ['CREATE TEMP TABLE scratch (id int)', 'refuse', 'ddl'],
  ['CREATE TABLE copy AS SELECT * FROM orders', 'refuse', 'ddl'],
  ['ALTER TABLE orders ADD COLUMN note text', 'refuse', 'ddl'],
  ['DROP TABLE orders', 'refuse', 'ddl'],
  ['CREATE INDEX ON orders (total)', 'refuse', 'ddl'],
  ['CREATE VIEW v AS SELECT 1', 'refuse', 'ddl'],
  ['SET CONSTRAINTS ALL DEFERRED', 'allow', 'transaction'],
  ['GRANT SELECT ON orders TO public', 'refuse', 'ddl'],
  ['CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ DELETE FROM orders RETURNING 1 $$', 'refuse', 'ddl'],
  ['ALTER ROLE me SET default_transaction_read_only = off', 'refuse', 'ddl'],
  ['ALTER SYSTEM SET default_transaction_read_only = off', 'refuse', 'ddl'],
  // Everything else that is not a read.
  ['CALL archive_orders()', 'refuse', 'other'],
  ['DO $$ BEGIN DELETE FROM orders; END $$', 'refuse', 'other'],
  ['LOCK TABLE orders IN ACCESS EXCLUSIVE MODE', 'refuse', 'other'],
  ['VACUUM orders', 'refuse', 'other'],
  ['ANALYZE orders', 'refuse', 'other'],
  ['NOTIFY orders_changed, \'x\'', 'refuse', 'other'],
  ['CHECKPOINT', 'refuse', 'other'],
  ['LOAD \'auto_explain\'', 'refuse', 'other'],
  // Comment and quoting tricks: the parser, not a regex, decides where statements end.
  ['SELECT 1 /* ; DELETE FROM orders */', 'allow', 'read'],
  ['SELECT 1 -- ; DELETE FROM orders', 'allow', 'read'],
  ['SELECT $$ ; DELETE FROM orders; $$', 'allow', 'read'],
  ['SELECT $tag$ $$ ; DROP TABLE orders; $$ $tag$', 'allow', 'read'],
  ['SELECT \'; DELETE FROM orders; \'', 'allow', 'read'],
  ['SELECT E\'\\\'; DELETE FROM orders; --\'', 'allow', 'read'],
  ['SELECT "; DELETE FROM orders" FROM t', 'allow', 'read'],
  ['SELECT 1 /* nested /* ; */ DELETE FROM orders */', 'allow', 'read'],
];

const MULTI: Row[] = [
  ['SELECT 1; SELECT 2;', 'allow'],
  ['SELECT 1 /* ; */; DELETE FROM orders', 'refuse'],
  ['SELECT E\'\\\'\'; INSERT INTO orders VALUES (1)', 'refuse'],
  ['BEGIN; SELECT 1; COMMIT', 'allow'],
  ['BEGIN; SET TRANSACTION READ WRITE; UPDATE orders SET total = 0; COMMIT', 'refuse'],
  ['SELECT $$;$$; SET default_transaction_read_only = off; SELECT 1', 'refuse'],
];

test('postgres classify: a table of statements gets the read-only verdict it must', async () => {
  assert.ok(TABLE.length >= 60, `${TABLE.length} statements`);
  for (const [sql, expected, kind] of TABLE) {
    const verdict = await readOnlyVerdict(sql);
    assert.equal(verdict.allow ? 'allow' : 'refuse', expected, `${sql}: ${verdict.allow ? 'allowed' : verdict.reason}`);
    assert.equal(verdict.statements.length, 1, sql);
    assert.equal(verdict.statements[0]!.kind, kind, `${sql}: ${verdict.statements[0]!.reason}`);
  }
});

test('postgres classify: a write anywhere in a multi-statement string refuses the whole string, naming that statement', async () => {
  for (const [sql, expected] of MULTI) {
    const verdict = await readOnlyVerdict(sql);
    assert.equal(verdict.allow ? 'allow' : 'refuse', expected, sql);
  }
  const verdict = await readOnlyVerdict('SELECT \'é;\' /* ; */; SELECT 2; DELETE FROM orders WHERE note = \'ü\'');
  assert.equal(verdict.allow, false);
  assert.ok(!verdict.allow);
  assert.equal(verdict.index, 2);
  assert.equal(verdict.statement?.text, 'DELETE FROM orders WHERE note = \'ü\'', 'cut at byte offsets, multi-byte text intact');
  assert.equal(verdict.reason, 'DELETE writes rows');
  assert.equal(verdict.sqlstate, '42501');
  assert.deepEqual(verdict.statements.map((s) => s.text), ['SELECT \'é;\' /* ; */', 'SELECT 2', 'DELETE FROM orders WHERE note = \'ü\'']);
});

test('postgres classify: text the parser rejects is refused, never guessed at; empty text has no statements', async () => {
  for (const sql of ['SELEC 1', 'SELECT \'unterminated', 'DELETE FROM', 'SELECT 1; DELET FROM orders']) {
    const verdict = await readOnlyVerdict(sql);
    assert.equal(verdict.allow, false, sql);
    assert.ok(!verdict.allow && /could not be parsed/.test(verdict.reason) && verdict.sqlstate === '42601', sql);
    await assert.rejects(classifyStatements(sql), (err: unknown) => err instanceof SqlSyntaxError && typeof err.position === 'number', sql);
  }
  for (const sql of ['', '   ', ';', '-- only a comment']) {
    assert.deepEqual(await classifyStatements(sql), [], JSON.stringify(sql));
    assert.equal((await readOnlyVerdict(sql)).allow, true, JSON.stringify(sql));
  }
});

test('postgres classify: EXECUTE runs what this session saw prepared, and is refused for a name it did not', async () => {
  const [read] = await classifyStatements('PREPARE q AS SELECT * FROM orders WHERE id = $1');
  const [write] = await classifyStatements('PREPARE w AS DELETE FROM orders');
  assert.equal(read!.prepares, 'q');
  assert.equal(write!.prepares, 'w');
  const prepared = new Map<string, StatementClass>([['q', read!], ['w', write!]]);
  assert.equal((await readOnlyVerdict('EXECUTE q(1)', { prepared })).allow, true);
  const refusedWrite = await readOnlyVerdict('EXECUTE w', { prepared });
  assert.ok(!refusedWrite.allow && /DELETE writes rows/.test(refusedWrite.reason));
  // The cache holds session-free results: the same text without the session's map is refused again.
  assert.equal((await readOnlyVerdict('EXECUTE q(1)')).allow, false);
  assert.equal((await readOnlyVerdict('EXPLAIN ANALYZE EXECUTE w', { prepared })).allow, false);
});

test('postgres classify: a cached text classifies the same, and costs far less than a parse', async () => {
  const sql = 'SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.region = $1 ORDER BY o.total DESC LIMIT 50';
  const first = await classifyStatements(sql);
  assert.deepEqual(await classifyStatements(sql), first);
  let start = performance.now();
  for (let i = 0; i < 200; i++) await classifyStatements(`${sql} -- ${i}`);
  const parsed = (performance.now() - start) / 200;
  start = performance.now();
  for (let i = 0; i < 200; i++) await classifyStatements(sql);
  const cached = (performance.now() - start) / 200;
  assert.ok(cached < parsed, `cached ${cached.toFixed(4)} ms < parsed ${parsed.toFixed(4)} ms`);
  assert.ok(parsed < 20, `a parse takes ${parsed.toFixed(3)} ms`);
});
