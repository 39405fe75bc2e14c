// The store's public face: the contract, opening a store, the change feed and the snapshot cache.

export type {
  AgentAttestationMethod,
  AgentAttributes,
  AgentIssuerRecord,
  AgentJoinTokenRecord,
  AgentRecord,
  ServiceProcessSelector,
  ServiceRecord,
  ServiceRepo,
  AgentStore,
  AuditBucket,
  AuditCountFilter,
  AuditFilter,
  AuditRecord,
  AuditRepo,
  LiveConnectionRecord,
  LiveConnectionRepo,
  NewAuditRecord,
  PolicyRecord,
  PolicyRepo,
  PolicyVersionRecord,
  NewRecording,
  RecordingChunkRecord,
  RecordingEnd,
  RecordingFilter,
  RecordingKind,
  RecordingRecord,
  RecordingRepo,
  ApiTokenRecord,
  ApiTokenRepo,
  ApiTokenRole,
  ApiTokenScope,
  Change,
  ChangeEntity,
  ChangeOp,
  ConnectorRecord,
  ConnectorRepo,
  DeviceAuthorizationRecord,
  DeviceAuthorizationRepo,
  DeviceAuthorizationStatus,
  ExternalIdentityRecord,
  ExternalIdentityRepo,
  HandoffCodeRecord,
  HandoffCodeRepo,
  IdentityProviderKind,
  IdentityProviderPatch,
  IdentityProviderRecord,
  IdentityProviderRepo,
  JoinTokenRecord,
  JoinTokenRepo,
  ListPage,
  NewExternalIdentity,
  NewIdentityProvider,
  NewJoinToken,
  NewSession,
  NewSocket,
  NewUser,
  SecretRepo,
  SessionGrantRecord,
  SessionGrantRepo,
  SessionKind,
  SessionRecord,
  SessionRepo,
  SocketAuth,
  SocketPatch,
  SocketRecord,
  SocketRepo,
  SocketType,
  Store,
  TagSelector,
  UserPatch,
  UserRecord,
  UserRepo,
} from './types.js';
export { API_TOKEN_SCOPES, noSocketAuth } from './types.js';
export { checkEmail, normalizeEmail, normalizeSocketAuth } from './socket-auth.js';
export { checkTagSelector } from './bindings.js';
export type { Database, StoreDialect } from './schema.js';
export { storeTables } from './schema.js';
export { SOCKET_NAME_PATTERN, socketNameSchema } from './names.js';
export { IDENTITY_PROVIDER_NAME_PATTERN } from './kysely-provider-repos.js';
export { SOCKET_TYPES, carriesTcp, isSocketType } from './socket-types.js';
export { checkUpstreamHostKey } from './host-key.js';
export { migrateToLatest, storeMigrations } from './migrations.js';
export { createKyselyStore, defaultChangesLimit, maxChangesLimit } from './kysely-store.js';
export type { KyselyStoreOptions } from './kysely-store.js';
export { describeDatabase, isPostgresUrl, openStore } from './open.js';
export type { OpenStoreOptions } from './open.js';
export { ChangeFeed } from './change-feed.js';
export { RevokedAgents } from './agent-revocations.js';
export type { ChangeFeedOptions, ChangeSource, FeedEvent, FeedListener } from './change-feed.js';
export { SnapshotCache, createSnapshot, loadSnapshot } from './snapshot.js';
export type { CreateSnapshotOptions, Snapshot, SnapshotCacheOptions, SnapshotListener } from './snapshot.js';
export { consoleLogger, silentLogger } from './runtime.js';
export { newId } from './rows.js';
export type { StoreLogger } from './runtime.js';
