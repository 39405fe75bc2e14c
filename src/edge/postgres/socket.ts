// `postgres` sockets at the edge: the Postern client certificate (verified in the TLS handshake)
// names the person; policy decides on the StartupMessage's database; the startup is rewritten
// (the client's `user` and GUCs dropped, read-only pinned) and carried to the connector, which
// logs in with its own credentials. Every statement is audited; a read-only session has each one
// classified before it is forwarded. Sessions are registered live, so a kill or a policy change
// ends them with a FATAL ErrorResponse the client prints.
import type tls from 'node:tls';
import { evaluate, requestContext } from '../../policy/index.js';
import type { Decision } from '../../policy/index.js';
import type { NewAuditEvent } from '../../reporting/index.js';
import type { SocketRecord, UserRecord } from '../../store/index.js';
import { ResetCode, header } from '../../tunnel/index.js';
import type { MuxStream } from '../../tunnel/index.js';
import { isPosternError } from '../../errors.js';
import { certificateFacts, decidingRule, denialDetail, newConnectionId } from '../access.js';
import type { CertificateFacts, ConnectionHandlerOptions } from '../access.js';
import type { Verdict } from '../live-registry.js';
import { PgDecoder, PgProtocolError, SqlState, commandTagRows, decodeFrontend, encodeBackend, encodeFrontend, encodeStartup, errorResponse } from '../../pgwire/index.js';
import type { PgPacket, StartupPacket, TransactionStatus } from '../../pgwire/index.js';
import { readOnlyVerdict } from './classify.js';
import type { StatementClass } from './classify.js';

/** Client startup parameters carried upstream; `options` and every other GUC are dropped (they could lift read-only or pick a role). */
const CARRIED_PARAMETERS = ['application_name', 'client_encoding', 'DateStyle', 'TimeZone', 'extra_float_digits'];
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

interface Who {
  readonly cert: CertificateFacts;
  readonly email: string;
  readonly clientIp: string;
  readonly country: string;
}

/** The upstream startup for an admitted session: database, the carried parameters, read-only pinned. */
export function upstreamStartup(parameters: Readonly<Record<string, string>>, database: string, readOnly: boolean): StartupPacket {
  const carried = Object.fromEntries(CARRIED_PARAMETERS.filter((name) => parameters[name] !== undefined).map((name) => [name, parameters[name]!]));
  // `user` is a placeholder: the connector replaces it with the role its configuration logs in as.
  return {
    type: 'StartupMessage', major: 3, minor: 0,
    parameters: { user: 'postern', database, ...carried, ...(readOnly ? { default_transaction_read_only: 'on' } : {}) },
  };
}

export class PostgresSockets {
  constructor(private readonly options: ConnectionHandlerOptions) {}

  /** Runs the PostgreSQL protocol on a verified TLS connection for `record`. */
  accept(socket: tls.TLSSocket, record: SocketRecord): void {
    const cert = certificateFacts(socket);
    const clientIp = this.options.clientIp(socket);
    const who: Who = { cert, email: cert.email ?? '', clientIp, country: this.options.geo?.country(clientIp) ?? '' };
    new PostgresSession(this.options, socket, record.name, who).start();
  }
}

interface InFlight {
  readonly sql: string;
  readonly kind: 'query' | 'execute';
  readonly started: number;
  /** Finished by the ReadyForQuery with this ordinal at the latest. */
  readonly sync: number;
  rows?: number;
  error?: string;
  done?: boolean;
}

class PostgresSession {
  readonly #id = newConnectionId();
  readonly #counters = { bytesUp: 0, bytesDown: 0 };
  #stream: MuxStream | undefined;
  #database = '';
  #clientUser = '';
  #readOnly = false;
  #rule = '';
  #userId = '';
  #started = new Date();
  #ended = false;
  #status: TransactionStatus = 'I';
  /** Client messages are handled one at a time, in order: classification is asynchronous. */
  #work: Promise<void> = Promise.resolve();
  /** ReadyForQuery answers expected (the startup's, each Query's, each Sync's) and received. */
  #syncsSent = 1;
  #readyReceived = 0;
  #whenIdle: (() => void)[] = [];
  #inFlight: InFlight[] = [];
  /** Extended protocol: after a refused message, everything up to Sync is dropped, as PostgreSQL does. */
  #skipToSync = false;
  readonly #prepared = new Map<string, StatementClass>();
  readonly #statementText = new Map<string, string>();
  readonly #portalStatement = new Map<string, string>();
  #backendKey: Buffer | undefined;
  #lastRefusal: { message: string; sqlstate: string } | undefined;

