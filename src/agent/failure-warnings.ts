// Warnings of a background loop that keeps failing (the mesh view's poll, the flow log's
// batches): the first failure at once, then at most one line a minute with the count, and one
// line when it works again, so an unreachable control plane does not flood the log.
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';

export interface FailureMessages {
  readonly failed: string;
  /** Logged once when it works again; none for failures that do not recover (an event dropped). */
  readonly recovered?: string;
}

export class FailureWarnings {
  #failures = 0;
  #lastWarnAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly logger: Logger, private readonly messages: FailureMessages, private readonly now: () => number, private readonly everyMs = 60_000) {}

  failed(err: unknown, fields: Record<string, unknown> = {}): void {
    this.#failures++;
    const now = this.now();
    if (now - this.#lastWarnAt < this.everyMs) return;
    this.#lastWarnAt = now;
    this.logger.warn({ ...fields, err: errorMessage(err), failures: this.#failures }, this.messages.failed);
  }

  succeeded(): void {
    if (this.#failures === 0) return;
    if (this.messages.recovered !== undefined) this.logger.info({ failures: this.#failures }, this.messages.recovered);
    this.#failures = 0;
    this.#lastWarnAt = Number.NEGATIVE_INFINITY;
  }
}
