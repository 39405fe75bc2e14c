// The cancel keys the edge hands PostgreSQL clients. A client never sees the upstream's
// BackendKeyData (it would name the database's backend and let anyone who learns it cancel there
// directly); it gets a random key of the edge's own, and a CancelRequest bearing that key is
// mapped back to the session that holds the upstream's key. Keys live as long as their session,
// and the table is bounded: past `max` live keys a new session gets none (it cannot cancel, as
// with a server that sends no BackendKeyData) rather than evicting a live one.
import { randomBytes } from 'node:crypto';

export interface CancelKey {
  /** Positive, like a backend's process id (clients print it). */
  readonly processId: number;
  readonly secretKey: Buffer;
}

export interface CancelTarget {
  /** The socket the session runs on: a cancel that arrives routed to another socket is ignored. */
  readonly socket: string;
  /** Sends the upstream's CancelRequest for what the session is running now. */
  cancel(): void;
}

export interface CancelKeysOptions {
  readonly max?: number;
  readonly random?: (size: number) => Buffer;
}

export const DEFAULT_MAX_CANCEL_KEYS = 65_536;
/** Fresh keys drawn before giving up on a collision (with 62 random bits, one retry is already rare). */
const DRAWS = 4;

const keyOf = (processId: number, secretKey: Buffer) => `${processId}:${secretKey.toString('hex')}`;

export class CancelKeys {
  readonly #targets = new Map<string, CancelTarget>();
  readonly #max: number;
  readonly #random: (size: number) => Buffer;

  constructor(options: CancelKeysOptions = {}) {
    this.#max = options.max ?? DEFAULT_MAX_CANCEL_KEYS;
    this.#random = options.random ?? randomBytes;
  }

  get size(): number {
    return this.#targets.size;
  }

  /** A new key for `target`; undefined when the table is full. */
  issue(target: CancelTarget): CancelKey | undefined {
    if (this.#targets.size >= this.#max) return undefined;
    for (let draw = 0; draw < DRAWS; draw++) {
      const bytes = this.#random(8);
      const processId = (bytes.readUInt32BE(0) & 0x7fffffff) || 1;
      const secretKey = Buffer.from(bytes.subarray(4, 8));
      const key = keyOf(processId, secretKey);
      if (this.#targets.has(key)) continue;
      this.#targets.set(key, target);
      return { processId, secretKey };
    }
    return undefined;
  }

  release(key: CancelKey): void {
    this.#targets.delete(keyOf(key.processId, key.secretKey));
  }

  /**
   * Cancels what the key's session runs; false for an unknown key or one of another socket
   * (`socket`: where the request was routed, when it came with SNI; a plain request names none).
   */
  cancel(processId: number, secretKey: Buffer, socket?: string): boolean {
    const target = this.#targets.get(keyOf(processId, secretKey));
    if (!target || (socket !== undefined && target.socket !== socket)) return false;
    target.cancel();
    return true;
  }
}
