// Kysely table types for the store's one schema (shared by SQLite and PostgreSQL).
// Timestamps are ISO-8601 UTC strings and JSON values are TEXT in both dialects.

import type { Generated } from 'kysely';
import type { AgentTables } from './agent-schema.js';
import type { ServiceTables } from './service-schema.js';

export interface SocketsTable {
  id: string;
  name: string;
  type: string;
  /** JSON SocketAuth (added by 0002_identity). */
  auth: string;
  upstream: string | null;
  description: string;
  /** JSON object of string → string. */
  tags: string;
  /** 1 when ambiguous HTTP paths pass as sent (added by 0007_socket_raw_paths). */
  raw_paths: number;
  /** JSON array of connector ids bound by name (added by 0006_socket_bindings). */
  connectors: string;
  /** 1 when SSH recordings keep input events (added by 0011_ssh_sockets). */
  record_input: number;
  /** The pinned upstream SSH host key, or null (added by 0011_ssh_sockets). */
  upstream_host_key: string | null;
  /** postgres sockets: the database a session opens when the client names none, or null (added by 0016_socket_database). */
  database: string | null;
  created_at: string;
  updated_at: string;
}

export interface ConnectorsTable {
  id: string;
  name: string;
  cert_serial: string | null;
  cert_not_after: string | null;
  last_seen_at: string | null;
  revoked_at: string | null;
  /** JSON tag selector or null (added by 0006_socket_bindings). */
  socket_tags: string | null;
  created_at: string;
}

export interface JoinTokensTable {
  id: string;
  token_hash: string;
  connector_name: string;
  expires_at: string;
  used_at: string | null;
  connector_id: string | null;
  /** JSON array of socket names (added by 0006_socket_bindings). */
  sockets: string;
  /** JSON tag selector or null (added by 0006_socket_bindings). */
  socket_tags: string | null;
  created_at: string;
}

