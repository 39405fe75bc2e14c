// The agent process: attests, holds its identity (key, certificate, CA) in memory only, and
// renews over mutual TLS at half life with jitter. Nothing is written to disk, so a restarted
// agent attests again: a JWT agent re-reads its token file and comes back as the same agent; a
// join token is single-use, so a join-token agent that restarts needs a new token (a renewal
// credential on disk would be a long-lived secret equal to the key we refuse to store).
// A renewal refused as certificate_invalid (revoked, unknown) is final; others are retried
// with backoff while the identity lasts, and a JWT agent whose identity ran out attests anew.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { ApiClient, fetchPinnedCa } from '../api-client/index.js';
import type { AttestBody, IssuedAgent } from '../api-client/index.js';
import { createKeyAndCsr } from '../ca/index.js';
import { backoffDelay } from '../backoff.js';
import { systemClock, unrefTimer } from '../clock.js';
import type { Clock } from '../clock.js';
import { PosternError, errorMessage, isPosternError } from '../errors.js';
import { agentTokenPin, createAttestor } from './attestors.js';
import type { Attestor } from './attestors.js';
import type { AgentConfig } from './config.js';
import { gatherHostFacts } from './facts.js';
import { agentRenewalDelay, remainingLife } from './renewal.js';

const RETRY = { baseMs: 1_000, capMs: 60_000 };

export interface AgentIdentity {
  readonly agentId: string;
  readonly spiffeId: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly caPem: string;
  readonly notAfter: string;
}

export interface AgentOptions {
  config: AgentConfig;
  logger: Logger;
  clock?: Clock;
  random?: () => number;
}

/** Events: `identity` (AgentIdentity, at attestation and every renewal), `fatal` (PosternError: the agent cannot go on). */
export class Agent extends EventEmitter {
  #identity: AgentIdentity | undefined;
  #caPem: string | undefined;
  #timer: unknown;
  #stopped = false;
  #failures = 0;
  readonly #attestor: Attestor;
  readonly #clock: Clock;
  readonly #random: () => number;

  constructor(private readonly options: AgentOptions) {
    super();
    this.#attestor = createAttestor(options.config.attestation);
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
  }

  get identity(): AgentIdentity | undefined {
    return this.#identity;
  }

  /** Attests and schedules renewal; rejects when the first attestation fails. */
  async start(): Promise<AgentIdentity> {
    const identity = await this.#attest();
    this.#schedule(agentRenewalDelay(identity.certPem, this.#clock.now(), this.#random));
    return identity;
  }

  stop(): void {
    this.#stopped = true;
    this.#clock.clearTimeout(this.#timer);
  }

  async #trustedCa(evidence: Awaited<ReturnType<Attestor['evidence']>>): Promise<string> {
    if (this.#caPem) return this.#caPem;
    const pin = this.options.config.ca_pin ?? (evidence.method === 'join_token' ? agentTokenPin(evidence.token) : undefined);
    if (pin === undefined) throw new PosternError('config_invalid', 'ca_pin is required');
    this.#caPem = await fetchPinnedCa(this.options.config.server, pin);
    return this.#caPem;
  }

  async #attest(): Promise<AgentIdentity> {
    const evidence = await this.#attestor.evidence();
    const caPem = await this.#trustedCa(evidence);
    const facts = this.options.config.facts ? await gatherHostFacts() : undefined;
    const { keyPem, csrPem } = await createKeyAndCsr('postern-agent');
    const client = new ApiClient({ server: this.options.config.server, caPem });
    const body: AttestBody = { ...evidence, csr: csrPem, ...(facts ? { facts } : {}) };
    const issued = await client.post<IssuedAgent>('/api/v1/agents/attest', body);
    return this.#use(issued, keyPem);
  }

  async #renew(current: AgentIdentity): Promise<AgentIdentity> {
    const { keyPem, csrPem } = await createKeyAndCsr('postern-agent');
    const client = new ApiClient({ server: this.options.config.server, caPem: current.caPem, clientCert: { certPem: current.certPem, keyPem: current.keyPem } });
    const issued = await client.post<IssuedAgent>('/api/v1/agents/renew', { csr: csrPem });
    return this.#use(issued, keyPem);
  }

  #use(issued: IssuedAgent, keyPem: string): AgentIdentity {
    this.#caPem = issued.ca;
    this.#identity = { agentId: issued.agentId, spiffeId: issued.spiffeId, certPem: issued.certificate, keyPem, caPem: issued.ca, notAfter: issued.notAfter };
    this.emit('identity', this.#identity);
    return this.#identity;
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = this.#clock.setTimeout(() => void this.#renewOnce(), ms);
    unrefTimer(this.#timer);
  }

  async #renewOnce(): Promise<void> {
    const current = this.#identity!;
    try {
      const stillValid = remainingLife(current.certPem, this.#clock.now()) > 0;
      // An identity that ran out cannot authenticate a renewal: a JWT agent attests again instead.
      const next = stillValid ? await this.#renew(current) : this.#attestor.repeatable ? await this.#attest() : undefined;
      if (!next) return this.#fail(new PosternError('certificate_invalid', `agent ${current.agentId}: the identity expired before it could be renewed, and a join token attests only once: create a new token`));
      this.#failures = 0;
      this.options.logger.info({ agent: next.agentId, notAfter: next.notAfter }, 'agent identity renewed');
      this.#schedule(agentRenewalDelay(next.certPem, this.#clock.now(), this.#random));
    } catch (err) {
      if (this.#stopped) return;
      if (isPosternError(err, 'certificate_invalid') || isPosternError(err, 'token_used') || isPosternError(err, 'token_invalid')) return this.#fail(err);
      const delay = backoffDelay(this.#failures++, RETRY, this.#random);
      this.options.logger.warn({ err: errorMessage(err), retryInMs: delay }, 'agent identity renewal failed; retrying');
      this.#schedule(delay);
    }
  }

  #fail(err: PosternError): void {
    this.stop();
    this.emit('fatal', err);
  }
}
