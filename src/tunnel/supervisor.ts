// Keeps N tunnel connections up: one loop owns every slot's retry state; a lost or drained
// connection is redialed after a jittered backoff. Clock and randomness come in as options.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.js';
import type { BackoffPolicy } from '../backoff.js';
import { systemClock } from '../clock.js';
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';

/** What the supervisor needs of one connection (ConnectorTunnel satisfies it). */
export interface TunnelLink extends EventEmitter {
  drain(graceMs: number): Promise<void>;
  destroy(): void;
}

/** Redials start at 500 ms and stop growing at 60 s. */
export const defaultBackoff: BackoffPolicy = { baseMs: 500, capMs: 60_000 };

export interface SupervisorOptions {
  connections: number;
  /** Dials and starts one connection; rejects when the edge cannot be reached. */
  connect: (slot: number) => Promise<TunnelLink>;
  logger: Logger;
  /** Times redials and how long a slot was down. */
  clock?: Clock;
  random?: () => number;
  backoff?: BackoffPolicy;
}

export type SlotState = 'connecting' | 'connected' | 'waiting' | 'stopped';

interface Slot {
  link?: TunnelLink;
  state: SlotState;
  attempt: number;
  timer?: unknown;
  lastError?: string;
  /** When the slot lost its tunnel (undefined while up, and before the first connection). */
  downSince?: number;
}

/** Events: `connected` (slot), `reconnected` (slot, downMs), `disconnected` (slot), `retry` (slot, delayMs, error?). */
export class TunnelSupervisor extends EventEmitter {
  private readonly slots: Slot[];
  /** Links the edge asked to move away from, finishing their streams while replacements run. */
  private readonly retiring = new Set<TunnelLink>();
  private stopping = false;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly backoff: BackoffPolicy;

  constructor(private readonly options: SupervisorOptions) {
    super();
    if (!Number.isInteger(options.connections) || options.connections < 1) throw new RangeError('connections must be a positive integer');
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.backoff = options.backoff ?? defaultBackoff;
    this.slots = Array.from({ length: options.connections }, () => ({ state: 'waiting' as SlotState, attempt: 0 }));
  }

  start(): void {
    this.slots.forEach((_, index) => void this.connect(index));
  }

  status(): { state: SlotState; attempt: number; lastError?: string }[] {
    return this.slots.map(({ state, attempt, lastError }) => ({ state, attempt, ...(lastError ? { lastError } : {}) }));
  }

  get connectedCount(): number {
    return this.slots.filter((s) => s.state === 'connected').length;
  }

  private async connect(index: number): Promise<void> {
    const slot = this.slots[index]!;
    if (this.stopping) return;
    slot.state = 'connecting';
    slot.timer = undefined;
    let link: TunnelLink;
    try {
      link = await this.options.connect(index);
    } catch (err) {
      slot.lastError = errorMessage(err);
      this.scheduleRetry(index, err);
      return;
    }
    if (this.stopping) {
      link.destroy();
      return;
    }
    slot.link = link;
    link.once('welcome', () => {
      if (slot.link !== link) return;
      slot.state = 'connected';
      slot.attempt = 0;
      slot.lastError = undefined;
      this.emit('connected', index);
      if (slot.downSince !== undefined) {
        const downMs = this.clock.now() - slot.downSince;
        slot.downSince = undefined;
        this.options.logger.info({ slot: index, downMs }, `tunnel ${index} reconnected after ${(downMs / 1000).toFixed(1)} s`);
        this.emit('reconnected', index, downMs);
      }
    });
    // The edge is going away: dial a replacement and let this one finish its streams.
    link.once('drain-requested', () => {
      if (slot.link !== link) return;
      slot.link = undefined;
      this.retiring.add(link);
      void link.drain(30_000).finally(() => this.retiring.delete(link));
      this.scheduleRetry(index);
    });
    link.once('close', () => {
      if (slot.link !== link) return;
      slot.link = undefined;
      slot.downSince ??= this.clock.now();
      this.emit('disconnected', index);
      this.scheduleRetry(index);
    });
  }

  private scheduleRetry(index: number, err?: unknown): void {
    const slot = this.slots[index]!;
    if (this.stopping) {
      slot.state = 'stopped';
      return;
    }
    const delay = backoffDelay(slot.attempt++, this.backoff, this.random);
    slot.state = 'waiting';
    this.options.logger.info({ slot: index, delayMs: delay, err: err === undefined ? undefined : errorMessage(err) }, 'tunnel reconnect scheduled');
    this.emit('retry', index, delay, err);
    slot.timer = this.clock.setTimeout(() => void this.connect(index), delay);
  }

  /** Graceful stop: no new connections; running streams get `graceMs` to finish. */
  async drain(graceMs: number): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.retiring].map((link) => link.drain(graceMs)));
    await Promise.all(this.slots.map(async (slot) => {
      if (slot.timer !== undefined) this.clock.clearTimeout(slot.timer);
      const link = slot.link;
      slot.link = undefined;
      slot.state = 'stopped';
      if (link) await link.drain(graceMs);
    }));
  }

  stop(): void {
    this.stopping = true;
    for (const link of this.retiring) link.destroy();
    this.retiring.clear();
    for (const slot of this.slots) {
      if (slot.timer !== undefined) this.clock.clearTimeout(slot.timer);
      slot.link?.destroy();
      slot.link = undefined;
      slot.state = 'stopped';
    }
  }
}
