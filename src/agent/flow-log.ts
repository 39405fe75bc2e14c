// Where the mesh's audit events go: buffered in memory (bounded: the oldest go first, counted in
// one warning), sent to the control plane in batches of at most 500 over mutual TLS with the
// agent's current identity, retried with backoff while it cannot be reached. Recording never
// blocks a flow and never throws.
import type { Logger } from 'pino';
import { AGENT_EVENTS_MAX, ApiClient, agentEvent } from '../api-client/index.js';
import type { AgentEvent } from '../api-client/index.js';
import { backoffDelay } from '../backoff.js';
import { systemClock, unrefTimer } from '../clock.js';
import type { Clock } from '../clock.js';
import { PosternError, errorMessage, isPosternError } from '../errors.js';
import { formatZodIssue } from '../zod-issues.js';
import type { NewAuditEvent } from '../reporting/index.js';
import type { AgentIdentity } from './agent.js';
import { FailureWarnings } from './failure-warnings.js';
import type { FlowLog } from './mesh-types.js';

const AGENT_EVENTS_PATH = '/api/v1/agents/events';

export interface AgentFlowLogOptions {
  server: string;
  agentIdentity: () => AgentIdentity | undefined;
  logger: Logger;
  clock?: Clock;
  /** Events kept while the control plane cannot be reached; past this the oldest are dropped. */
  maxBuffered?: number;
  /** How soon after an event its batch goes out. */
  flushMs?: number;
}

export class AgentFlowLog implements FlowLog {
  #buffer: AgentEvent[] = [];
  #dropped = 0;
  #failures = 0;
  #timer: unknown;
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;
  readonly #clock: Clock;
  readonly #maxBuffered: number;
  readonly #flushMs: number;
  readonly #sendWarnings: FailureWarnings;
  readonly #invalidWarnings: FailureWarnings;

  constructor(private readonly options: AgentFlowLogOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#maxBuffered = options.maxBuffered ?? 10_000;
    this.#flushMs = options.flushMs ?? 500;
    if (!Number.isInteger(this.#maxBuffered) || this.#maxBuffered < 1) throw new PosternError('config_invalid', 'the flow log buffer must hold at least one event');
    if (!Number.isFinite(this.#flushMs) || this.#flushMs <= 0) throw new PosternError('config_invalid', 'the flow log flush interval must be a positive number of milliseconds');
    this.#sendWarnings = new FailureWarnings(options.logger, { failed: 'sending mesh events to the control plane failed; retrying', recovered: 'mesh events reach the control plane again' }, () => this.#clock.now());
    this.#invalidWarnings = new FailureWarnings(options.logger, { failed: 'a mesh event was dropped' }, () => this.#clock.now());
  }

  /** Events the control plane would refuse (wrong type, oversized fields) are dropped here, so they cannot sink a batch. */
  record(event: NewAuditEvent): void {
    if (this.#stopped) {
      this.#invalidWarnings.failed(new PosternError('internal', 'the flow log is stopped'), { type: event.type });
      return;
    }
    const parsed = agentEvent.safeParse(event.at === undefined ? { ...event, at: new Date(this.#clock.now()).toISOString() } : event);
    if (!parsed.success) {
      this.#invalidWarnings.failed(new PosternError('bad_request', `${event.type} event: ${formatZodIssue(parsed.error)}`), { type: event.type });
      return;
    }
    this.#buffer.push(parsed.data);
    this.#trim();
    if (this.#failures === 0) this.#schedule(this.#flushMs);
  }

  /** Sends everything buffered; rejects (the events kept for a retry) when the control plane cannot take them. */
  flush(): Promise<void> {
    const run = this.#chain.then(() => this.#drain());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Stops the timer and sends what is left; events that still cannot be sent are counted in a warning. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      await this.flush();
    } catch (err) {
      this.options.logger.warn({ err: errorMessage(err), lost: this.#buffer.length + this.#dropped }, 'the last mesh events could not be sent');
    }
  }

  #trim(): void {
    const over = this.#buffer.length - this.#maxBuffered;
    if (over <= 0) return;
    this.#buffer.splice(0, over);
    this.#dropped += over;
  }

  async #drain(): Promise<void> {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#dropped > 0) {
      this.options.logger.warn({ dropped: this.#dropped, maxBuffered: this.#maxBuffered }, 'mesh event buffer full: the oldest events were dropped');
      this.#dropped = 0;
    }
    while (this.#buffer.length > 0) {
      // Taken out while in flight: events recorded meanwhile (and drops of the oldest) touch only what is left.
      const batch = this.#buffer.splice(0, AGENT_EVENTS_MAX);
      try {
        await this.#send(batch);
      } catch (err) {
        if (isPosternError(err, 'bad_request')) {
          this.options.logger.warn({ err: err.message, events: batch.length }, 'the control plane refused a batch of mesh events; dropped');
          continue;
        }
        this.#buffer.unshift(...batch);
        this.#trim();
        this.#sendWarnings.failed(err, { buffered: this.#buffer.length });
        // The retry waits its backoff, even if an event recorded meanwhile asked for a sooner flush.
        this.#clock.clearTimeout(this.#timer);
        this.#timer = undefined;
        this.#schedule(backoffDelay(this.#failures++, { baseMs: this.#flushMs, capMs: 30_000 }, Math.random));
        throw err;
      }
    }
    this.#failures = 0;
    this.#sendWarnings.succeeded();
  }

  async #send(events: readonly AgentEvent[]): Promise<void> {
    const identity = this.options.agentIdentity();
    if (!identity) throw new PosternError('certificate_invalid', 'the agent has no identity yet');
    const client = new ApiClient({ server: this.options.server, caPem: identity.caPem, clientCert: { certPem: identity.certPem, keyPem: identity.keyPem } });
    await client.post(AGENT_EVENTS_PATH, { events });
  }

  #schedule(ms: number): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.flush().catch(() => undefined);
    }, ms);
    unrefTimer(this.#timer);
  }
}