  constructor(
    private readonly options: ConnectionHandlerOptions,
    private readonly client: tls.TLSSocket,
    private readonly socketName: string,
    private readonly who: Who,
  ) {}

  start(): void {
    const frontend = new PgDecoder({ side: 'frontend' }, {
      startup: (packet) => this.#onStartup(packet),
      message: (packet) => {
        this.#work = this.#work.then(() => this.#onClientMessage(packet)).catch((err: unknown) => this.#fail(err));
      },
    });
    this.client.setNoDelay(true);
    this.client.on('data', (chunk: Buffer) => {
      this.#counters.bytesUp += chunk.length;
      try {
        frontend.push(chunk);
      } catch (err) {
        this.#fail(err);
      }
    });
    this.client.on('close', () => this.#closed('client closed'));
    this.client.on('error', () => this.client.destroy());
  }

  #audit(event: Omit<NewAuditEvent, 'actor' | 'socket' | 'clientIp' | 'country' | 'sessionId'>): void {
    this.options.audit({
      actor: this.who.email, socket: this.socketName, clientIp: this.who.clientIp, country: this.who.country, sessionId: this.who.cert.sessionId ?? '', ...event,
      details: { protocol: 'postgres', database: this.#database, user: this.#clientUser, ...event.details },
    });
  }

  #onStartup(packet: StartupPacket): void {
    // Already inside TLS: a second encryption request is answered "no" and the client goes on.
    if (packet.type === 'SSLRequest' || packet.type === 'GSSENCRequest') return void this.client.write('N');
    if (packet.type === 'CancelRequest') return void this.client.destroy();
    this.#clientUser = packet.parameters.user ?? '';
    this.#database = packet.parameters.database ?? this.#clientUser;
    const { verdict, user, decision, readOnly } = this.#decide();
    if (!verdict.keep || !user || !decision) {
      const reason = verdict.keep ? 'no active user' : verdict.reason;
      this.#audit({ type: 'access.denied', decision: 'deny', reason, rule: verdict.rule ?? '' });
      this.options.logger.info({ socket: this.socketName, database: this.#database, reason }, 'postgres session refused');
      this.#ended = true;
      return void this.client.end(errorResponse({ severity: 'FATAL', code: SqlState.invalidAuthorization, message: `postern: ${reason}` }));
    }
    this.#readOnly = readOnly;
    this.#rule = verdict.rule ?? '';
    this.#userId = user.id;
    this.#open(encodeStartup(upstreamStartup(packet.parameters, this.#database, this.#readOnly)), verdict);
  }

  /** Decides this session against the current snapshot: active user, live sign-in, a policy allowing the database. */
  #decide(): { verdict: Verdict; user?: UserRecord; decision?: Decision; readOnly: boolean } {
    const { cert } = this.who;
    const view = this.options.view();
    const record = view.socket(this.socketName);
    if (!record || record.type !== 'postgres') return { verdict: { keep: false, reason: `socket "${this.socketName}" no longer exists` }, readOnly: true };
    if (!cert.email) return { verdict: { keep: false, reason: 'no user certificate' }, readOnly: true };
    const user = view.userByEmail(cert.email);
    if (!user || user.disabledAt) return { verdict: { keep: false, reason: `${cert.email} is not an active user` }, readOnly: true };
    if (cert.sessionId !== undefined && !view.sessionLive(cert.sessionId)) {
      return { verdict: { keep: false, reason: `the sign-in of ${cert.email} this certificate was issued under has ended` }, user, readOnly: true };
    }
    const policies = view.policies();
    const contextFor = (write: boolean) => requestContext({ socket: record, user, clientIp: this.who.clientIp, country: this.who.country || undefined, at: this.options.now(), action: { protocol: 'database', database: this.#database, write } });
    // A session may write when a rule allows writing; else it may read when a rule allows that (read-only rules included).
    const writing = evaluate(contextFor(true), policies);
    const context = contextFor(false);
    const decision = writing.effect === 'allow' ? writing : evaluate(context, policies);
    const rule = decidingRule(decision);
    if (decision.effect === 'deny') return { verdict: { keep: false, reason: denialDetail(context, policies, decision), rule }, user, decision, readOnly: writing.effect !== 'allow' };
    // A live session admitted read-write must not go on once a policy makes it read-only.
    if (this.#stream && writing.effect === 'deny' && !this.#readOnly) return { verdict: { keep: false, reason: `${rule || 'a policy'} now makes ${this.#database} read-only`, rule }, user, decision, readOnly: true };
    return { verdict: { keep: true, rule, ...(decision.recheckAt ? { recheckAt: decision.recheckAt } : {}) }, user, decision, readOnly: writing.effect !== 'allow' };
  }

  #open(startup: Buffer, verdict: Verdict): void {
    let stream: MuxStream;
    try {
      stream = this.options.hub.openStream(this.socketName, { [header.socket]: this.socketName, [header.kind]: 'tcp', [header.clientIp]: this.who.clientIp });
    } catch (err) {
      const reason = isPosternError(err) ? err.message : 'the tunnel could not be opened';
      this.#ended = true;
      return void this.client.end(errorResponse({ severity: 'FATAL', code: '08006', message: `postern: ${reason}` }));
    }
    this.#stream = stream;
    this.#started = this.options.now();
    const backend = new PgDecoder({ side: 'backend' }, { message: (packet) => this.#onServerMessage(packet) });
    let failure: string | undefined;
    stream.once('response', (headers) => {
      if (headers[header.error]) failure = '';
    });
    stream.on('data', (chunk: Buffer) => {
      if (failure !== undefined) return void (failure += chunk.toString('utf8'));
      this.#counters.bytesDown += chunk.length;
      try {
        backend.push(chunk);
      } catch (err) {
        this.#fail(err);
      }
    });
    stream.on('end', () => {
      if (failure !== undefined) return this.#end(errorResponse({ severity: 'FATAL', code: '08006', message: `postern: ${failure || 'the database could not be reached'}` }));
      if (!this.client.destroyed) this.client.end();
    });
    stream.on('error', () => this.client.destroy());
    stream.on('close', () => {
      if (stream.resetCode !== undefined && !this.#ended) this.client.destroy();
    });
    stream.write(startup);
    this.#audit({ type: 'db.session.start', decision: 'allow', rule: this.#rule, connectionId: this.#id, details: { readOnly: this.#readOnly } });
    this.options.live.add({
      id: this.#id, protocol: 'postgres', socket: this.socketName, userId: this.#userId, email: this.who.email, sessionId: this.who.cert.sessionId ?? '',
      clientIp: this.who.clientIp, country: this.who.country, startedAt: this.#started, counters: this.#counters,
      decide: () => this.#decide().verdict,
      close: (reason) => this.#end(errorResponse({ severity: 'FATAL', code: SqlState.adminShutdown, message: `postern: session ended: ${reason}` }), true),
    }, verdict.keep ? verdict.recheckAt : undefined);
  }

  #forward(packet: PgPacket): void {
    this.#stream?.write(packet.raw);
  }

  async #onClientMessage(packet: PgPacket): Promise<void> {
    if (this.#ended || !this.#stream) return;
    if (this.#skipToSync) {
      if (packet.type !== 'S') return;
      this.#skipToSync = false;
      return this.#answer(encodeBackend({ type: 'ReadyForQuery', status: this.#status }));
    }
    const message = decodeFrontend(packet);
    switch (message.type) {
      case 'Query': {
        if (!(await this.#allowed(message.sql))) return this.#answerRefusal();
        this.#inFlight.push({ sql: message.sql, kind: 'query', started: performance.now(), sync: ++this.#syncsSent });
        break;
      }
      case 'Parse': {
        if (!(await this.#allowed(message.sql, message.name))) return void (this.#skipToSync = true);
        this.#statementText.set(message.name, message.sql);
        break;
      }
      case 'Bind':
        this.#portalStatement.set(message.portal, message.statement);
        break;
      case 'Execute': {
        const sql = this.#statementText.get(this.#portalStatement.get(message.portal) ?? '') ?? '';
        this.#inFlight.push({ sql, kind: 'execute', started: performance.now(), sync: this.#syncsSent + 1 });
        break;
      }
      case 'Sync':
        this.#syncsSent++;
        break;
      case 'FunctionCall':
        if (this.#readOnly) {
          await this.#refuse(`function call by OID ${message.functionOid}`, 'a fast-path function call can write', SqlState.insufficientPrivilege);
          return this.#answer(encodeBackend({ type: 'ReadyForQuery', status: this.#status }));
        }
        this.#syncsSent++;
        break;
      case 'Terminate':
        this.#forward(packet);
        this.#ended = true;
        this.#stream.end();
        return void this.client.end();
      default:
        break;
    }
    this.#forward(packet);
  }

  /** Read-only sessions: whether `sql` may run; a refusal is answered and audited here. Remembers what a Parse or PREPARE names. */
  async #allowed(sql: string, parseName?: string): Promise<boolean> {
    if (!this.#readOnly) return true;
    const verdict = await readOnlyVerdict(sql, { prepared: this.#prepared });
    if (!verdict.allow) {
      await this.#refuse(sql, verdict.reason, verdict.sqlstate, parseName === undefined);
      return false;
    }
    for (const statement of verdict.statements) if (statement.prepares !== undefined) this.#prepared.set(statement.prepares, statement);
    if (parseName !== undefined && verdict.statements[0]) this.#prepared.set(parseName, verdict.statements[0]);
    return true;
  }

  /** The message a refused statement is answered with. */
  #refusal(reason: string): string {
    return `postern: ${reason} (read-only by ${this.#rule || 'policy'})`;
  }

  /** `simpleQuery`: the refusal of a Query, which #answerRefusal ends (the extended protocol ends it at Sync). */
  async #refuse(sql: string, reason: string, sqlstate: string, simpleQuery = false): Promise<void> {
    this.#audit({ type: 'db.query', decision: 'deny', rule: this.#rule, reason, connectionId: this.#id, details: { statement: sql, error: sqlstate } });
    this.#lastRefusal = { message: this.#refusal(reason), sqlstate };
    // Inside a transaction block the upstream itself fails the statement (below), so the block is aborted as PostgreSQL would abort it.
    if (!simpleQuery || this.#status !== 'T') await this.#answer(errorResponse({ severity: 'ERROR', code: sqlstate, message: this.#refusal(reason) }));
  }

  /** Ends a refused simple Query: ReadyForQuery outside a transaction block; inside one, a DO that raises the refusal upstream. */
  async #answerRefusal(): Promise<void> {
    const refusal = this.#lastRefusal;
    if (this.#status !== 'T' || !refusal) return this.#answer(encodeBackend({ type: 'ReadyForQuery', status: this.#status }));
    const literal = refusal.message.replace(/\$/g, '').replace(/'/g, "''");
    this.#syncsSent++;
    this.#stream?.write(encodeFrontend({ type: 'Query', sql: `DO $postern$BEGIN RAISE EXCEPTION USING ERRCODE = '${refusal.sqlstate}', MESSAGE = '${literal}'; END$postern$` }));
  }

  /** Writes the edge's own answer once every earlier message has been answered upstream, so replies stay in order. */
  async #answer(bytes: Buffer): Promise<void> {
    if (this.#syncsSent > this.#readyReceived) await new Promise<void>((resolve) => this.#whenIdle.push(resolve));
    if (!this.#ended) this.client.write(bytes);
  }

  #onServerMessage(packet: PgPacket): void {
    const head = this.#inFlight.find((q) => !q.done);
    switch (packet.type) {
      case 'K': this.#backendKey = packet.payload; break;
      case 'C': {
        const rows = commandTagRows(packet.payload.toString('utf8', 0, packet.payload.length - 1));
        if (head && rows !== undefined) head.rows = (head.rows ?? 0) + rows;
        if (head?.kind === 'execute') this.#finish(head);
        break;
      }
      case 'E': {
        if (head) {
          head.error = errorCode(packet.payload);
          if (head.kind === 'execute') this.#finish(head);
        }
        break;
      }
      case 'I': case 's':
        if (head?.kind === 'execute') this.#finish(head);
        break;
      case 'Z': {
        this.#readyReceived++;
        this.#status = String.fromCharCode(packet.payload[0]!) as TransactionStatus;
        for (const q of this.#inFlight) if (!q.done && q.sync <= this.#readyReceived) this.#finish(q);
        this.#inFlight = this.#inFlight.filter((q) => !q.done);
        if (this.#readyReceived >= this.#syncsSent) for (const resolve of this.#whenIdle.splice(0)) resolve();
        break;
      }
      default: break;
    }
    // Once ended (a kill), the client has its last words; what the cancelled upstream still says is not for it.
    if (this.#ended) return;
    if (!this.client.write(packet.raw)) {
      this.#stream?.pause();
      this.client.once('drain', () => this.#stream?.resume());
    }
  }

  #finish(q: InFlight): void {
    q.done = true;
    this.#audit({
      type: 'db.query', decision: 'allow', rule: this.#rule, connectionId: this.#id,
      details: { statement: q.sql, durationMs: Math.round((performance.now() - q.started) * 1000) / 1000, ...(q.rows !== undefined ? { rows: q.rows } : {}), ...(q.error ? { error: q.error } : {}) },
    });
  }

  #fail(err: unknown): void {
    if (err instanceof PgProtocolError) return this.#end(errorResponse({ severity: 'FATAL', code: SqlState.protocolViolation, message: `postern: ${err.message}` }));
    this.options.logger.warn({ err, socket: this.socketName }, 'postgres session failed');
    this.#end(errorResponse({ severity: 'FATAL', code: 'XX000', message: 'postern: internal error' }));
  }

  /** Ends the session: the client is told why; a running statement is cancelled upstream (pg_sleep ignores a closed socket). */
  #end(lastWords: Buffer, cancel = false): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const resolve of this.#whenIdle.splice(0)) resolve();
    if (cancel && this.#backendKey && this.#readyReceived < this.#syncsSent) this.#cancelUpstream(this.#backendKey);
    if (this.#stream && !this.#stream.destroyed) {
      this.#stream.write(TERMINATE);
      this.#stream.end();
    }
    this.client.end(lastWords);
    const timer = setTimeout(() => this.client.destroy(), 2_000);
    timer.unref();
  }

  /** A CancelRequest on a stream of its own; the connector passes it to the upstream as it is. */
  #cancelUpstream(backendKey: Buffer): void {
    try {
      const stream = this.options.hub.openStream(this.socketName, { [header.socket]: this.socketName, [header.kind]: 'tcp', [header.clientIp]: this.who.clientIp });
      stream.on('error', () => undefined);
      stream.end(encodeStartup({ type: 'CancelRequest', processId: backendKey.readInt32BE(0), secretKey: backendKey.subarray(4) }));
    } catch (err) {
      this.options.logger.info({ err, socket: this.socketName }, 'postgres cancel not sent');
    }
  }

  #closed(reason: string): void {
    if (this.#stream && !this.#stream.destroyed && !this.#stream.writableEnded) this.#stream.reset(ResetCode.cancel);
    if (!this.#stream) return;
    this.#audit({ type: 'db.session.end', connectionId: this.#id, reason, details: { bytesUp: this.#counters.bytesUp, bytesDown: this.#counters.bytesDown, durationMs: this.options.now().getTime() - this.#started.getTime() } });
    this.options.live.closed(this.#id, reason);
  }
}

/** The SQLSTATE (`C` field) of an ErrorResponse payload. */
function errorCode(payload: Buffer): string {
  for (let at = 0; at < payload.length && payload[at] !== 0;) {
    const end = payload.indexOf(0, at + 1);
    if (end < 0) break;
    if (payload[at] === 0x43) return payload.toString('utf8', at + 1, end);
    at = end + 1;
  }
  return '';
}
