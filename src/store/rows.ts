// Row ↔ record mapping, id generation, timestamp normalization and driver error
// classification for the Kysely store (by error code, never by message text).

import { randomBytes as nodeRandomBytes } from 'node:crypto';
import type { Selectable } from 'kysely';
import { PosternError, errorMessage } from '../errors.js';
import type {
  ApiTokensTable,
  ChangesTable,
  ConnectorsTable,
  HandoffCodesTable,
  JoinTokensTable,
  SessionGrantsTable,
  SessionsTable,
  SocketsTable,
  UsersTable,
} from './schema.js';
import { parseSocketAuth } from './socket-auth.js';
import { parseStringList, parseTagSelector } from './bindings.js';
import { API_TOKEN_SCOPES } from './types.js';
import type {
  ApiTokenRecord,
  ApiTokenRole,
  ApiTokenScope,
  Change,
  ChangeEntity,
  ChangeOp,
  ConnectorRecord,
  HandoffCodeRecord,
  JoinTokenRecord,
  SessionGrantRecord,
  SessionKind,
  SessionRecord,
  SocketRecord,
  SocketType,
  UserRecord,
} from './types.js';

const base32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** `prefix` + 16 lowercase base32 characters (80 random bits). */
export function newId(prefix: string, randomBytes: (size: number) => Uint8Array = nodeRandomBytes): string {
  const bytes = randomBytes(10);
  let out = prefix;
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += base32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

/** Normalizes any parseable time to the canonical ISO-8601 UTC form, so TEXT comparison orders times. */
export function toTimestamp(value: string, field: string): string {
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new PosternError('bad_request', `${field} is not a valid ISO-8601 timestamp`);
  }
  return new Date(ms).toISOString();
}

function parseTags(text: string): Record<string, string> {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'));
    }
  } catch {
    // A damaged tags column reads as no tags rather than failing every read.
  }
  return {};
}

/** A JSON object stored as TEXT, or undefined when the column is damaged (callers pick a safe fallback). */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // Falls through to undefined.
  }
  return undefined;
}

/** A caller-supplied string field; `max` bounds its length, `nonEmpty` refuses ''. */
export function checkString(value: unknown, field: string, options: { nonEmpty?: boolean; max?: number } = {}): string {
  const { max } = options;
  if (typeof value !== 'string' || (max !== undefined && value.length > max)) {
    throw new PosternError('bad_request', max === undefined ? `${field} must be a string` : `${field} must be a string of at most ${max} characters`);
  }
  if (options.nonEmpty === true && value === '') throw new PosternError('bad_request', `${field} must not be empty`);
  return value;
}

export function toSocket(row: Selectable<SocketsTable>): SocketRecord {
  return {
    id: row.id,
    name: row.name,
    type: row.type as SocketType,
    auth: parseSocketAuth(row.auth),
    upstream: row.upstream,
    description: row.description,
    tags: parseTags(row.tags),
    rawPaths: Number(row.raw_paths) === 1,
    connectors: parseStringList(row.connectors),
    recordInput: Number(row.record_input) === 1,
    upstreamHostKey: row.upstream_host_key,
    database: row.database,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function toConnector(row: Selectable<ConnectorsTable>): ConnectorRecord {
  return {
    id: row.id,
    name: row.name,
    certSerial: row.cert_serial,
    certNotAfter: row.cert_not_after,
    lastSeenAt: row.last_seen_at,
    revokedAt: row.revoked_at,
    socketTags: parseTagSelector(row.socket_tags),
    createdAt: row.created_at,
  };
}

export function toJoinToken(row: Selectable<JoinTokensTable>): JoinTokenRecord {
  return {
    id: row.id,
    tokenHash: row.token_hash,
    connectorName: row.connector_name,
    expiresAt: row.expires_at,
    usedAt: row.used_at,
    connectorId: row.connector_id,
    sockets: parseStringList(row.sockets),
    socketTags: parseTagSelector(row.socket_tags),
    createdAt: row.created_at,
  };
}

export function toApiToken(row: Selectable<ApiTokensTable>): ApiTokenRecord {
  return {
    id: row.id,
    name: row.name,
    tokenHash: row.token_hash,
    role: row.role as ApiTokenRole,
    scopes: parseScopes(row.scopes),
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

const knownScopes: ReadonlySet<string> = new Set(API_TOKEN_SCOPES);

/** A damaged scopes column, or a scope this version does not know, grants nothing (fail closed). */
function parseScopes(text: string): ApiTokenScope[] {
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value)) return value.filter((s): s is ApiTokenScope => typeof s === 'string' && knownScopes.has(s));
  } catch {
    // falls through to no scopes
  }
  return [];
}

function parseGroups(text: string): string[] {
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value)) return value.filter((g): g is string => typeof g === 'string');
  } catch {
    // A damaged groups column reads as no groups (grants nothing) rather than failing every read.
  }
  return [];
}

