// The in-memory snapshot that hot paths read: an immutable, versioned view of sockets (with
// the connectors bound to them), connectors (with their tag selectors), users and their live
// sessions and grants. SnapshotCache loads one at start, reloads when the feed reports a newer
// revision, and swaps a single reference — never to an older revision.

import { systemClock, unrefTimer } from '../clock.js';
import type { Clock } from '../clock.js';
import { PosternError } from '../errors.js';
import type { ChangeSource, FeedEvent } from './change-feed.js';
import { describeCause } from './rows.js';
import { consoleLogger } from './runtime.js';
import type { StoreLogger } from './runtime.js';
import { freezeSocketAuth } from './socket-auth.js';
import type { ConnectorRecord, PolicyRecord, SessionGrantRecord, SessionRecord, SocketRecord, Store, UserRecord } from './types.js';

export interface Snapshot {
  readonly revision: number;
  readonly loadedAt: string;
  /** By socket name. */
  readonly sockets: ReadonlyMap<string, SocketRecord>;
  /** By connector id. */
  readonly connectors: ReadonlyMap<string, ConnectorRecord>;
  /** By user id (disabled users included: the reader checks disabledAt). */
  readonly users: ReadonlyMap<string, UserRecord>;
  /** Sessions not revoked, by id. Expired ones may be here: the reader checks expiresAt with its own clock. */
  readonly sessionsById: ReadonlyMap<string, SessionRecord>;
  /** The same sessions, by secret hash. */
  readonly sessionsBySecret: ReadonlyMap<string, SessionRecord>;
  /** Grants whose session is in sessionsById, by secret hash. */
  readonly grantsBySecret: ReadonlyMap<string, SessionGrantRecord>;
  /** Every stored policy, in (namespace, name) order. */
  readonly policies: readonly PolicyRecord[];
  /** Users by lower-cased email (disabled ones included). */
  readonly usersByEmail: ReadonlyMap<string, UserRecord>;
}

export interface CreateSnapshotOptions {
  readonly loadedAt?: string;
  readonly users?: readonly UserRecord[];
  /** Revoked sessions are dropped (and with them their grants). */
  readonly sessions?: readonly SessionRecord[];
  /** Grants of sessions that are absent or revoked are dropped. */
  readonly grants?: readonly SessionGrantRecord[];
  readonly policies?: readonly PolicyRecord[];
}

/**
 * Builds a frozen snapshot from records (their nested tags, auth and groups are frozen too).
 * The fourth argument is `loadedAt` or the options (identity records default to none).
 */
export function createSnapshot(
  revision: number,
  sockets: readonly SocketRecord[],
  connectors: readonly ConnectorRecord[],
  options: string | CreateSnapshotOptions = {},
): Snapshot {
  const { loadedAt = new Date().toISOString(), users = [], sessions = [], grants = [], policies = [] } =
    typeof options === 'string' ? { loadedAt: options } : options;
  const socketMap = new Map<string, SocketRecord>();
  for (const socket of sockets) {
    socketMap.set(
      socket.name,
      Object.freeze({ ...socket, auth: freezeSocketAuth(socket.auth), tags: Object.freeze({ ...socket.tags }), connectors: Object.freeze([...socket.connectors]) }),
    );
  }
  const connectorMap = new Map<string, ConnectorRecord>();
  for (const connector of connectors) {
    connectorMap.set(connector.id, Object.freeze({ ...connector, socketTags: connector.socketTags === null ? null : Object.freeze({ ...connector.socketTags }) }));
  }
  const userMap = new Map<string, UserRecord>();
  const usersByEmail = new Map<string, UserRecord>();
  for (const user of users) {
    const frozen = Object.freeze({ ...user, groups: Object.freeze([...user.groups]) });
    userMap.set(user.id, frozen);
    usersByEmail.set(frozen.email, frozen);
  }
  const sessionsById = new Map<string, SessionRecord>();
  const sessionsBySecret = new Map<string, SessionRecord>();
  for (const session of sessions) {
    if (session.revokedAt !== null) continue;
    const frozen = Object.freeze({ ...session });
    sessionsById.set(frozen.id, frozen);
    sessionsBySecret.set(frozen.secretHash, frozen);
  }
  const grantsBySecret = new Map<string, SessionGrantRecord>();
  for (const grant of grants) {
    if (sessionsById.has(grant.sessionId)) grantsBySecret.set(grant.secretHash, Object.freeze({ ...grant }));
  }
  return Object.freeze({
    revision,
    loadedAt,
    sockets: socketMap,
    connectors: connectorMap,
    users: userMap,
    sessionsById,
    sessionsBySecret,
    grantsBySecret,
    policies: Object.freeze(policies.map((policy) => Object.freeze({ ...policy }))),
    usersByEmail,
  });
}

