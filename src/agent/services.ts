// The services an agent speaks for: their YAML declaration, and their identities — an
// X.509-SVID each (key made here, in memory only, CSR signed by the control plane over mutual
// TLS with the agent's own identity, renewed at half life with jitter) and JWT-SVIDs per
// audience, asked for on demand and reused while more than half of their life is left.
// Labels come from the YAML and, re-read at every renewal, from a scanner's file (YAML or
// JSON); the YAML's own labels win over the file's, the file only adds.
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ApiClient, serviceDeclaration } from '../api-client/index.js';
import type { IssuedSvid, JwtSvid, ServiceDeclaration } from '../api-client/index.js';
import { createSvidKeyAndCsr, serviceSpiffeId } from '../ca/index.js';
import { backoffDelay } from '../backoff.js';
import { systemClock, unrefTimer } from '../clock.js';
import type { Clock } from '../clock.js';
import { PosternError, errorMessage, isPosternError } from '../errors.js';
import type { AgentIdentity } from './agent.js';
import { agentRenewalDelay } from './renewal.js';

const RETRY = { baseMs: 1_000, capMs: 30_000 };

export const agentServiceSchema = serviceDeclaration.extend({
  /** A scanner's labels (`vulnerable: false`), YAML or JSON; re-read at every renewal. */
  labels_file: z.string().min(1).optional(),
  /** What the mesh (mesh.ts) speaks to `port`: bytes (decided per connection) or HTTP (decided per request). Local to the agent. */
  protocol: z.enum(['tcp', 'http']).default('tcp'),
}).strict();
export type AgentService = z.infer<typeof agentServiceSchema>;

export const workloadApiSchema = z.object({
  /** The Unix socket the services' code asks for its identities. */
  socket: z.string().min(1),
  /** 0600 (the agent's user only) or 0660 (its group too). */
  mode: z.enum(['0600', '0660']).default('0660'),
}).strict();

/** `<namespace>/<name>`. */
export const serviceKey = (s: { namespace: string; name: string }) => `${s.namespace}/${s.name}`;

/** A scanner's labels: a flat map; scalars become strings, anything nested is refused. */
export function parseLabelsFile(text: string, source: string): Record<string, string> {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (cause) {
    throw new PosternError('config_invalid', `${source}: not valid YAML or JSON`, { cause });
  }
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new PosternError('config_invalid', `${source}: expected a map of labels`);
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') throw new PosternError('config_invalid', `${source}: label ${key} must be a string, number or boolean`);
    labels[key] = String(value);
  }
  return labels;
}

export async function declarationOf(service: AgentService): Promise<ServiceDeclaration> {
  // The labels file's path and the mesh's protocol stay on this host: the control plane gets the declaration.
  const { labels_file: file, protocol: _protocol, ...declared } = service;
  if (file === undefined) return declared;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new PosternError('config_invalid', `cannot read the labels file ${file}: ${(cause as NodeJS.ErrnoException).code ?? errorMessage(cause)}`, { cause });
  }
  const merged = serviceDeclaration.shape.labels.safeParse({ ...parseLabelsFile(text, file), ...declared.labels });
  if (!merged.success) throw new PosternError('config_invalid', `${file}: labels: ${merged.error.issues[0]?.message ?? 'invalid'}`);
  return { ...declared, labels: merged.data };
}

export interface ServiceSvid {
  readonly service: AgentService;
  readonly spiffeId: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly bundlePem: string;
  readonly notAfter: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface ServiceIdentitiesOptions {
  server: string;
  services: readonly AgentService[];
  /** The agent's current identity: what the control plane authenticates these requests with. */
  agentIdentity: () => AgentIdentity | undefined;
  trustDomain: string;
  logger: Logger;
  clock?: Clock;
  random?: () => number;
}

/** Events: `svid` (ServiceSvid, at first issuance and every renewal). */
export class ServiceIdentities extends EventEmitter {
  readonly #svids = new Map<string, ServiceSvid>();
  readonly #jwts = new Map<string, { svid: JwtSvid; renewAt: number }>();
  readonly #timers = new Map<string, unknown>();
  readonly #failures = new Map<string, number>();
  readonly #clock: Clock;
  readonly #random: () => number;
  #stopped = false;

  constructor(private readonly options: ServiceIdentitiesOptions) {
    super();
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
  }

  get services(): readonly AgentService[] {
    return this.options.services;
  }

  /** Obtains every service's first SVID; rejects when one is refused. */
  async start(): Promise<void> {
    for (const service of this.options.services) await this.#issue(service);
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) this.#clock.clearTimeout(timer);
  }

  svid(key: string): ServiceSvid | undefined {
    return this.#svids.get(key);
  }

  async jwt(key: string, audience: string): Promise<JwtSvid> {
    const service = this.options.services.find((s) => serviceKey(s) === key);
    if (!service) throw new PosternError('not_found', `service ${key} is not declared`);
    const cacheKey = `${key}\n${audience}`;
    const cached = this.#jwts.get(cacheKey);
    if (cached && cached.renewAt > this.#clock.now()) return cached.svid;
    const svid = await this.#client().post<JwtSvid>('/api/v1/agents/jwt-svid', { namespace: service.namespace, name: service.name, audience });
    const now = this.#clock.now();
    this.#jwts.set(cacheKey, { svid, renewAt: now + (Date.parse(svid.expiresAt) - now) / 2 });
    if (this.#jwts.size > 1_000) this.#jwts.delete(this.#jwts.keys().next().value!);
    return svid;
  }

  #client(): ApiClient {
    const identity = this.options.agentIdentity();
    if (!identity) throw new PosternError('certificate_invalid', 'the agent has no identity yet');
    return new ApiClient({ server: this.options.server, caPem: identity.caPem, clientCert: { certPem: identity.certPem, keyPem: identity.keyPem } });
  }

  async #issue(service: AgentService): Promise<ServiceSvid> {
    const declaration = await declarationOf(service);
    const spiffeId = serviceSpiffeId(this.options.trustDomain, declaration.namespace, declaration.name);
    const { keyPem, csrPem } = await createSvidKeyAndCsr(spiffeId);
    const issued = await this.#client().post<IssuedSvid>('/api/v1/agents/svid', { service: declaration, csr: csrPem });
    const svid: ServiceSvid = { service, spiffeId: issued.spiffeId, certPem: issued.certificate, keyPem, bundlePem: issued.ca, notAfter: issued.notAfter, labels: issued.labels };
    this.#svids.set(serviceKey(service), svid);
    this.emit('svid', svid);
    this.#schedule(service, agentRenewalDelay(svid.certPem, this.#clock.now(), this.#random));
    return svid;
  }

  #schedule(service: AgentService, ms: number): void {
    if (this.#stopped) return;
    const timer = this.#clock.setTimeout(() => void this.#renew(service), ms);
    unrefTimer(timer);
    this.#timers.set(serviceKey(service), timer);
  }

  async #renew(service: AgentService): Promise<void> {
    const key = serviceKey(service);
    try {
      await this.#issue(service);
      this.#failures.delete(key);
    } catch (err) {
      if (this.#stopped) return;
      // A revoked agent loses its services with it: the agent itself reports that and exits.
      if (isPosternError(err, 'certificate_invalid')) return;
      const failures = this.#failures.get(key) ?? 0;
      this.#failures.set(key, failures + 1);
      const delay = backoffDelay(failures, RETRY, this.#random);
      this.options.logger.warn({ service: key, err: errorMessage(err), retryInMs: delay }, 'service SVID renewal failed; retrying');
      this.#schedule(service, delay);
    }
  }
}
