// `postgres` sockets at the edge: the Postern client certificate (verified in the TLS handshake)
// names the person; policy decides on the StartupMessage's database; the startup is rewritten
// (the client's `user` and GUCs dropped, read-only pinned) and carried to the connector, which
// logs in with its own credentials. Every statement is audited; a read-only session has each one
// classified before it is forwarded. Sessions are registered live, so a kill or a policy change
// ends them with a FATAL ErrorResponse the client prints. Each session is recorded as a
// transcript (transcript.ts), shows its current statement in the live list, and hands the client a
// cancel key of the edge's own (cancel-keys.ts), mapped to the upstream's. This file is the
// session's flow; the decision is decide.ts, the statements' bookkeeping statements.ts.
import type tls from 'node:tls';
import type { NewAuditEvent, RecordingSink } from '../../reporting/index.js';
import type { SocketRecord } from '../../store/index.js';
import { ResetCode, header } from '../../tunnel/index.js';
import type { MuxStream } from '../../tunnel/index.js';
import { isPosternError } from '../../errors.js';
import { certificateFacts, newConnectionId } from '../access.js';
import type { ConnectionHandlerOptions } from '../access.js';
import type { Verdict } from '../live-registry.js';
import { PgDecoder, PgProtocolError, SqlState, askedRole, decodeFrontend, encodeBackend, encodeFrontend, encodeStartup, errorResponse } from '../../pgwire/index.js';
import type { PgPacket, StartupPacket, TransactionStatus } from '../../pgwire/index.js';
import { readOnlyVerdict } from './classify.js';
import type { StatementClass } from './classify.js';
import { decideSession } from './decide.js';
import type { SessionDecision, Who } from './decide.js';
import { sessionDatabase, upstreamStartup } from './startup.js';
import { StatementTracker, errorField } from './statements.js';
import type { FinishedStatement } from './statements.js';
import { CancelKeys } from './cancel-keys.js';
import type { CancelKey } from './cancel-keys.js';
import { startTranscript } from './transcript.js';
import type { SessionTranscript } from './transcript.js';

const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

export interface PostgresSocketOptions extends ConnectionHandlerOptions {
  /** Where session transcripts go (the same sink as SSH recordings). */
  readonly recordings: RecordingSink;
  readonly cancelKeys?: CancelKeys;
}

type SessionOptions = PostgresSocketOptions & { readonly cancelKeys: CancelKeys };

export class PostgresSockets {
  readonly #options: SessionOptions;

  constructor(options: PostgresSocketOptions) {
    this.#options = { ...options, cancelKeys: options.cancelKeys ?? new CancelKeys() };
  }