/**
 * Reads a consistent snapshot without a long transaction: writers commit in revision order,
 * so if the revision is the same before and after the reads, the reads are exactly that
 * revision. If writes keep racing, the older revision is used as the label (the data is at
 * least that new, and the feed will cause another reload).
 */
export async function loadSnapshot(store: Store, options: { clock?: Clock; attempts?: number } = {}): Promise<Snapshot> {
  const attempts = options.attempts ?? 5;
  const clock = options.clock ?? systemClock;
  for (let attempt = 1; ; attempt++) {
    const before = await store.currentRevision();
    const [sockets, connectors, users, sessions, grants, policies] = await Promise.all([
      store.sockets.list(),
      store.connectors.list(),
      store.users.list(),
      store.sessions.list(),
      store.sessionGrants.list(),
      store.policies.list(),
    ]);
    const after = await store.currentRevision();
    if (before === after || attempt >= attempts) {
      return createSnapshot(before, sockets, connectors, { loadedAt: new Date(clock.now()).toISOString(), users, sessions, grants, policies });
    }
  }
}

export type SnapshotListener = (next: Snapshot, previous: Snapshot) => void;

export interface SnapshotCacheOptions {
  /** Times retries and waits, and dates each snapshot (`loadedAt`). */
  readonly clock?: Clock;
  readonly logger?: StoreLogger;
  /** Wait before retrying a failed or lagging reload (default 1000 ms). */
  readonly retryMs?: number;
}

interface Waiter {
  readonly revision: number;
  readonly resolve: (snapshot: Snapshot) => void;
  readonly reject: (err: Error) => void;
  readonly timer: unknown;
}

export class SnapshotCache {
  readonly #store: Store;
  readonly #feed: ChangeSource;
  readonly #clock: Clock;
  readonly #logger: StoreLogger;
  readonly #retryMs: number;
  readonly #listeners = new Set<SnapshotListener>();
  readonly #waiters = new Set<Waiter>();
  #current: Snapshot | undefined;
  #running = false;
  #target = 0;
  #loading: Promise<void> | undefined;
  #loadAgain = false;
  #retryTimer: unknown;
  #unsubscribe: (() => void) | undefined;

  constructor(store: Store, feed: ChangeSource, options: SnapshotCacheOptions = {}) {
    const retryMs = options.retryMs ?? 1000;
    if (!Number.isFinite(retryMs) || retryMs <= 0) {
      throw new PosternError('config_invalid', 'snapshot cache retryMs must be a positive number');
    }
    this.#store = store;
    this.#feed = feed;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? consoleLogger;
    this.#retryMs = retryMs;
  }

