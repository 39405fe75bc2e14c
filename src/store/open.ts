// Opens the configured store: a postgres:// URL → PostgreSQL through a pg Pool, anything else
// → an SQLite file (or ':memory:'). Connects, migrates, and reports failure as one clear line.

import { mkdirSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { PosternError } from '../errors.js';
import { createKyselyStore } from './kysely-store.js';
import { describeCause, isTransient } from './rows.js';
import { consoleLogger } from './runtime.js';
import type { StoreLogger } from './runtime.js';
import type { Database as Tables } from './schema.js';
import { ImmediateSqliteDialect, withKeyedLock } from './sqlite-dialect.js';
import type { Store } from './types.js';

export interface OpenStoreOptions {
  /** PostgreSQL only: the schema to use (created if missing); lowercase letters, digits, '_'. */
  readonly schema?: string;
  readonly logger?: StoreLogger;
  /** PostgreSQL pool size (default 10). */
  readonly poolSize?: number;
  /** PostgreSQL connect timeout (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** SQLite wait for another writer's lock (default 5 s). */
  readonly busyTimeoutMs?: number;
  readonly now?: () => Date;
}

const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/;
const int8Oid = 20;

export function isPostgresUrl(db: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(db);
}

/** Where a database is, safe to print: never the password. */
export function describeDatabase(db: string): string {
  if (!isPostgresUrl(db)) return db === ':memory:' ? 'in-memory SQLite' : `SQLite file ${resolve(db)}`;
  try {
    const url = new URL(db);
    return `PostgreSQL at ${url.hostname || 'localhost'}:${url.port || '5432'}${url.pathname}`;
  } catch {
    return 'PostgreSQL (unparseable URL)';
  }
}

export async function openStore(db: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (typeof db !== 'string' || db.trim() === '') {
    throw new PosternError('config_invalid', 'no database configured (expected a SQLite path or a postgres:// URL)');
  }
  if (isPostgresUrl(db)) return openPostgres(db, options);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(db)) {
    throw new PosternError('config_invalid', `unsupported database URL scheme in "${db.split(':')[0]}:" (use postgres:// or a file path)`);
  }
  if (options.schema !== undefined) {
    throw new PosternError('config_invalid', 'a database schema can only be set for PostgreSQL');
  }
  return openSqlite(db, options);
}

async function openSqlite(path: string, options: OpenStoreOptions): Promise<Store> {
  const memory = path === ':memory:';
  const where = describeDatabase(path);
  let sqlite: Database.Database;
  try {
    if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true });
    sqlite = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
  } catch (err) {
    throw new PosternError('store_unavailable', `cannot open ${where}: ${describeCause(err)}`, { cause: err });
  }
  try {
    sqlite.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    if (!memory) {
      sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('synchronous = NORMAL');
    }
    sqlite.pragma('foreign_keys = ON');
  } catch (err) {
    sqlite.close();
    throw new PosternError('store_unavailable', `cannot open ${where}: ${describeCause(err)}`, { cause: err });
  }
  const kysely = new Kysely<Tables>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
  const base = storeOptions('sqlite', options);
  if (memory) return migrated(createKyselyStore(kysely, base), where);
  const key = `sqlite:${realpathSync(resolve(path))}`;
  const serializeWrites = <T>(fn: () => Promise<T>): Promise<T> => withKeyedLock(key, fn);
  return migrated(createKyselyStore(kysely, { ...base, serializeWrites }), where);
}

async function openPostgres(rawUrl: string, options: OpenStoreOptions): Promise<Store> {
  const { url, schema } = splitSchema(rawUrl, options.schema);
  const where = describeDatabase(url);
  if (schema !== undefined && !schemaPattern.test(schema)) {
    throw new PosternError('config_invalid', `invalid PostgreSQL schema name "${schema}" (use a-z, 0-9 and _)`);
  }
  const logger = options.logger ?? consoleLogger;
  let pool: pg.Pool;
  try {
    new URL(url);
    pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      // Every pooled connection resolves unqualified names in our schema only.
      ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
      // BIGINT (the revision) as a JS number, for this pool only (not pg's global parsers).
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === int8Oid && format !== 'binary'
            ? (value: string) => Number(value)
            : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
      },
    });
  } catch (err) {
    throw new PosternError('store_unavailable', `invalid PostgreSQL URL (${where}): ${describeCause(err)}`, {
      cause: err,
    });
  }
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', (err) => logger.warn({ err: describeCause(err) }, 'idle PostgreSQL connection failed'));
  try {
    await pool.query('select 1');
    if (schema !== undefined) await createSchema(pool, schema);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new PosternError('store_unavailable', `cannot connect to ${where}: ${describeCause(err)}`, {
      cause: err,
      retryable: isTransient(err),
    });
  }
  const kysely = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
  return migrated(createKyselyStore(kysely, storeOptions('postgres', options)), where);
}

/** `postgres://…/db?schema=name` selects a schema, like the `schema` option (which wins). */
function splitSchema(rawUrl: string, optionSchema: string | undefined): { url: string; schema: string | undefined } {
  let parsed: URL;
  try {
    parsed = new URL(rawUrl);
  } catch {
    return { url: rawUrl, schema: optionSchema };
  }
  const fromUrl = parsed.searchParams.get('schema') ?? undefined;
  parsed.searchParams.delete('schema');
  return { url: fromUrl === undefined ? rawUrl : parsed.toString(), schema: optionSchema ?? fromUrl };
}

async function createSchema(pool: pg.Pool, schema: string): Promise<void> {
  try {
    await pool.query(`create schema if not exists "${schema}"`);
  } catch (err) {
    // Two nodes creating the schema at once: the loser sees a duplicate, which is success.
    const code = (err as { code?: unknown }).code;
    if (code !== '23505' && code !== '42P06') throw err;
  }
}

function storeOptions(dialect: 'sqlite' | 'postgres', options: OpenStoreOptions) {
  return {
    dialect,
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  };
}

async function migrated(store: Store, where: string): Promise<Store> {
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => undefined);
    const reason = err instanceof PosternError ? err.message : describeCause(err);
    throw new PosternError('store_unavailable', `cannot prepare ${where}: ${reason}`, { cause: err });
  }
  return store;
}
