// The audit trail's one vocabulary: event types named noun.verb, defined once here and used by
// the edge, the control plane, the exporters and the CLI. Events are append-only; each gets a
// monotonic id in the store, which exporters use as their resume cursor.

export const AUDIT_EVENT_TYPES = [
  'session.start',
  'session.end',
  'login.failed',
  'access.allowed',
  'access.denied',
  /** Observe mode: allowed only because what denies it is a policy in observe mode (rule and reason say which, and why). */
  'access.would_deny',
  /** A denial owned by a policy that recently left observe mode (its alarm_until has not passed): traffic it starts refusing. */
  'access.alarm',
  'connection.open',
  'connection.close',
  'connection.killed',
  /** The agents' mesh: a service→service connection the receiving agent admitted (both identities, both agents, the rule); `details.agent` is the agent that reported it. */
  'flow.open',
  /** The end of a mesh flow: bytes each way, duration, and why it ended (a peer closed, re-decided and denied, agent revoked). */
  'flow.close',
  'http.request',
  'admin.change',
  /** The edge refused to route a socket to a connector that announced it (not bound, unknown, wrong type). */
  'connector.socket_refused',
  /** A recording reached its size cap: the session goes on, unrecorded from there. */
  'recording.truncated',
  /** Part of a recording was dropped: the store could not keep up. */
  'recording.dropped',
  /** Managed SSH: a login was allowed and carried to the upstream (ends with ssh.session.end, recordings listed). */
  'ssh.session.start',
  'ssh.session.end',
  /** PostgreSQL sockets: a session admitted at startup (ends with db.session.end); db.query per statement, refusals included. */
  'db.session.start',
  'db.session.end',
  'db.query',
  /** A client's CancelRequest matched a session's cancel key: the statement it names was cancelled upstream. */
  'db.cancel',
  /** A command ran (its exit status and recording). */
  'ssh.exec',
  /** Legacy scp (`scp -O`); modern scp shows as ssh.sftp.* operations. */
  'ssh.scp',
  'ssh.sftp.open',
  'ssh.sftp.read',
  'ssh.sftp.write',
  'ssh.sftp.remove',
  'ssh.sftp.rename',
  'ssh.sftp.mkdir',
  'ssh.sftp.rmdir',
  'ssh.forward.local',
  'ssh.forward.remote',
  /** The session forwards the user's ssh agent to the upstream. */
  'ssh.forward.agent',
] as const;

export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export type AuditDecision = 'allow' | 'deny';

/** What the recorder hands to the store (id and time are assigned there unless given). */
export interface NewAuditEvent {
  readonly type: AuditEventType;
  /** ISO 8601; defaults to the store's clock. */
  readonly at?: string;
  /** Email of the person (or service id) the event is about; '' when unknown. */
  readonly actor?: string;
  readonly socket?: string;
  readonly clientIp?: string;
  readonly country?: string;
  readonly decision?: AuditDecision;
  /** The deciding rule (`namespace/policy#rule`) when a policy decided. */
  readonly rule?: string;
  /** One line a person reads. */
  readonly reason?: string;
  /** The live connection or sign-in session the event belongs to. */
  readonly connectionId?: string;
  readonly sessionId?: string;
  /** Event-specific fields (bytes, method, path, status, before/after of an admin change…). */
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface AuditEvent extends Required<Omit<NewAuditEvent, 'details'>> {
  readonly id: number;
  readonly details: Readonly<Record<string, unknown>>;
}

export interface AuditQuery {
  /** Events with an id greater than this (the resume cursor). */
  readonly afterId?: number;
  readonly actor?: string;
  readonly socket?: string;
  readonly type?: AuditEventType;
  readonly decision?: AuditDecision;
  /** ISO 8601 bounds on `at`: since inclusive, until exclusive. */
  readonly since?: string;
  readonly until?: string;
  /** Default 100, at most 1000. Results are in id order (oldest first). */
  readonly limit?: number;
}
