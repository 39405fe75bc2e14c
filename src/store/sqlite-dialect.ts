// Kysely's SQLite dialect with write-ready transactions: BEGIN IMMEDIATE takes the write lock
// up front, so a transaction that reads then writes never fails with SQLITE_BUSY half-way
// when another process (e.g. a second server on the same file) writes at the same time.

import { CompiledQuery, SqliteDialect, SqliteDriver } from 'kysely';
import type { DatabaseConnection, Driver, SqliteDialectConfig } from 'kysely';

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

export class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

const writeTails = new Map<string, Promise<void>>();

/**
 * Runs `fn` after every earlier call with the same key has finished (a process-wide FIFO
 * lock). better-sqlite3 waits for a busy lock synchronously, which would freeze the event
 * loop — and with it the transaction holding the lock — when two Stores in one process
 * share a file; queueing their write transactions here avoids that.
 */
export async function withKeyedLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = writeTails.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  const tail = previous.then(() => mine);
  writeTails.set(key, tail);
  await previous;
  try {
    return await fn();
  } finally {
    release();
    if (writeTails.get(key) === tail) writeTails.delete(key);
  }
}
