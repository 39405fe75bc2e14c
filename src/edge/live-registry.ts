// The edge's live connections: every long-lived stream (tls, WebSocket) registers here with
// who it is and what it was allowed to do. The registry re-decides them all whenever the
// snapshot changes or a time window they depend on opens or closes, cuts the ones that no
// longer pass (and those killed from any control node), and reports them to the store so
// `postern sessions ls` sees connections held by every edge — with what each is doing now where
// its protocol says (a database session's current statement).

import type { LiveConnectionRecord } from '../store/index.js';
import type { NewAuditEvent } from '../reporting/index.js';

export interface LiveCounters {
  readonly bytesUp: number;
  readonly bytesDown: number;
}

/** What a connection is doing: `text` ('' when idle) since `since`. */
export interface LiveActivity {
  readonly text: string;
  readonly since: Date;
}

/** Characters of an activity the store keeps (whitespace runs folded first). */
export const MAX_ACTIVITY_CHARS = 200;

/** An activity's text as listed: one line, at most MAX_ACTIVITY_CHARS characters. */
export function activityLine(text: string): string {
  const line = [...text.replace(/\s+/g, ' ').trim()];
  return line.length <= MAX_ACTIVITY_CHARS ? line.join('') : `${line.slice(0, MAX_ACTIVITY_CHARS - 1).join('')}…`;
}

/** The answer of a re-decision: keep (until `recheckAt`, if any) or close with a reason. */
export type Verdict = { readonly keep: true; readonly recheckAt?: Date; readonly rule?: string } | { readonly keep: false; readonly reason: string; readonly rule?: string };

/** What the store keeps of a live connection, plus what only this edge can do with it. */
export interface LiveEntry extends Pick<LiveConnectionRecord, 'id' | 'socket' | 'userId' | 'email' | 'sessionId' | 'clientIp' | 'country'> {
  readonly protocol: 'tls' | 'websocket' | 'ssh' | 'postgres';
  readonly startedAt: Date;
  readonly counters: LiveCounters;
  /** Decides this connection again against the current snapshot and clock. */
  readonly decide: () => Verdict;
  /** What it is doing now, for protocols that know (postgres: the running statement); read at each report to the store. */
  readonly activity?: () => LiveActivity;
  /** Tears the stream down (idempotent); `reason` is what the user is told where the protocol can say it (SSH). */
  readonly close: (reason: string) => void;
}

export interface LivePersistence {
  upsert(rows: readonly Omit<LiveConnectionRecord, 'updatedAt'>[]): Promise<void>;
  remove(ids: readonly string[]): Promise<void>;
}

export interface LiveRegistryOptions {
  readonly edgeId: string;
  readonly persistence?: LivePersistence;
  readonly record: (event: NewAuditEvent) => void;
  readonly logger: { warn(obj: object, msg: string): void };
  /** Heartbeat and byte counts to the store (default 5 s). */
  readonly heartbeatMs?: number;
  readonly now?: () => Date;
}

interface Held {
  readonly entry: LiveEntry;
  timer?: NodeJS.Timeout;
  closedFor?: string;
}

/** setTimeout's limit; a later recheck is re-armed when this one fires. */
const MAX_TIMER_MS = 2_147_000_000;

export class LiveRegistry {
  readonly #options: LiveRegistryOptions;
  readonly #held = new Map<string, Held>();
  readonly #removed = new Set<string>();
  readonly #now: () => Date;
  #heartbeat: NodeJS.Timeout | undefined;
  #flushSoon: NodeJS.Timeout | undefined;

  constructor(options: LiveRegistryOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
  }

  start(): void {
    this.#heartbeat = setInterval(() => void this.flush(), this.#options.heartbeatMs ?? 5_000);
    this.#heartbeat.unref();
  }