  /** Runs the PostgreSQL protocol on a verified TLS connection for `record`. */
  accept(socket: tls.TLSSocket, record: SocketRecord): void {
    const cert = certificateFacts(socket);
    const clientIp = this.#options.clientIp(socket);
    const who: Who = { cert, email: cert.email ?? '', clientIp, country: this.#options.geo?.country(clientIp) ?? '' };
    new PostgresSession(this.#options, socket, record.name, who).start();
  }

  /**
   * A CancelRequest that arrived in the clear on the edge's port (libpq sends it so, on a fresh
   * connection, without TLS or SNI): the key alone says which session. Unknown keys are ignored,
   * as PostgreSQL ignores them.
   */
  cancel(processId: number, secretKey: Buffer, clientIp: string): void {
    const found = this.#options.cancelKeys.cancel(processId, secretKey);
    if (!found) this.#options.logger.info({ clientIp }, 'postgres cancel request with an unknown key ignored');
  }
}

class PostgresSession {
  readonly #id = newConnectionId();
  readonly #counters = { bytesUp: 0, bytesDown: 0 };
  #stream: MuxStream | undefined;
  #database = '';
  #clientUser = '';
  /** The role the client asked for (`-c postern.role=…`), the one policy decided, and the upstream session's own (its session_authorization). */
  #askedRole: string | undefined;
  #decidedRole: string | undefined;
  #role = '';
  /** Set at the upstream's first ReadyForQuery; until then an ErrorResponse is the login's refusal. */
  #loggedIn = false;
  #loginError: string | undefined;
  #readOnly = false;
  #rule = '';
  #userId = '';
  #started = new Date();
  #ended = false;
  #status: TransactionStatus = 'I';
  /** Client messages are handled one at a time, in order: classification is asynchronous. */
  #work: Promise<void> = Promise.resolve();
  readonly #statements = new StatementTracker({ now: () => this.options.now(), finished: (statement) => this.#finished(statement) });
  /** Extended protocol: after a refused message, everything up to Sync is dropped, as PostgreSQL does. */
  #skipToSync = false;
  readonly #prepared = new Map<string, StatementClass>();
  readonly #statementText = new Map<string, string>();
  readonly #portalStatement = new Map<string, string>();
  #backendKey: Buffer | undefined;
  /** The key this client was given instead of the upstream's. */
  #edgeKey: CancelKey | undefined;
  #lastRefusal: { message: string; sqlstate: string } | undefined;
  /** The upstream's is_superuser at login: psql's prompt in the transcript. */
  #superuser = false;
  #transcript: SessionTranscript | undefined;

  constructor(
    private readonly options: SessionOptions,
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
    // EOF from the client ends its session, as PostgreSQL reads it (psql killed mid-COPY sends no Terminate): #closed then resets the stream.
    this.client.on('end', () => this.client.end());
    this.client.on('close', () => this.#closed('client closed'));
    this.client.on('error', () => this.client.destroy());
  }

  #audit(event: Omit<NewAuditEvent, 'actor' | 'socket' | 'clientIp' | 'country' | 'sessionId'>): void {
    this.options.audit({
      actor: this.who.email, socket: this.socketName, clientIp: this.who.clientIp, country: this.who.country, sessionId: this.who.cert.sessionId ?? '', ...event,
      details: {
        protocol: 'postgres', database: this.#database, user: this.#clientUser,
        ...(this.#role ? { role: this.#role } : {}), ...(this.#askedRole !== undefined ? { askedRole: this.#askedRole } : {}), ...event.details,
      },
    });
  }

  #onStartup(packet: StartupPacket): void {
    // Already inside TLS: a second encryption request is answered "no" and the client goes on.
    if (packet.type === 'SSLRequest' || packet.type === 'GSSENCRequest') return void this.client.write('N');
    if (packet.type === 'CancelRequest') return this.#cancelRequest(packet.processId, packet.secretKey);
    this.#clientUser = packet.parameters.user ?? '';
    this.#database = sessionDatabase(packet.parameters, this.options.view().socket(this.socketName)?.database ?? null);
    this.#askedRole = askedRole(packet.parameters);
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
    this.#decidedRole = decision.databaseRole;
    this.#role = decision.databaseRole ?? '';
    this.#open(encodeStartup(upstreamStartup(packet.parameters, this.#database, this.#readOnly, this.#decidedRole)), verdict);
  }

  /** Decides this session against the current snapshot; once it runs, as what it was admitted as. */
  #decide(): SessionDecision {
    const admitted = this.#stream ? { admitted: { readOnly: this.#readOnly, role: this.#decidedRole } } : {};
    return decideSession({ socket: this.socketName, who: this.who, database: this.#database, askedRole: this.#askedRole, ...admitted }, this.options.view(), this.options.now());
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
      // The messages of one chunk (RowDescription, DataRows, CommandComplete, ReadyForQuery) leave in one TLS write, not one each.
      this.client.cork();
      try {
        backend.push(chunk);
      } catch (err) {
        this.#fail(err);
      } finally {
        this.client.uncork();
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
    this.options.live.add({
      id: this.#id, protocol: 'postgres', socket: this.socketName, userId: this.#userId, email: this.who.email, sessionId: this.who.cert.sessionId ?? '',
      clientIp: this.who.clientIp, country: this.who.country, startedAt: this.#started, counters: this.#counters,
      decide: () => this.#decide().verdict,
      activity: () => this.#statements.activity(this.#started),
      close: (reason) => this.#end(errorResponse({ severity: 'FATAL', code: SqlState.adminShutdown, message: `postern: session ended: ${reason}` }), true),
    }, verdict.keep ? verdict.recheckAt : undefined);
  }

  #forward(packet: PgPacket): void {
    this.#stream?.write(packet.raw);
  }

  /** A CancelRequest routed here by SNI (`postern client db` relays psql's): only a key of a session on this socket counts. */
  #cancelRequest(processId: number, secretKey: Buffer): void {
    this.#ended = true;
    this.client.end();
    if (!this.options.cancelKeys.cancel(processId, secretKey, this.socketName)) {
      this.options.logger.info({ socket: this.socketName, clientIp: this.who.clientIp }, 'postgres cancel request with an unknown key ignored');
    }
  }

  /** The statement `sql` is sent upstream: it is running, and the transcript shows its prompt line. */
  #starting(sql: string, kind: 'query' | 'execute'): void {
    if (kind === 'query') this.#statements.query(sql);
    else this.#statements.execute(sql);
    this.#transcript?.statement(sql, this.#status);
    this.options.live.activityChanged(this.#id);
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
        this.#starting(message.sql, 'query');
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
        this.#starting(this.#statementText.get(this.#portalStatement.get(message.portal) ?? '') ?? '', 'execute');
        break;
      }
      case 'Sync':
        this.#statements.expectReady();
        break;
      case 'CopyData':
        this.#transcript?.copyIn(message.data);
        break;
      case 'FunctionCall':
        if (this.#readOnly) {
          await this.#refuse(`function call by OID ${message.functionOid}`, 'a fast-path function call can write', SqlState.insufficientPrivilege);
          return this.#answer(encodeBackend({ type: 'ReadyForQuery', status: this.#status }));
        }
        this.#statements.expectReady();
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
    this.#transcript?.statement(sql, this.#status);
    // Inside a transaction block the upstream itself fails the statement (below), so the block is aborted as PostgreSQL would abort it.
    if (!simpleQuery || this.#status !== 'T') {
      this.#transcript?.refused({ V: 'ERROR', C: sqlstate, M: this.#refusal(reason) });
      await this.#answer(errorResponse({ severity: 'ERROR', code: sqlstate, message: this.#refusal(reason) }));
    }
  }

  /** Ends a refused simple Query: ReadyForQuery outside a transaction block; inside one, a DO that raises the refusal upstream. */
  async #answerRefusal(): Promise<void> {
    const refusal = this.#lastRefusal;
    if (this.#status !== 'T' || !refusal) return this.#answer(encodeBackend({ type: 'ReadyForQuery', status: this.#status }));
    const literal = refusal.message.replace(/\$/g, '').replace(/'/g, "''");
    this.#statements.expectReady();
    this.#stream?.write(encodeFrontend({ type: 'Query', sql: `DO $postern$BEGIN RAISE EXCEPTION USING ERRCODE = '${refusal.sqlstate}', MESSAGE = '${literal}'; END$postern$` }));
  }

  /** Writes the edge's own answer once every earlier message has been answered upstream, so replies stay in order. */
  async #answer(bytes: Buffer): Promise<void> {
    if (this.#statements.pending) await this.#statements.answered();
    if (!this.#ended) this.client.write(bytes);
  }

  #onServerMessage(packet: PgPacket): void {
    this.#transcript?.fromServer(packet);
    switch (packet.type) {
      case 'K': return this.#handOutKey(packet);
      case 'S': {
        const [name, value] = packet.payload.toString('utf8').split('\0');
        if (name === 'session_authorization' && value) this.#role = value;
        else if (name === 'is_superuser') this.#superuser = value === 'on';
        break;
      }
      case 'E':
        if (!this.#loggedIn) this.#loginError = errorField(packet.payload, 'M');
        break;
      case 'Z':
        if (!this.#loggedIn) {
          this.#loggedIn = true;
          this.#audit({ type: 'db.session.start', decision: 'allow', rule: this.#rule, connectionId: this.#id, details: { readOnly: this.#readOnly } });
          this.#record();
        }
        this.#status = String.fromCharCode(packet.payload[0]!) as TransactionStatus;
        break;
      default: break;
    }
    this.#statements.fromServer(packet);
    // Once ended (a kill), the client has its last words; what the cancelled upstream still says is not for it.
    if (this.#ended) return;
    if (!this.client.write(packet.raw)) {
      this.#stream?.pause();
      this.client.once('drain', () => this.#stream?.resume());
    }
  }

  #finished(statement: FinishedStatement): void {
    this.options.live.activityChanged(this.#id);
    this.#audit({
      type: 'db.query', decision: 'allow', rule: this.#rule, connectionId: this.#id,
      details: { statement: statement.sql, durationMs: statement.durationMs, ...(statement.rows !== undefined ? { rows: statement.rows } : {}), ...(statement.error ? { error: statement.error } : {}) },
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
    // The transcript ends as the client's screen does: with the FATAL message it is sent.
    this.#transcript?.fromServer({ type: 'E', payload: lastWords.subarray(5), raw: lastWords });
    this.#transcript?.end(errorField(lastWords.subarray(5), 'M'));
    this.#statements.release();
    if (cancel && this.#backendKey && this.#statements.pending) this.#cancelUpstream(this.#backendKey);
    if (this.#stream && !this.#stream.destroyed) {
      this.#stream.write(TERMINATE);
      this.#stream.end();
    }
    this.client.end(lastWords);
    const timer = setTimeout(() => this.client.destroy(), 2_000);
    timer.unref();
  }

  /** The upstream's BackendKeyData stays here; the client gets a key of the edge's own (none when the table is full). */
  #handOutKey(packet: PgPacket): void {
    this.#backendKey = packet.payload;
    if (this.#ended) return;
    if (this.#edgeKey) this.options.cancelKeys.release(this.#edgeKey);
    this.#edgeKey = this.options.cancelKeys.issue({ socket: this.socketName, cancel: () => this.#cancelRunning() });
    if (!this.#edgeKey) return this.options.logger.warn({ socket: this.socketName }, 'postgres cancel keys exhausted: this session cannot be cancelled by its client');
    this.client.write(encodeBackend({ type: 'BackendKeyData', ...this.#edgeKey }));
  }

  /** The client's CancelRequest matched this session's key: cancel upstream what runs now, as PostgreSQL would. */
  #cancelRunning(): void {
    if (this.#ended || !this.#backendKey) return;
    this.#audit({ type: 'db.cancel', connectionId: this.#id, reason: 'cancel request from the client', details: { statement: this.#statements.running() ?? '' } });
    this.#cancelUpstream(this.#backendKey);
  }

  /** Starts the session's transcript once the upstream login is done (its role is known then). */
  #record(): void {
    this.#transcript = startTranscript(this.options.recordings, {
      connectionId: this.#id, sessionId: this.who.cert.sessionId, socket: this.socketName, email: this.who.email,
      database: this.#database, role: this.#role, readOnly: this.#readOnly, superuser: this.#superuser, startedAt: this.options.now(),
    });
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
    if (this.#edgeKey) this.options.cancelKeys.release(this.#edgeKey);
    this.#transcript?.end(reason);
    if (this.#stream && !this.#stream.destroyed && !this.#stream.writableEnded) this.#stream.reset(ResetCode.cancel);
    if (!this.#stream) return;
    // Refused at the upstream login (a role the connector does not know, a wrong password): no session began.
    if (!this.#loggedIn && this.#loginError !== undefined) {
      this.#audit({ type: 'access.denied', decision: 'deny', rule: this.#rule, connectionId: this.#id, reason: `the upstream login failed: ${this.#loginError}` });
      return this.options.live.closed(this.#id, reason);
    }
    this.#audit({
      type: 'db.session.end', connectionId: this.#id, reason,
      details: { bytesUp: this.#counters.bytesUp, bytesDown: this.#counters.bytesDown, durationMs: this.options.now().getTime() - this.#started.getTime(), ...(this.#transcript ? { recording: this.#transcript.id } : {}) },
    });
    this.options.live.closed(this.#id, reason);
  }
}