export interface ApiTokensTable {
  id: string;
  name: string;
  token_hash: string;
  role: string;
  /** JSON array of scopes. */
  scopes: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface SecretsTable {
  name: string;
  value: string;
}

export interface UsersTable {
  id: string;
  /** Trimmed and lower-cased; unique. */
  email: string;
  name: string;
  /** JSON array of strings. */
  groups: string;
  password_hash: string | null;
  disabled_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  kind: string;
  provider: string;
  client_ip: string;
  user_agent: string;
  secret_hash: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  revoked_at: string | null;
}

export interface SessionGrantsTable {
  id: string;
  session_id: string;
  socket: string;
  secret_hash: string;
  created_at: string;
}

export interface HandoffCodesTable {
  code_hash: string;
  session_id: string;
  socket: string;
  return_to: string;
  expires_at: string;
  used_at: string | null;
}

export interface IdentityProvidersTable {
  id: string;
  name: string;
  kind: string;
  display_name: string;
  /** JSON object of plain settings. */
  config: string;
  sealed_secret: string | null;
  disabled_at: string | null;
  created_at: string;
  updated_at: string;
}

/** RFC 8628 device authorizations (added by 0004_device_authorizations); no change is recorded for them. */
export interface DeviceAuthorizationsTable {
  id: string;
  device_code_hash: string;
  user_code: string;
  /** pending | approved | denied | redeemed */
  status: string;
  user_id: string | null;
  client_name: string;
  client_ip: string;
  code_challenge: string | null;
  expires_at: string;
  created_at: string;
  last_polled_at: string | null;
}

/** Who a person is at an external provider (added by 0008_external_identities): one row per (issuer, subject). */
export interface ExternalIdentitiesTable {
  id: string;
  user_id: string;
  /** OIDC `iss` (GitHub: its web base; SAML: the IdP's entity id). */
  issuer: string;
  /** OIDC `sub` (GitHub: the user id; SAML: the NameID). */
  subject: string;
  /** Name of the provider record the link was made through. */
  provider: string;
  /** The email the provider sent when the link was made. */
  email: string;
  created_at: string;
}

export interface ChangesTable {
  /** INTEGER AUTOINCREMENT on SQLite, BIGSERIAL on PostgreSQL (parsed to a JS number). */
  revision: Generated<number>;
  entity: string;
  entity_id: string;
  op: string;
  at: string;
}

/** Policies (added by 0005_policies_audit): one row per (namespace, name), the newest version. */
export interface PoliciesTable {
  id: string;
  namespace: string;
  name: string;
  version: number;
  /** JSON policy document. */
  document: string;
  created_at: string;
  updated_at: string;
}

export interface PolicyVersionsTable {
  policy_id: string;
  namespace: string;
  name: string;
  version: number;
  /** JSON document, or null for a deletion. */
  document: string | null;
  author: string;
  created_at: string;
}

export interface AuditEventsTable {
  /** INTEGER AUTOINCREMENT on SQLite, BIGSERIAL on PostgreSQL. */
  id: Generated<number>;
  type: string;
  at: string;
  actor: string;
  socket: string;
  client_ip: string;
  country: string;
  decision: string;
  rule: string;
  reason: string;
  connection_id: string;
  session_id: string;
  /** JSON object. */
  details: string;
}

export interface ExportCursorsTable {
  name: string;
  last_id: number;
  updated_at: string;
}

export interface LiveConnectionsTable {
  id: string;
  edge_id: string;
  protocol: string;
  socket: string;
  user_id: string;
  email: string;
  session_id: string;
  client_ip: string;
  country: string;
  started_at: string;
  bytes_up: number;
  bytes_down: number;
  /** What the connection is doing, '' when idle or not known (added by 0017_live_activity). */
  activity: string;
  activity_since: string | null;
  updated_at: string;
}

/** Recordings (added by 0010_recordings): one row per recorded terminal session. */
export interface RecordingsTable {
  id: string;
  connection_id: string;
  session_id: string;
  socket: string;
  email: string;
  login: string;
  kind: string;
  command: string;
  title: string;
  width: number;
  height: number;
  term: string;
  started_at: string;
  ended_at: string | null;
  exit_status: number | null;
  bytes: number;
  /** 1 when events are missing. */
  truncated: number;
  end_reason: string;
  updated_at: string;
}

/** gzip-compressed asciicast event lines (BLOB on SQLite, BYTEA on PostgreSQL). */
export interface RecordingChunksTable {
  recording_id: string;
  seq: number;
  data: Buffer;
  created_at: string;
}

export interface Database extends AgentTables, ServiceTables {
  recordings: RecordingsTable;
  recording_chunks: RecordingChunksTable;
  policies: PoliciesTable;
  policy_versions: PolicyVersionsTable;
  audit_events: AuditEventsTable;
  export_cursors: ExportCursorsTable;
  live_connections: LiveConnectionsTable;
  sockets: SocketsTable;
  connectors: ConnectorsTable;
  join_tokens: JoinTokensTable;
  api_tokens: ApiTokensTable;
  secrets: SecretsTable;
  users: UsersTable;
  sessions: SessionsTable;
  session_grants: SessionGrantsTable;
  handoff_codes: HandoffCodesTable;
  identity_providers: IdentityProvidersTable;
  device_authorizations: DeviceAuthorizationsTable;
  external_identities: ExternalIdentitiesTable;
  changes: ChangesTable;
}

export type StoreDialect = 'sqlite' | 'postgres';

/** Every table the store owns, in an order that is safe to truncate or drop. */
export const storeTables = [
  'sockets',
  'connectors',
  'join_tokens',
  'api_tokens',
  'secrets',
  'handoff_codes',
  'external_identities',
  'session_grants',
  'sessions',
  'users',
  'device_authorizations',
  'identity_providers',
  'policies',
  'policy_versions',
  'audit_events',
  'export_cursors',
  'live_connections',
  'recordings',
  'recording_chunks',
  'agents',
  'agent_join_tokens',
  'agent_issuers',
  'agent_services',
  'changes',
] as const satisfies readonly (keyof Database)[];
