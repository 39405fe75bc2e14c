// The store's contract for workload agents: the agents themselves (their attested attributes
// and current certificate), the one-time join tokens they attest with, and the JWT issuers an
// admin trusts. Re-exported by types.ts.
import type { ServiceRepo } from './service-types.js';
export type * from './service-types.js';

/** How an agent proved where it runs. */
export type AgentAttestationMethod = 'join_token' | 'jwt';

/** Attribute name → value; names are short identifiers (`k8s.namespace`, `host.hostname`). */
export type AgentAttributes = Readonly<Record<string, string>>;

export interface AgentRecord {
  readonly id: string;
  readonly name: string;
  readonly method: AgentAttestationMethod;
  /**
   * What identifies the attested party across attestations: `token:<token id>` or
   * `jwt:<issuer id>:<sub>`. A JWT agent that restarts attests again as the same agent, so
   * revoking it sticks; a join token is used once, so its key names one agent for ever.
   */
  readonly attestationKey: string;
  /** Verified (by the token or the issuer's signature), or host facts the admin chose to trust. */
  readonly attributes: AgentAttributes;
  /** Host facts the agent reported about itself: recorded, never used for authorization. */
  readonly selfAsserted: AgentAttributes;
  readonly spiffeId: string;
  readonly certSerial: string | null;
  readonly certNotAfter: string | null;
  readonly lastAttestedAt: string;
  readonly revokedAt: string | null;
  readonly createdAt: string;
}

export interface NewAgent {
  name: string;
  method: AgentAttestationMethod;
  attestationKey: string;
  attributes: Record<string, string>;
  selfAsserted: Record<string, string>;
  /** The SPIFFE id is derived from the id the store assigns: `${spiffePrefix}${id}`. */
  spiffePrefix: string;
}

export interface AgentJoinTokenRecord {
  readonly id: string;
  readonly tokenHash: string;
  readonly agentName: string;
  /** Attributes the admin vouches for; the agent gets them. */
  readonly attributes: AgentAttributes;
  /** Copy the agent's host facts into its attributes (the admin vouches for the host). */
  readonly trustFacts: boolean;
  readonly expiresAt: string;
  readonly usedAt: string | null;
  readonly agentId: string | null;
  readonly createdAt: string;
}

export interface NewAgentJoinToken {
  tokenHash: string;
  agentName: string;
  attributes?: Record<string, string>;
  trustFacts?: boolean;
  expiresAt: string;
}

export interface AgentIssuerRecord {
  readonly id: string;
  /** Unique; what `agent.yaml` names. */
  readonly name: string;
  /** The `iss` a token must carry, exactly. */
  readonly issuer: string;
  /** The `aud` a token must carry (one of). */
  readonly audience: string;
  readonly jwksUrl: string;
  /** Agent attribute → token claim (a dotted path into the payload). */
  readonly claims: AgentAttributes;
  /** JWS algorithms accepted; `none` and HMAC are never among them. */
  readonly algorithms: readonly string[];
  readonly maxSkewSeconds: number;
  readonly trustFacts: boolean;
  readonly createdAt: string;
}

export interface NewAgentIssuer {
  name: string;
  issuer: string;
  audience: string;
  jwksUrl: string;
  claims?: Record<string, string>;
  algorithms: string[];
  maxSkewSeconds: number;
  trustFacts?: boolean;
}

export interface AgentRepo {
  /** A page in id order (primary key). */
  list(page: { after?: string; limit: number }): Promise<AgentRecord[]>;
  get(id: string): Promise<AgentRecord | undefined>;
  findByAttestationKey(key: string): Promise<AgentRecord | undefined>;
  /** Ids of revoked agents, a page in id order (index on revoked_at): what a node loads at start. */
  revokedIds(page: { after?: string; limit: number }): Promise<string[]>;
  /** Throws PosternError('conflict') when the attestation key is taken. */
  create(input: NewAgent): Promise<AgentRecord>;
  /** A fresh attestation of a known agent: new facts, attributes and time. */
  reattest(id: string, input: { attributes: Record<string, string>; selfAsserted: Record<string, string>; at: string }): Promise<AgentRecord>;
  recordCertificate(id: string, serial: string, notAfter: string): Promise<void>;
  /** Idempotent. */
  revoke(id: string, at: string): Promise<void>;
  delete(id: string): Promise<void>;
}

export interface AgentJoinTokenRepo {
  create(input: NewAgentJoinToken): Promise<AgentJoinTokenRecord>;
  findByHash(tokenHash: string): Promise<AgentJoinTokenRecord | undefined>;
  /** One conditional UPDATE: PosternError token_invalid / token_used / token_expired for the losers. */
  consume(tokenHash: string, agentId: string, at: string): Promise<AgentJoinTokenRecord>;
}

export interface AgentIssuerRepo {
  list(): Promise<AgentIssuerRecord[]>;
  get(name: string): Promise<AgentIssuerRecord | undefined>;
  /** Throws PosternError('conflict') when the name is taken. */
  create(input: NewAgentIssuer): Promise<AgentIssuerRecord>;
  delete(name: string): Promise<void>;
}

export interface AgentStore {
  readonly agents: AgentRepo;
  /** The services agents declared (service-types.ts). */
  readonly services: ServiceRepo;
  readonly tokens: AgentJoinTokenRepo;
  readonly issuers: AgentIssuerRepo;
}
