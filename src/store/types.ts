// The store's narrow contract: typed records, repositories per entity, and a change log
// with a monotonic revision that every mutation appends to (the change feed reads it).

export type SocketType = 'http' | 'https' | 'tls';

export interface SocketRecord {
  readonly id: string;
  readonly name: string;
  readonly type: SocketType;
  /** What the owner said the upstream is; connectors dial only what their own config names. */
  readonly upstream: string | null;
  readonly description: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface NewSocket {
  name: string;
  type: SocketType;
  upstream?: string | null;
  description?: string;
  tags?: Record<string, string>;
}

export type SocketPatch = Partial<Omit<NewSocket, 'name'>>;

export interface ConnectorRecord {
  readonly id: string;
  readonly name: string;
  readonly certSerial: string | null;
  readonly certNotAfter: string | null;
  readonly lastSeenAt: string | null;
  readonly revokedAt: string | null;
  readonly createdAt: string;
}

export interface JoinTokenRecord {
  readonly id: string;
  readonly tokenHash: string;
  readonly connectorName: string;
  readonly expiresAt: string;
  readonly usedAt: string | null;
  readonly connectorId: string | null;
  readonly createdAt: string;
}

export type ApiTokenRole = 'admin' | 'service';

export interface ApiTokenRecord {
  readonly id: string;
  readonly name: string;
  readonly tokenHash: string;
  readonly role: ApiTokenRole;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  readonly revokedAt: string | null;
}

export type ChangeEntity = 'socket' | 'connector' | 'join_token' | 'api_token' | 'secret';
export type ChangeOp = 'create' | 'update' | 'delete';

export interface Change {
  readonly revision: number;
  readonly entity: ChangeEntity;
  readonly entityId: string;
  readonly op: ChangeOp;
  readonly at: string;
}

export interface SocketRepo {
  list(): Promise<SocketRecord[]>;
  get(name: string): Promise<SocketRecord | undefined>;
  /** Throws PosternError('conflict') when the name is taken. */
  create(input: NewSocket): Promise<SocketRecord>;
  /** Throws PosternError('not_found') when absent. */
  update(name: string, patch: SocketPatch): Promise<SocketRecord>;
  /** Throws PosternError('not_found') when absent. */
  delete(name: string): Promise<void>;
}

export interface ConnectorRepo {
  list(): Promise<ConnectorRecord[]>;
  get(id: string): Promise<ConnectorRecord | undefined>;
  create(input: { name: string }): Promise<ConnectorRecord>;
  recordCertificate(id: string, serial: string, notAfter: string): Promise<void>;
  touch(id: string, at: string): Promise<void>;
  revoke(id: string, at: string): Promise<void>;
  delete(id: string): Promise<void>;
}

export interface JoinTokenRepo {
  create(input: { tokenHash: string; connectorName: string; expiresAt: string }): Promise<JoinTokenRecord>;
  list(): Promise<JoinTokenRecord[]>;
  /**
   * Atomically marks the token used by `connectorId`. Throws PosternError with code
   * 'token_invalid' (unknown hash), 'token_used' (already consumed) or 'token_expired'.
   */
  consume(tokenHash: string, connectorId: string, at: string): Promise<JoinTokenRecord>;
  delete(id: string): Promise<void>;
}

export interface ApiTokenRepo {
  create(input: { name: string; tokenHash: string; role: ApiTokenRole }): Promise<ApiTokenRecord>;
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

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly sockets: SocketRepo;
  readonly connectors: ConnectorRepo;
  readonly joinTokens: JoinTokenRepo;
  readonly apiTokens: ApiTokenRepo;
  readonly secrets: SecretRepo;
  migrate(): Promise<void>;
  currentRevision(): Promise<number>;
  changesSince(revision: number, limit?: number): Promise<Change[]>;
  /** Called after every committed mutation in this process (the feed polls at once). */
  onLocalChange(listener: () => void): () => void;
  close(): Promise<void>;
}