  /** Loads the first snapshot (rejects if it cannot) and follows the feed. */
  async start(): Promise<Snapshot> {
    if (this.#running || this.#current !== undefined) {
      throw new PosternError('internal', 'snapshot cache can only be started once');
    }
    const first = await loadSnapshot(this.#store, { clock: this.#clock });
    this.#current = first;
    this.#running = true;
    this.#unsubscribe = this.#feed.subscribe((event) => this.#onFeed(event));
    return this.current();
  }

  /** The latest snapshot; synchronous, never touches the database. Throws before start(). */
  current(): Snapshot {
    if (this.#current === undefined) {
      throw new PosternError('store_unavailable', 'snapshot cache has not been started');
    }
    return this.#current;
  }

  /**
   * Swaps in `snapshot` if it is newer than the current one; returns whether it did.
   * An older or equal revision is ignored.
   */
  offer(snapshot: Snapshot): boolean {
    const previous = this.#current;
    if (previous !== undefined && snapshot.revision <= previous.revision) return false;
    this.#current = snapshot;
    if (previous !== undefined) {
      for (const listener of [...this.#listeners]) {
        try {
          listener(snapshot, previous);
        } catch (err) {
          this.#logger.error({ err: describeCause(err), revision: snapshot.revision }, 'snapshot listener threw');
        }
      }
    }
    for (const waiter of [...this.#waiters]) {
      if (snapshot.revision >= waiter.revision) this.#settle(waiter).resolve(snapshot);
    }
    return true;
  }

  /** Told after every swap; a listener that throws is logged and stays subscribed. */
  onUpdate(listener: SnapshotListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Resolves once current().revision >= revision; rejects after timeoutMs. */
  waitForRevision(revision: number, timeoutMs = 5000): Promise<Snapshot> {
    const current = this.#current;
    if (current !== undefined && current.revision >= revision) return Promise.resolve(current);
    if (!this.#running) {
      return Promise.reject(new PosternError('store_unavailable', 'snapshot cache is not running'));
    }
    return new Promise<Snapshot>((resolve, reject) => {
      const waiter: Waiter = {
        revision,
        resolve,
        reject,
        timer: this.#clock.setTimeout(() => {
          this.#settle(waiter).reject(
            new PosternError('store_unavailable', `snapshot did not reach revision ${revision} within ${timeoutMs} ms`, {
              retryable: true,
            }),
          );
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  /** Reloads now, whatever the feed said; resolves when a reload started after this call is done. */
  refresh(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    if (this.#loading !== undefined) {
      this.#loadAgain = true;
      return this.#loading;
    }
    this.#clearRetry();
    this.#loading = this.#reloadLoop();
    return this.#loading;
  }

  stop(): void {
    this.#running = false;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#clearRetry();
    for (const waiter of [...this.#waiters]) {
      this.#settle(waiter).reject(new PosternError('store_unavailable', 'snapshot cache stopped'));
    }
  }

  #onFeed(event: FeedEvent): void {
    if (event.revision > this.#target) this.#target = event.revision;
    if (this.#target > this.current().revision) void this.refresh();
  }

  async #reloadLoop(): Promise<void> {
    let attempts = 0;
    try {
      do {
        this.#loadAgain = false;
        attempts++;
        this.offer(await loadSnapshot(this.#store, { clock: this.#clock }));
      } while (this.#running && (this.#loadAgain || (this.#behind() && attempts < 3)));
      if (this.#behind()) this.#scheduleRetry();
    } catch (err) {
      this.#logger.warn({ err: describeCause(err), revision: this.#current?.revision }, 'snapshot reload failed; retrying');
      this.#scheduleRetry();
    } finally {
      this.#loading = undefined;
    }
  }

  #behind(): boolean {
    return this.#current !== undefined && this.#target > this.#current.revision;
  }

  #scheduleRetry(): void {
    if (!this.#running || this.#retryTimer !== undefined) return;
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = undefined;
      void this.refresh();
    }, this.#retryMs);
    unrefTimer(this.#retryTimer);
  }

  #clearRetry(): void {
    if (this.#retryTimer === undefined) return;
    this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  #settle(waiter: Waiter): Waiter {
    this.#waiters.delete(waiter);
    this.#clock.clearTimeout(waiter.timer);
    return waiter;
  }
}
