// The statements a postgres session has sent upstream and not yet seen finish, and the
// ReadyForQuery answers it still waits for: which statement a CommandComplete or ErrorResponse
// belongs to, what runs now (the live list's activity), and whether the edge may answer the
// client itself without overtaking the upstream's replies. Bookkeeping over wire messages only;
// the wall clock comes in.
import { commandTagRows } from '../../pgwire/index.js';
import type { PgPacket } from '../../pgwire/index.js';

/** A statement as it finished, for the audit trail. */
export interface FinishedStatement {
  readonly sql: string;
  /** From sending it to its end, in milliseconds (µs precision). */
  readonly durationMs: number;
  readonly rows?: number;
  /** The SQLSTATE it failed with. */
  readonly error?: string;
}

export interface StatementTrackerOptions {
  readonly now: () => Date;
  /** Called once per statement, as it finishes. */
  readonly finished: (statement: FinishedStatement) => void;
}

interface InFlight {
  readonly sql: string;
  readonly kind: 'query' | 'execute';
  readonly started: number;
  /** When it started, on the wall clock (the live list's "since"). */
  readonly at: Date;
  /** Finished by the ReadyForQuery with this ordinal at the latest. */
  readonly sync: number;
  rows?: number;
  error?: string;
  done?: boolean;
}

export class StatementTracker {
  /** ReadyForQuery answers expected (the startup's, each Query's, each Sync's) and received. */
  #expected = 1;
  #received = 0;
  #whenAnswered: (() => void)[] = [];
  #inFlight: InFlight[] = [];
  /** When the last statement finished with none left running; unset before the first. */
  #idleSince: Date | undefined;

  constructor(private readonly options: StatementTrackerOptions) {}

  /** A simple Query was sent: it runs until its own ReadyForQuery. */
  query(sql: string): void {
    this.#start(sql, 'query', ++this.#expected);
  }

  /** An Execute was sent: it ends with its CommandComplete, ErrorResponse, EmptyQueryResponse or PortalSuspended, at the latest at the next Sync's ReadyForQuery. */
  execute(sql: string): void {
    this.#start(sql, 'execute', this.#expected + 1);
  }

  /** A message was sent that the upstream answers with a ReadyForQuery of its own (Sync, FunctionCall, a Query the edge made). */
  expectReady(): void {
    this.#expected++;
  }

  /** Some message sent upstream has not had its ReadyForQuery yet. */
  get pending(): boolean {
    return this.#received < this.#expected;
  }

  /** Resolves once every message sent so far is answered, or release() is called. */
  answered(): Promise<void> {
    return new Promise((resolve) => this.#whenAnswered.push(resolve));
  }

  /** Lets every waiter of answered() go on (the session ended). */
  release(): void {
    for (const resolve of this.#whenAnswered.splice(0)) resolve();
  }

  /** The statement running now: the oldest unfinished one. */
  running(): string | undefined {
    return this.#inFlight.find((q) => !q.done)?.sql;
  }

  /** The live list's view: the statement running now, or idle since the last one finished (since `openedAt` before any). */
  activity(openedAt: Date): { text: string; since: Date } {
    const running = this.#inFlight.find((q) => !q.done);
    return running ? { text: running.sql, since: running.at } : { text: '', since: this.#idleSince ?? openedAt };
  }

  /** A message from the upstream: results and errors go to the statement they answer; a ReadyForQuery ends what it answers. */
  fromServer(packet: PgPacket): void {
    const head = this.#inFlight.find((q) => !q.done);
    switch (packet.type) {
      case 'C': {
        const rows = commandTagRows(packet.payload.toString('utf8', 0, packet.payload.length - 1));
        if (head && rows !== undefined) head.rows = (head.rows ?? 0) + rows;
        if (head?.kind === 'execute') this.#finish(head);
        return;
      }
      case 'E':
        if (head) {
          head.error = errorField(packet.payload, 'C');
          if (head.kind === 'execute') this.#finish(head);
        }
        return;
      case 'I': case 's':
        if (head?.kind === 'execute') this.#finish(head);
        return;
      case 'Z':
        this.#received++;
        for (const q of this.#inFlight) if (!q.done && q.sync <= this.#received) this.#finish(q);
        this.#inFlight = this.#inFlight.filter((q) => !q.done);
        if (!this.pending) this.release();
        return;
      default:
        return;
    }
  }

  #start(sql: string, kind: InFlight['kind'], sync: number): void {
    this.#inFlight.push({ sql, kind, started: performance.now(), at: this.options.now(), sync });
  }

  #finish(q: InFlight): void {
    q.done = true;
    if (!this.#inFlight.some((other) => !other.done)) this.#idleSince = this.options.now();
    this.options.finished({
      sql: q.sql, durationMs: Math.round((performance.now() - q.started) * 1000) / 1000,
      ...(q.rows !== undefined ? { rows: q.rows } : {}), ...(q.error ? { error: q.error } : {}),
    });
  }
}

/** One field of an ErrorResponse payload (`C` the SQLSTATE, `M` the message); '' when absent. */
export function errorField(payload: Buffer, field: 'C' | 'M'): string {
  const type = field.charCodeAt(0);
  for (let at = 0; at < payload.length && payload[at] !== 0;) {
    const end = payload.indexOf(0, at + 1);
    if (end < 0) break;
    if (payload[at] === type) return payload.toString('utf8', at + 1, end);
    at = end + 1;
  }
  return '';
}