  stop(): void {
    clearInterval(this.#heartbeat);
    clearTimeout(this.#flushSoon);
    for (const held of this.#held.values()) clearTimeout(held.timer);
  }

  get size(): number {
    return this.#held.size;
  }

  list(): LiveEntry[] {
    return [...this.#held.values()].map((held) => held.entry);
  }

  /** Registers an allowed connection; `recheckAt` comes from the decision that let it in. */
  add(entry: LiveEntry, recheckAt?: Date): void {
    const held: Held = { entry };
    this.#held.set(entry.id, held);
    this.#arm(held, recheckAt);
    this.#scheduleFlush();
  }

  /** A connection's activity changed: reported to the store soon (within 200 ms, batched with other changes). */
  activityChanged(id: string): void {
    if (this.#held.has(id)) this.#scheduleFlush();
  }

  /** The stream ended by itself (or was cut): forget it and say why, once. */
  closed(id: string, reason: string): void {
    const held = this.#held.get(id);
    if (!held) return;
    clearTimeout(held.timer);
    this.#held.delete(id);
    this.#removed.add(id);
    this.#scheduleFlush();
    const { entry } = held;
    this.#options.record({
      type: 'connection.close', actor: entry.email, socket: entry.socket, clientIp: entry.clientIp, country: entry.country,
      connectionId: entry.id, sessionId: entry.sessionId, reason: held.closedFor ?? reason,
      details: { protocol: entry.protocol, bytesUp: entry.counters.bytesUp, bytesDown: entry.counters.bytesDown, durationMs: this.#now().getTime() - entry.startedAt.getTime() },
    });
  }

  /** Re-decides every connection (after a snapshot change). */
  reevaluate(): void {
    for (const held of [...this.#held.values()]) this.#recheck(held);
  }

  /** Cuts a connection (by id) or all of a user's (`user:<id>`); returns how many. */
  kill(target: string, reason: string): number {
    const userId = target.startsWith('user:') ? target.slice(5) : undefined;
    let count = 0;
    for (const held of [...this.#held.values()]) {
      if (userId === undefined ? held.entry.id !== target : held.entry.userId !== userId) continue;
      this.#cut(held, reason);
      count++;
    }
    return count;
  }

  async flush(): Promise<void> {
    clearTimeout(this.#flushSoon);
    this.#flushSoon = undefined;
    const persistence = this.#options.persistence;
    if (!persistence) return;
    const removed = [...this.#removed];
    this.#removed.clear();
    const rows = this.list().map((e) => {
      const activity = e.activity?.();
      return {
        id: e.id, edgeId: this.#options.edgeId, protocol: e.protocol, socket: e.socket, userId: e.userId, email: e.email, sessionId: e.sessionId,
        clientIp: e.clientIp, country: e.country, startedAt: e.startedAt.toISOString(), bytesUp: e.counters.bytesUp, bytesDown: e.counters.bytesDown,
        activity: activity ? activityLine(activity.text) : '', activitySince: activity ? activity.since.toISOString() : null,
      };
    });
    try {
      await persistence.remove(removed);
      await persistence.upsert(rows);
    } catch (err) {
      for (const id of removed) this.#removed.add(id);
      this.#options.logger.warn({ err }, 'live connections not reported to the store; retrying at the next heartbeat');
    }
  }

  #scheduleFlush(): void {
    if (this.#flushSoon || !this.#options.persistence) return;
    this.#flushSoon = setTimeout(() => void this.flush(), 200);
    this.#flushSoon.unref();
  }

  #arm(held: Held, recheckAt: Date | undefined): void {
    clearTimeout(held.timer);
    held.timer = undefined;
    if (!recheckAt) return;
    const delay = Math.max(0, recheckAt.getTime() - this.#now().getTime());
    held.timer = setTimeout(() => this.#recheck(held), Math.min(delay, MAX_TIMER_MS));
    held.timer.unref();
  }

  #recheck(held: Held): void {
    if (this.#held.get(held.entry.id) !== held) return;
    const verdict = held.entry.decide();
    if (verdict.keep) return this.#arm(held, verdict.recheckAt);
    const { entry } = held;
    this.#options.record({
      type: 'access.denied', actor: entry.email, socket: entry.socket, clientIp: entry.clientIp, country: entry.country, decision: 'deny',
      connectionId: entry.id, sessionId: entry.sessionId, reason: verdict.reason, ...(verdict.rule ? { rule: verdict.rule } : {}),
      details: { protocol: entry.protocol, live: true },
    });
    this.#cut(held, verdict.reason);
  }

  /** Closes a connection; its close event carries `reason` (the kill itself is recorded by whoever asked for it). */
  #cut(held: Held, reason: string): void {
    held.closedFor = reason;
    held.entry.close(reason);
    // Streams report their own close; a stream that never does is forgotten here all the same.
    this.closed(held.entry.id, reason);
  }
}
