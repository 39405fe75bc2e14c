// The agent's copy of the control plane's mesh view (policies, declared services and their
// labels, revoked agents, the keys of JWT-SVIDs and of people's assertions), polled over mutual
// TLS with the agent's current identity and If-None-Match, compiled once per change and swapped
// in one reference. It is the MeshAuthority the mesh decides with: a failed poll keeps the last
// good view in force, and a view the engine cannot compile is refused whole (dropping one
// policy could drop a deny).
import { EventEmitter } from 'node:events';
import { createLocalJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import { ApiClient, meshView } from '../api-client/index.js';
import { checkX509Svid, verifyJwtSvid } from '../ca/index.js';
import { systemClock, unrefTimer } from '../clock.js';
import type { Clock } from '../clock.js';
import { PosternError, errorMessage, isPosternError } from '../errors.js';
import { compilePolicies, denialDetail, evaluate, validatePolicyDocument } from '../policy/index.js';
import type { Decision, PolicySet, RequestContext } from '../policy/index.js';
import { formatZodIssue } from '../zod-issues.js';
import type { AgentIdentity } from './agent.js';
import { FailureWarnings } from './failure-warnings.js';
import type { AssertedUser, MeshAuthority, VerifiedService } from './mesh-types.js';

const MESH_VIEW_PATH = '/api/v1/agents/mesh';

/** A view ready to decide with: compiled policies, labels by SPIFFE id, key sets built once. */
export interface LoadedMeshView {
  readonly version: string;
  readonly revision: number;
  readonly trustDomain: string;
  readonly caPems: readonly string[];
  readonly policies: PolicySet;
  readonly labels: ReadonlyMap<string, Readonly<Record<string, string>>>;
  readonly revoked: ReadonlySet<string>;
  readonly jwks: JSONWebKeySet;
  readonly assertionIssuer: string;
  readonly assertionKeys: JWTVerifyGetKey;
}

/** Parses and compiles a view as the control plane sent it; throws config_invalid when any part is unusable. */
export function loadMeshView(body: unknown): LoadedMeshView {
  const parsed = meshView.safeParse(body);
  if (!parsed.success) throw new PosternError('config_invalid', `the mesh view is malformed: ${formatZodIssue(parsed.error)}`);
  const wire = parsed.data;
  const records = wire.policies.map((p, i) => {
    try {
      return { document: validatePolicyDocument(p.document), version: p.version };
    } catch (cause) {
      throw new PosternError('config_invalid', `the mesh view's policy #${i} (${String(p.document.name)}) is not valid here: ${errorMessage(cause)}`, { cause });
    }
  });
  return Object.freeze({
    version: wire.version,
    revision: wire.revision,
    trustDomain: wire.trustDomain,
    caPems: Object.freeze([...wire.x509]),
    policies: compilePolicies(records),
    labels: new Map(wire.services.map((s) => [s.spiffeId, Object.freeze({ ...s.labels })])),
    revoked: new Set(wire.revokedAgents),
    jwks: wire.jwks as JSONWebKeySet,
    assertionIssuer: wire.assertion.issuer,
    assertionKeys: createLocalJWKSet(wire.assertion.jwks as JSONWebKeySet),
  });
}

export interface MeshViewOptions {
  /** The control plane's URL (the agent's `server`). */
  server: string;
  /** The agent's current identity, read per poll: it renews. */
  agentIdentity: () => AgentIdentity | undefined;
  logger: Logger;
  clock?: Clock;
  pollMs?: number;
}

/** Events: `change` after every new view (policies, services, revocations or keys changed). */
export class MeshView extends EventEmitter implements MeshAuthority {
  #view: LoadedMeshView | undefined;
  #etag: string | undefined;
  #timer: unknown;
  #started = false;
  #stopped = false;
  readonly #clock: Clock;
  readonly #pollMs: number;
  readonly #warnings: FailureWarnings;

  constructor(private readonly options: MeshViewOptions) {
    super();
    this.#clock = options.clock ?? systemClock;
    this.#pollMs = options.pollMs ?? 500;
    if (!Number.isFinite(this.#pollMs) || this.#pollMs <= 0) throw new PosternError('config_invalid', 'the mesh view poll interval must be a positive number of milliseconds');
    this.#warnings = new FailureWarnings(options.logger, { failed: 'mesh view poll failed; the last good view stays in force', recovered: 'mesh view poll works again' }, () => this.#clock.now());
  }

  /** Resolves once the first view is loaded; rejects when it cannot be. */
  async start(): Promise<void> {
    if (this.#started) throw new PosternError('internal', 'a MeshView can only be started once');
    this.#started = true;
    try {
      await this.#poll();
    } catch (err) {
      this.#stopped = true;
      throw new PosternError(isPosternError(err) ? err.code : 'internal', `cannot load the mesh view from ${this.options.server}: ${errorMessage(err)}`, { cause: err, retryable: true });
    }
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    this.#clock.clearTimeout(this.#timer);
  }

  /** The version (content hash) of the view in force. */
  get version(): string | undefined {
    return this.#view?.version;
  }

  get trustDomain(): string {
    return this.#current().trustDomain;
  }

  caPems(): readonly string[] {
    return this.#current().caPems;
  }

  verifyX509Svid(certPem: string): { ok: true; service: VerifiedService } | { ok: false; reason: string } {
    const view = this.#current();
    const check = checkX509Svid(certPem, { caPems: view.caPems, trustDomain: view.trustDomain, now: this.#clock.now(), isAgentRevoked: (id) => view.revoked.has(id) });
    if (!check.ok) return { ok: false, reason: `${check.reason}: ${check.detail}` };
    const labels = view.labels.get(check.spiffeId);
    if (!labels) return { ok: false, reason: `service-not-declared: ${check.spiffeId} is not a service any agent declared` };
    const { spiffeId, namespace, name, agentId } = check;
    return { ok: true, service: { spiffeId, namespace, name, agentId, labels } };
  }

  async verifyJwtSvid(token: string, audience: string): Promise<VerifiedService> {
    const view = this.#current();
    const verified = await verifyJwtSvid(token, {
      jwks: view.jwks, audience, trustDomain: view.trustDomain, now: Math.floor(this.#clock.now() / 1000), isAgentRevoked: (id) => view.revoked.has(id),
    });
    const { spiffeId, namespace, name, agentId, labels } = verified;
    return { spiffeId, namespace, name, agentId, labels };
  }

  async verifyUserAssertion(token: string): Promise<AssertedUser> {
    const view = this.#current();
    let payload;
    try {
      ({ payload } = await jwtVerify(token, view.assertionKeys, {
        issuer: view.assertionIssuer, algorithms: ['ES256'], requiredClaims: ['sub', 'exp'], currentDate: new Date(this.#clock.now()),
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new PosternError('token_expired', 'the Postern assertion has expired', { cause: err });
      throw new PosternError('token_invalid', 'the Postern assertion does not verify against the control plane\'s keys and issuer', { cause: err });
    }
    const { sub, email, groups } = payload;
    if (typeof email !== 'string' || !Array.isArray(groups) || !groups.every((g): g is string => typeof g === 'string')) {
      throw new PosternError('token_invalid', 'the Postern assertion names no email and groups');
    }
    return { id: sub!, email, groups };
  }

  isAgentRevoked(agentId: string): boolean {
    return this.#current().revoked.has(agentId);
  }

  decide(ctx: RequestContext): Decision {
    return evaluate(ctx, this.#current().policies);
  }

  denialDetail(ctx: RequestContext, decision: Decision): string {
    return denialDetail(ctx, this.#current().policies, decision);
  }

  #current(): LoadedMeshView {
    if (!this.#view) throw new PosternError('internal', 'the mesh view is not loaded yet: start() it first');
    return this.#view;
  }

  /** One conditional GET; a new view is compiled and swapped in, unless a lagging control node sent an older one. */
  async #poll(): Promise<void> {
    const identity = this.options.agentIdentity();
    if (!identity) throw new PosternError('certificate_invalid', 'the agent has no identity yet');
    const client = new ApiClient({ server: this.options.server, caPem: identity.caPem, clientCert: { certPem: identity.certPem, keyPem: identity.keyPem } });
    const answer = await client.getIfChanged<unknown>(MESH_VIEW_PATH, this.#etag);
    if (!answer) return;
    const next = loadMeshView(answer.body);
    if (this.#view && next.revision < this.#view.revision) return;
    this.#view = next;
    this.#etag = answer.etag ?? `"${next.version}"`;
    this.emit('change');
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#clock.setTimeout(() => void this.#tick(), this.#pollMs);
    unrefTimer(this.#timer);
  }

  async #tick(): Promise<void> {
    try {
      await this.#poll();
      this.#warnings.succeeded();
    } catch (err) {
      if (!this.#stopped) this.#warnings.failed(err, { server: this.options.server, version: this.#view?.version });
    }
    this.#schedule();
  }
}
