// The store's narrow contract: typed records, repositories per entity, and a change log
// with a monotonic revision that every mutation appends to (the change feed reads it).

import type { RecordingRepo } from './recording-types.js';
import type { AgentStore } from './agent-types.js';
import type { SocketType } from './socket-types.js';

export type * from './recording-types.js';
export type * from './agent-types.js';
export type { SocketType } from './socket-types.js';

/** Who may use a socket before policies land: `cloudauth` requires a signed-in user from these domains/addresses. */
export interface SocketAuth {
  readonly cloudauth: boolean;
  readonly allowedEmailDomains: readonly string[];
  readonly allowedEmailAddresses: readonly string[];
}

export const noSocketAuth: SocketAuth = Object.freeze({ cloudauth: false, allowedEmailDomains: [], allowedEmailAddresses: [] });

/** Binds a connector to every socket whose tags include all these pairs (never empty). */
export type TagSelector = Readonly<Record<string, string>>;

export interface SocketRecord {
  readonly id: string;
  readonly name: string;
  readonly type: SocketType;
  readonly auth: SocketAuth;
  /** What the owner said the upstream is; connectors dial only what their own config names. */
  readonly upstream: string | null;
  readonly description: string;
  readonly tags: Readonly<Record<string, string>>;
  /** HTTP sockets: ambiguous paths (encoded `/`, `\\`, `;`) pass as sent instead of being refused. */
  readonly rawPaths: boolean;
  /** Ids of the connectors bound to this socket by name (a join token naming it, `socket update --connector`). */
  readonly connectors: readonly string[];
  /** SSH sockets: recordings keep the user's keystrokes (asciicast input events) too, not only the output. */
  readonly recordInput: boolean;
  /**
   * SSH sockets: the upstream sshd's host key (`ssh-ed25519 AAAA…`, no comment), pinned by the
   * first edge that reached it; null until then, or after `socket update --forget-host-key`.
   */
  readonly upstreamHostKey: string | null;
  /** postgres sockets: the database a session opens when the client names none; null = the client's choice (PostgreSQL's default: its user name). */
  readonly database: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface NewSocket {
  name: string;
  type: SocketType;
  auth?: SocketAuth;
  upstream?: string | null;
  description?: string;
  tags?: Record<string, string>;
  rawPaths?: boolean;
  /** Connector ids; each must exist (PosternError('not_found') otherwise). */
  connectors?: string[];
  /** Default false. */
  recordInput?: boolean;
  /** Default null; checked to be `<key type> <base64 blob>` (PosternError('bad_request') otherwise). */
  upstreamHostKey?: string | null;
  /** Default null. */
  database?: string | null;
}

export type SocketPatch = Partial<Omit<NewSocket, 'name'>>;

export interface ConnectorRecord {
  readonly id: string;
  readonly name: string;
  readonly certSerial: string | null;
  readonly certNotAfter: string | null;
  readonly lastSeenAt: string | null;
  readonly revokedAt: string | null;
  /** Sockets with these tags are bound to the connector too (from its join token); null = none. */
  readonly socketTags: TagSelector | null;
  readonly createdAt: string;
}

export interface JoinTokenRecord {
  readonly id: string;
  readonly tokenHash: string;
  readonly connectorName: string;
  readonly expiresAt: string;
  readonly usedAt: string | null;
  readonly connectorId: string | null;
  /** Names of the sockets the enrolled connector is bound to. */
  readonly sockets: readonly string[];
  /** The tag selector the enrolled connector gets; null = none. */
  readonly socketTags: TagSelector | null;
  readonly createdAt: string;
}

export interface NewJoinToken {
  tokenHash: string;
  connectorName: string;
  expiresAt: string;
  sockets?: string[];
  socketTags?: Record<string, string> | null;
}

export type ApiTokenRole = 'admin' | 'service';

/**
 * What an API token may do, a closed set: `admin` is everything (what every token could do
 * before scopes); a `noun:write` scope grants `noun:read` too.
 */
export const API_TOKEN_SCOPES = [
  'admin', 'agents:read', 'agents:write', 'audit:read', 'certs:issue', 'connectors:read', 'connectors:write', 'metrics:read', 'policies:read', 'policies:write',
  'recordings:read', 'sessions:read', 'sessions:write', 'sockets:read', 'sockets:write', 'users:read', 'users:write',
] as const;
export type ApiTokenScope = (typeof API_TOKEN_SCOPES)[number];

export interface ApiTokenRecord {
  readonly id: string;
  readonly name: string;
  readonly tokenHash: string;
  readonly role: ApiTokenRole;
  /** Never empty; tokens from before scopes have `['admin']`. */
  readonly scopes: readonly ApiTokenScope[];
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  readonly revokedAt: string | null;
}

export interface UserRecord {
  readonly id: string;
  /** Lower-cased; unique. */
  readonly email: string;
  readonly name: string;
  readonly groups: readonly string[];
  /** scrypt hash for local sign-in; null for users who only sign in through a provider. */
  readonly passwordHash: string | null;
  readonly disabledAt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface NewUser {
  email: string;
  name?: string;
  groups?: string[];
  passwordHash?: string | null;
  /** Linked in the same transaction: a user created by an external sign-in is never without its link. */
  externalIdentity?: Omit<NewExternalIdentity, 'userId'>;
}

/** A user's identity at an external provider: the stable (issuer, subject) pair, unique across users. */
export interface ExternalIdentityRecord {
  readonly id: string;
  readonly userId: string;
  readonly issuer: string;
  readonly subject: string;
  /** The provider record the link was made through. */
  readonly provider: string;
  /** The email claimed when the link was made (the user's own email may differ later). */
  readonly email: string;
  readonly createdAt: string;
}

export interface NewExternalIdentity {
  userId: string;
  issuer: string;
  subject: string;
  provider: string;
  email: string;
}

export interface UserPatch {
  name?: string;
  groups?: string[];
  passwordHash?: string | null;
  disabledAt?: string | null;
}

export type SessionKind = 'browser' | 'cli';

/** One sign-in of a user. Its secret (a cookie or a CLI token) is stored only as a hash. */
export interface SessionRecord {
  readonly id: string;
  readonly userId: string;
  readonly kind: SessionKind;
  /** `local`, or the name of the identity provider. */
  readonly provider: string;
  readonly clientIp: string;
  readonly userAgent: string;
  readonly secretHash: string;
  readonly createdAt: string;
  readonly lastSeenAt: string;
  /** Absolute expiry. */
  readonly expiresAt: string;
  readonly revokedAt: string | null;
}

export interface NewSession {
  userId: string;
  kind: SessionKind;
  provider: string;
  clientIp: string;
  userAgent: string;
  secretHash: string;
  expiresAt: string;
}

/** A socket host's own cookie, bound to a session: revoking the session revokes every grant. */
export interface SessionGrantRecord {
  readonly id: string;
  readonly sessionId: string;
  readonly socket: string;
  readonly secretHash: string;
  readonly createdAt: string;
}

/** One-time code that carries a session from the control host to a socket host. */
export interface HandoffCodeRecord {
  readonly codeHash: string;
  readonly sessionId: string;
  readonly socket: string;
  readonly returnTo: string;
  readonly expiresAt: string;
  readonly usedAt: string | null;
}

export type IdentityProviderKind = 'oidc' | 'github' | 'saml';

/** A sign-in source. `config` is plain settings (issuer, client id, attribute names…); secrets are sealed apart. */
export interface IdentityProviderRecord {
  readonly id: string;
  /** Slug used in URLs (/auth/oidc/<name>/callback); unique. */
  readonly name: string;
  readonly kind: IdentityProviderKind;
  readonly displayName: string;
  readonly config: Readonly<Record<string, unknown>>;
  /** Client secret or SAML SP private key, sealed by the caller (KeyCipher); null when none. */
  readonly sealedSecret: string | null;
  readonly disabledAt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface NewIdentityProvider {
  name: string;
  kind: IdentityProviderKind;
  displayName?: string;
  config?: Record<string, unknown>;
  sealedSecret?: string | null;
}

export interface IdentityProviderPatch {
  displayName?: string;
  config?: Record<string, unknown>;
  sealedSecret?: string | null;
  disabledAt?: string | null;
}

export type DeviceAuthorizationStatus = 'pending' | 'approved' | 'denied' | 'redeemed';

/** RFC 8628 device authorization: the CLI polls with the device code; a person approves the user code in a browser. */
export interface DeviceAuthorizationRecord {
  readonly id: string;
  readonly deviceCodeHash: string;
  /** Short code people type (e.g. BDWP-HQPK); unique while pending. */
  readonly userCode: string;
  readonly status: DeviceAuthorizationStatus;
  /** Set on approval: the user who approved. */
  readonly userId: string | null;
  readonly clientName: string;
  readonly clientIp: string;
  /** Loopback sign-in: the PKCE S256 challenge the code must be redeemed against (RFC 7636); null for device codes. */
  readonly codeChallenge: string | null;
  readonly expiresAt: string;
  readonly createdAt: string;
  readonly lastPolledAt: string | null;
}

/** A stored policy document (validated by src/policy before it gets here; the store keeps it as JSON). */
export interface PolicyRecord {
  readonly id: string;
  /** '' = the organisation's root. */
  readonly namespace: string;
  readonly name: string;
  /** 1 on create, +1 on every change. */
  readonly version: number;
  readonly document: Readonly<Record<string, unknown>>;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** One version of a policy as it was; `document` is null for the version that deleted it. */
export interface PolicyVersionRecord {
  readonly policyId: string;
  readonly namespace: string;
  readonly name: string;
  readonly version: number;
  readonly document: Readonly<Record<string, unknown>> | null;
  /** Who made the change (an email, a token name). */
  readonly author: string;
  readonly createdAt: string;
}

/** An audit event as stored: append-only, ids increase in insertion order. */
export interface AuditRecord {
  readonly id: number;
  readonly type: string;
  readonly at: string;
  readonly actor: string;
  readonly socket: string;
  readonly clientIp: string;
  readonly country: string;
  /** 'allow' | 'deny' | ''. */
  readonly decision: string;
  readonly rule: string;
  readonly reason: string;
  readonly connectionId: string;
  readonly sessionId: string;
  readonly details: Readonly<Record<string, unknown>>;
}

export type NewAuditRecord = Partial<Omit<AuditRecord, 'id' | 'type'>> & { readonly type: string };

/** Decided events over time: [since, until) cut into buckets of `bucketMinutes` from `since` on (at most 24 h, minute-aligned bounds). */
export interface AuditCountFilter {
  readonly since: string;
  readonly until: string;
  readonly bucketMinutes: number;
  /** Only events of these types (default: every type). */
  readonly types?: readonly string[];
}

/** One bucket of `AuditRepo.countByTime`: events decided 'allow' and 'deny' from `start` on. */
export interface AuditBucket {
  readonly start: string;
  readonly allow: number;
  readonly deny: number;
}

export interface AuditFilter {
  readonly afterId?: number;
  /** Events with an id below this (keyset paging backwards, with `newestFirst`). */
  readonly beforeId?: number;
  /** Free text: every word (letters and digits) must start a word of reason, actor, socket or details. */
  readonly text?: string;
  readonly actor?: string;
  readonly socket?: string;
  readonly type?: string;
  readonly decision?: string;
  readonly since?: string;
  readonly until?: string;
  /** Default 100, at most 1000. */
  readonly limit?: number;
  /** Newest first instead of id order (for "the last N"). */
  readonly newestFirst?: boolean;
}

/** A live stream through an edge, as that edge last reported it. */
export interface LiveConnectionRecord {
  readonly id: string;
  readonly edgeId: string;
  /** tls | ssh | websocket | database */
  readonly protocol: string;
  readonly socket: string;
  readonly userId: string;
  readonly email: string;
  readonly sessionId: string;
  readonly clientIp: string;
  readonly country: string;
  readonly startedAt: string;
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** What it is doing now where its protocol says (a database session's current statement, at most 200 characters); '' when idle. */
  readonly activity: string;
  /** Since when `activity` holds (a statement's start, or the moment the session went idle); null for protocols that report none. */
  readonly activitySince: string | null;
  /** The edge's last heartbeat for this row; rows of an edge that died stop being refreshed. */
  readonly updatedAt: string;
}

export type ChangeEntity = 'socket' | 'connector' | 'join_token' | 'api_token' | 'secret' | 'user' | 'session' | 'session_grant' | 'identity_provider' | 'policy' | 'kill' | 'agent' | 'agent_join_token' | 'agent_issuer' | 'agent_service';
export type ChangeOp = 'create' | 'update' | 'delete';

export interface Change {
  readonly revision: number;
  readonly entity: ChangeEntity;
  readonly entityId: string;
  readonly op: ChangeOp;
  readonly at: string;
}

/** One page of a list in key order: rows after `after` (the key of the last row seen), at most `limit` of them. */
export interface ListPage {
  readonly after?: string;
  readonly limit: number;
}

export interface SocketRepo {
  /** By name; a page when given (index on name). */
  list(page?: ListPage): Promise<SocketRecord[]>;
  get(name: string): Promise<SocketRecord | undefined>;
  /** Throws PosternError('conflict') when the name is taken. */
  create(input: NewSocket): Promise<SocketRecord>;
  /** Throws PosternError('not_found') when absent. */
  update(name: string, patch: SocketPatch): Promise<SocketRecord>;
  /** Throws PosternError('not_found') when absent. */
  delete(name: string): Promise<void>;
}

export interface ConnectorRepo {
  /** In enrollment order; a page is in id order (the primary key). */
  list(page?: ListPage): Promise<ConnectorRecord[]>;
  get(id: string): Promise<ConnectorRecord | undefined>;
  create(input: { name: string }): Promise<ConnectorRecord>;
  recordCertificate(id: string, serial: string, notAfter: string): Promise<void>;
  touch(id: string, at: string): Promise<void>;
  revoke(id: string, at: string): Promise<void>;
  delete(id: string): Promise<void>;
}

export interface JoinTokenRepo {
  create(input: NewJoinToken): Promise<JoinTokenRecord>;
  list(): Promise<JoinTokenRecord[]>;
  /**
   * Atomically marks the token used by `connectorId` and binds that connector as the token says:
   * it joins each named socket that still exists and gets the token's tag selector. Throws PosternError with code
   * 'token_invalid' (unknown hash), 'token_used' (already consumed) or 'token_expired'.
   */
  consume(tokenHash: string, connectorId: string, at: string): Promise<JoinTokenRecord>;
  delete(id: string): Promise<void>;
}

export interface ApiTokenRepo {
  create(input: { name: string; tokenHash: string; role: ApiTokenRole; scopes: readonly ApiTokenScope[] }): Promise<ApiTokenRecord>;
  list(): Promise<ApiTokenRecord[]>;
  findByHash(tokenHash: string): Promise<ApiTokenRecord | undefined>;
  revoke(id: string, at: string): Promise<void>;
}

/** Opaque named values (already encrypted by the caller when secret). */
export interface SecretRepo {
  get(name: string): Promise<string | undefined>;
  /** Inserts only if absent; returns the value that is stored afterwards (first writer wins). */
  putIfAbsent(name: string, value: string): Promise<string>;
  put(name: string, value: string): Promise<void>;
}

export interface UserRepo {
  /** By email; a page when given, keyed by email (index on email). */
  list(page?: ListPage): Promise<UserRecord[]>;
  get(id: string): Promise<UserRecord | undefined>;
  /** Case-insensitive. */
  findByEmail(email: string): Promise<UserRecord | undefined>;
  /** Throws PosternError('conflict') when the email is taken. */
  create(input: NewUser): Promise<UserRecord>;
  /** Throws PosternError('not_found') when absent. */
  update(id: string, patch: UserPatch): Promise<UserRecord>;
  /** Also revokes the user's sessions. Throws PosternError('not_found') when absent. */
  delete(id: string): Promise<void>;
}

export interface SessionRepo {
  list(filter?: { userId?: string }): Promise<SessionRecord[]>;
  get(id: string): Promise<SessionRecord | undefined>;
  findBySecretHash(secretHash: string): Promise<SessionRecord | undefined>;
  create(input: NewSession): Promise<SessionRecord>;
  /** Last-seen bookkeeping: records no change (it would reload every snapshot). */
  touch(id: string, at: string): Promise<void>;
  /** Idempotent; throws PosternError('not_found') when absent. */
  revoke(id: string, at: string): Promise<void>;
  /** Returns how many sessions were revoked. */
  revokeAllForUser(userId: string, at: string): Promise<number>;
}

export interface SessionGrantRepo {
  create(input: { sessionId: string; socket: string; secretHash: string }): Promise<SessionGrantRecord>;
  list(): Promise<SessionGrantRecord[]>;
  findBySecretHash(secretHash: string): Promise<SessionGrantRecord | undefined>;
}

export interface HandoffCodeRepo {
  create(input: { codeHash: string; sessionId: string; socket: string; returnTo: string; expiresAt: string }): Promise<HandoffCodeRecord>;
  /**
   * Atomically marks the code used for `socket`. Throws PosternError 'token_invalid' (unknown,
   * or issued for another socket), 'token_used' or 'token_expired'.
   */
  consume(codeHash: string, socket: string, at: string): Promise<HandoffCodeRecord>;
}

export interface IdentityProviderRepo {
  list(): Promise<IdentityProviderRecord[]>;
  get(name: string): Promise<IdentityProviderRecord | undefined>;
  /** Throws PosternError('conflict') when the name is taken. */
  create(input: NewIdentityProvider): Promise<IdentityProviderRecord>;
  /** Throws PosternError('not_found') when absent. */
  update(name: string, patch: IdentityProviderPatch): Promise<IdentityProviderRecord>;
  delete(name: string): Promise<void>;
}

/** Links record no change (they never reach snapshots); a user's delete removes its links. */
export interface ExternalIdentityRepo {
  find(issuer: string, subject: string): Promise<ExternalIdentityRecord | undefined>;
  listForUser(userId: string): Promise<ExternalIdentityRecord[]>;
  /** Throws 'conflict' when (issuer, subject) is linked already, 'not_found' when the user is absent. */
  link(input: NewExternalIdentity): Promise<ExternalIdentityRecord>;
}

/** Device authorizations record no change (they never reach snapshots). */
export interface DeviceAuthorizationRepo {
  create(input: { deviceCodeHash: string; userCode: string; clientName: string; clientIp: string; expiresAt: string; codeChallenge?: string }): Promise<DeviceAuthorizationRecord>;
  findByUserCode(userCode: string): Promise<DeviceAuthorizationRecord | undefined>;
  findByDeviceCodeHash(deviceCodeHash: string): Promise<DeviceAuthorizationRecord | undefined>;
  /** pending → approved/denied; throws 'not_found', or 'conflict' when no longer pending or expired. */
  decide(id: string, decision: { status: 'approved'; userId: string } | { status: 'denied' }, at: string): Promise<DeviceAuthorizationRecord>;
  /** approved → redeemed, atomically (exactly one poller gets the session); throws 'conflict' otherwise. */
  redeem(id: string, at: string): Promise<DeviceAuthorizationRecord>;
  /** Records a poll (for RFC 8628 slow_down); returns the previous poll time. */
  poll(id: string, at: string): Promise<string | null>;
}

export interface PolicyRepo {
  list(): Promise<PolicyRecord[]>;
  get(namespace: string, name: string): Promise<PolicyRecord | undefined>;
  /** Creates or replaces; returns the stored record and whether anything changed (an identical document keeps its version). */
  put(namespace: string, name: string, document: Record<string, unknown>, author: string): Promise<{ record: PolicyRecord; changed: boolean; previous?: PolicyRecord }>;
  /** Throws PosternError('not_found') when absent. Returns what was deleted. */
  delete(namespace: string, name: string, author: string): Promise<PolicyRecord>;
  /** Every version of one policy, oldest first (deleted policies keep their history). */
  versions(namespace: string, name: string): Promise<PolicyVersionRecord[]>;
}

/** Append-only: there is no update or delete. */
export interface AuditRepo {
  append(events: readonly NewAuditRecord[]): Promise<AuditRecord[]>;
  list(filter?: AuditFilter): Promise<AuditRecord[]>;
  /** Allowed and denied events per bucket, every bucket present (zeros too), oldest first; an index on (at, decision, type) answers it. */
  countByTime(filter: AuditCountFilter): Promise<AuditBucket[]>;
  /** An exporter's resume point: the id of the last event it delivered (0 when none). */
  cursor(exporter: string): Promise<number>;
  setCursor(exporter: string, id: number): Promise<void>;
}

/** Kills travel as changes (entity 'kill'), so every edge hears of them through its feed. */
export interface LiveConnectionRepo {
  /** Inserts or refreshes rows of one edge (bytes, heartbeat). */
  upsert(rows: readonly Omit<LiveConnectionRecord, 'updatedAt'>[]): Promise<void>;
  remove(ids: readonly string[]): Promise<void>;
  /** Rows refreshed at or after `freshSince`. */
  list(filter: { freshSince: string; socket?: string; userId?: string }): Promise<LiveConnectionRecord[]>;
  /** Drops rows not refreshed since `before` (edges that died). */
  prune(before: string): Promise<number>;
  /** Records a kill change: `target` is a connection id or `user:<id>`. */
  requestKill(target: string): Promise<void>;
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly recordings: RecordingRepo;
  readonly policies: PolicyRepo;
  readonly audit: AuditRepo;
  readonly liveConnections: LiveConnectionRepo;
  readonly sockets: SocketRepo;
  readonly connectors: ConnectorRepo;
  readonly joinTokens: JoinTokenRepo;
  readonly apiTokens: ApiTokenRepo;
  readonly secrets: SecretRepo;
  readonly users: UserRepo;
  readonly sessions: SessionRepo;
  readonly sessionGrants: SessionGrantRepo;
  readonly handoffCodes: HandoffCodeRepo;
  readonly identityProviders: IdentityProviderRepo;
  readonly deviceAuthorizations: DeviceAuthorizationRepo;
  readonly externalIdentities: ExternalIdentityRepo;
  /** Workload agents, their join tokens and the JWT issuers trusted for attestation. */
  readonly agents: AgentStore;
  migrate(): Promise<void>;
  currentRevision(): Promise<number>;
  changesSince(revision: number, limit?: number): Promise<Change[]>;
  /** Called after every committed mutation in this process (the feed polls at once). */
  onLocalChange(listener: () => void): () => void;
  close(): Promise<void>;
}