export function toUser(row: Selectable<UsersTable>): UserRecord {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    groups: parseGroups(row.groups),
    passwordHash: row.password_hash,
    disabledAt: row.disabled_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function toSession(row: Selectable<SessionsTable>): SessionRecord {
  return {
    id: row.id,
    userId: row.user_id,
    kind: row.kind as SessionKind,
    provider: row.provider,
    clientIp: row.client_ip,
    userAgent: row.user_agent,
    secretHash: row.secret_hash,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

export function toSessionGrant(row: Selectable<SessionGrantsTable>): SessionGrantRecord {
  return {
    id: row.id,
    sessionId: row.session_id,
    socket: row.socket,
    secretHash: row.secret_hash,
    createdAt: row.created_at,
  };
}

export function toHandoffCode(row: Selectable<HandoffCodesTable>): HandoffCodeRecord {
  return {
    codeHash: row.code_hash,
    sessionId: row.session_id,
    socket: row.socket,
    returnTo: row.return_to,
    expiresAt: row.expires_at,
    usedAt: row.used_at,
  };
}

export function toChange(row: Selectable<ChangesTable>): Change {
  return {
    revision: Number(row.revision),
    entity: row.entity as ChangeEntity,
    entityId: row.entity_id,
    op: row.op as ChangeOp,
    at: row.at,
  };
}

function codeOf(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** SQLite (better-sqlite3) SQLITE_CONSTRAINT_UNIQUE/PRIMARYKEY or PostgreSQL 23505. */
export function isUniqueViolation(err: unknown): boolean {
  const code = codeOf(err);
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}

const transientNodeCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

/** Whether retrying the same operation later may succeed (lock contention, lost connection). */
export function isTransient(err: unknown): boolean {
  const code = codeOf(err);
  if (code === undefined) return false;
  return (
    code.startsWith('SQLITE_BUSY') ||
    code.startsWith('SQLITE_LOCKED') ||
    code.startsWith('08') || // connection exception
    code.startsWith('57P') || // operator intervention (shutdown)
    code === '40001' || // serialization failure
    code === '40P01' || // deadlock
    code === '53300' || // too many connections
    transientNodeCodes.has(code)
  );
}

/** A readable reason even for errors with an empty message (e.g. AggregateError from connect). */
export function describeCause(err: unknown): string {
  const message = errorMessage(err);
  if (message !== '') return message;
  if (err instanceof AggregateError && err.errors.length > 0) return describeCause(err.errors[0]);
  return codeOf(err) ?? 'unknown error';
}

/** Passes PosternErrors through; turns driver errors into typed store errors. */
export function toStoreError(err: unknown, what: string): PosternError {
  if (err instanceof PosternError) return err;
  if (isUniqueViolation(err)) {
    return new PosternError('conflict', `${what}: already exists`, { cause: err });
  }
  return new PosternError('store_unavailable', `${what} failed: ${describeCause(err)}`, {
    cause: err,
    retryable: isTransient(err),
  });
}
