// One managed SSH connection: the login is decided when the client authenticates (its identity
// is the TLS certificate, so any SSH auth method is accepted), and each channel when it is
// opened. Allowed channels are relayed to the same channel kind on the upstream session; shells
// and commands are recorded; sftp, scp and forwards are audited. A refused login still
// completes authentication, so that the one-line reason reaches the user's stderr on their
// first channel instead of a bare "Permission denied".
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type ssh2 from 'ssh2';
import type { AuthContext, ClientChannel, Connection, PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import { isPosternError } from '../../errors.js';
import { decidingRule, evaluate, requestContext, sshExecChannel } from '../../policy/index.js';
import type { Action, Decision, SshChannel } from '../../policy/index.js';
import type { AuditEventType, NewAuditEvent, RecordingHandle } from '../../reporting/index.js';
import type { SocketRecord, UserRecord } from '../../store/index.js';
import { header } from '../../tunnel/index.js';
import { newConnectionId, observedEvents } from '../access.js';
import type { Verdict } from '../live-registry.js';
import type { SshLimits, SshSocketOptions } from './index.js';
import { UserAgentRelay, rejectWithReason } from './ssh2-extensions.js';
import { clampTerminal, refusalLine } from './refusal.js';
import { SftpAuditor } from './sftp-audit.js';
import type { SftpOperation } from './sftp-audit.js';
import { loginUpstream, normalizedHostKey } from './upstream.js';
import type { UpstreamSession } from './upstream.js';

export interface SshSessionOptions extends Omit<SshSocketOptions, 'clientIp' | 'geo' | 'hostKeys' | 'limits'> {
  readonly limits: SshLimits;
  readonly connection: Connection;
  readonly socket: tls.TLSSocket;
  readonly socketName: string;
  readonly email: string;
  readonly certificateSessionId: string | undefined;
  readonly clientIp: string;
  readonly country: string | undefined;
  /** The client's SSH version line, for the audit trail. */
  readonly clientIdent: string;
}

type Refusal = { readonly line: string; readonly rule?: string };
type Decided = { readonly allowed: true; readonly decision: Decision } | { readonly allowed: false; readonly refusal: Refusal; readonly decision?: Decision };

/** Environment variables passed on to the upstream (what sshd's AcceptEnv usually takes). */
const PASSED_ENV = /^(LANG|LC_[A-Z]+|TZ|COLORTERM|TERM_PROGRAM)$/;
const MAX_ENV = 32;

interface PtyRequest {
  readonly term: string;
  readonly cols: number;
  readonly rows: number;
  readonly width: number;
  readonly height: number;
  readonly modes: PseudoTtyInfo['modes'];
}

type Closable = { once(event: 'close', listener: () => void): unknown };

/** An open user channel and what it depends on (re-decided on every change). */
interface OpenChannel {
  readonly action: Action;
  /** Writes a last line to the user (shell/exec channels) before the connection goes. */
  readonly notice?: (line: string) => void;
  /** Closes both sides. */
  readonly close: () => void;
  /** Ends its recording and audit record (once), whichever side closed first or the connection went. */
  readonly finish: () => void;
}

export class SshSession {
  readonly #o: SshSessionOptions;
  readonly #id = newConnectionId();
  #login = '';
  #user: UserRecord | undefined;
  #refused: Refusal | undefined;
  #upstream: UpstreamSession | undefined;
  #authStarted = false;
  #registered = false;
  #closing = false;
  #startedAt = new Date(0);
  #closingReason: string | undefined;
  #ended = false;
  #maxSessionTimer: NodeJS.Timeout | undefined;
  #loginTimer: NodeJS.Timeout | undefined;
  readonly #channels = new Set<OpenChannel>();
  /** User-side channels open now, counted from the moment they are accepted (the bound of maxChannels). */
  #userChannels = 0;
  readonly #recordings: string[] = [];
  readonly #remoteForwards = new Map<string, number>();

  constructor(options: SshSessionOptions) {
    this.#o = options;
  }

  start(): void {
    const { connection, socket, logger } = this.#o;
    this.#startedAt = this.#o.now();
    this.#loginTimer = setTimeout(() => this.#end('the login did not finish in time'), this.#o.limits.loginTimeoutMs);
    this.#loginTimer.unref();
    connection.on('error', (err) => {
      logger.info({ socket: this.#o.socketName, connection: this.#id, err: err.message }, 'ssh client error');
      socket.destroy();
    });
    connection.on('authentication', (ctx) => this.#authenticate(ctx));
    connection.on('ready', () => this.#ready());
    connection.on('close', () => this.#closed());
    // The TLS server allows half-open connections: a client that is gone sends a FIN, and nothing else would end this side.
    socket.on('end', () => this.#end('closed'));
    socket.on('close', () => this.#closed());
  }

  // ---- decisions ----------------------------------------------------------------------------

  #decide(action: Action): Decided {
    const view = this.#o.view();
    const record = view.socket(this.#o.socketName);
    if (!record || record.type !== 'ssh') return { allowed: false, refusal: { line: `postern: the socket ${this.#o.socketName} no longer exists` } };
    const user = view.userByEmail(this.#o.email);
    if (!user || user.disabledAt) return { allowed: false, refusal: { line: `postern: ${this.#o.email} is not an active user` } };
    const sessionId = this.#o.certificateSessionId;
    if (sessionId !== undefined && !view.sessionLive(sessionId)) {
      return { allowed: false, refusal: { line: `postern: the sign-in of ${this.#o.email} has ended; sign in again` } };
    }
    this.#user = user;
    const context = requestContext({ socket: record, user, clientIp: this.#o.clientIp, country: this.#o.country, at: this.#o.now(), action });
    const policies = view.policies();
    const decision = evaluate(context, policies);
    if (decision.effect === 'allow') return { allowed: true, decision };
    const rule = decidingRule(decision);
    return { allowed: false, decision, refusal: { line: refusalLine(context, policies, decision), ...(rule ? { rule } : {}) } };
  }

  #loginAction(): Action {
    return { protocol: 'ssh', login: this.#login };
  }

  #channelAction(channel: SshChannel, extra: { command?: string; target?: string } = {}): Action {
    return { protocol: 'ssh', login: this.#login, channel, ...extra };
  }

  /** Decides a channel; a refusal is audited and returned. */
  #decideChannel(action: Action): Refusal | undefined {
    const decided = this.#decide(action);
    this.#auditObserved(action, decided);
    if (decided.allowed) return undefined;
    this.#auditDenied(action, decided.refusal);
    return decided.refusal;
  }

  /** The whole connection, again: the login and every open channel must still be allowed. */
  #redecide(): Verdict {
    const login = this.#decide(this.#loginAction());
    const refused = !login.allowed ? login : [...this.#channels].map((c) => this.#decide(c.action)).find((d) => !d.allowed);
    if (refused && !refused.allowed) return { keep: false, reason: refused.refusal.line.replace(/^postern: /, ''), ...(refused.refusal.rule ? { rule: refused.refusal.rule } : {}) };
    return { keep: true, ...(login.allowed && login.decision.recheckAt ? { recheckAt: login.decision.recheckAt } : {}) };
  }

  // ---- login --------------------------------------------------------------------------------

  #authenticate(ctx: AuthContext): void {
    if (this.#authStarted) return ctx.reject();
    this.#authStarted = true;
    this.#login = ctx.username;
    const decided = this.#decide(this.#loginAction());
    this.#auditObserved(this.#loginAction(), decided);
    if (!decided.allowed) {
      this.#refused = decided.refusal;
      this.#auditDenied(this.#loginAction(), decided.refusal);
      return ctx.accept();
    }
    void this.#connectUpstream(decided.decision).then(() => ctx.accept(), (err: unknown) => {
      const message = isPosternError(err) ? err.message : `the SSH server behind ${this.#o.socketName} could not be reached (${err instanceof Error ? err.message : 'unknown error'})`;
      if (!isPosternError(err)) this.#o.logger.warn({ err, socket: this.#o.socketName }, 'ssh upstream login failed');
      this.#refused = { line: `postern: ${message}` };
      this.#audit('access.denied', { decision: 'deny', reason: message, details: { protocol: 'ssh', login: this.#login, upstream: isPosternError(err) ? err.code : 'internal' } });
      ctx.accept();
    });
  }

  async #connectUpstream(decision: Decision): Promise<void> {
    const record = this.#o.view().socket(this.#o.socketName) as SocketRecord;
    const stream = this.#o.hub.openStream(record.name, { [header.socket]: record.name, [header.kind]: 'tcp', [header.clientIp]: this.#o.clientIp });
    stream.once('response', (headers) => {
      if (headers[header.error]) stream.destroy();
    });
    stream.on('error', () => undefined);
    const upstream = await loginUpstream({
      stream: stream as unknown as Duplex,
      login: this.#login,
      email: this.#o.email,
      userCa: this.#o.userCa,
      pinnedHostKey: record.upstreamHostKey,
      socket: record.name,
      now: this.#o.now(),
      timeoutMs: this.#o.limits.upstreamTimeoutMs,
      agent: new UserAgentRelay(this.#o.connection),
    });
    if (this.#closing) {
      upstream.client.end();
      return;
    }
    this.#upstream = upstream;
    upstream.client.on('close', () => this.#end('the SSH server behind this socket closed the connection'));
    upstream.client.on('tcp connection', (info, accept, reject) => this.#forwardedConnection(info, accept, reject));
    if (record.upstreamHostKey === null) {
      this.#o.pinHostKey(record.name, normalizedHostKey(upstream.hostKey)).catch((err: unknown) => this.#o.logger.warn({ err, socket: record.name }, 'the upstream host key could not be pinned'));
      this.#audit('admin.change', { reason: `pinned the host key of the SSH server behind ${record.name}`, details: { protocol: 'ssh', hostKey: upstream.hostKey, change: 'ssh.host_key_pinned' } });
    }
    if (decision.maxSessionMs !== undefined) {
      this.#maxSessionTimer = setTimeout(() => this.#cut(`the session reached its limit of ${formatDuration(decision.maxSessionMs!)} (max_session)`), decision.maxSessionMs);
      this.#maxSessionTimer.unref();
    }
  }

  #ready(): void {
    clearTimeout(this.#loginTimer);
    const { connection } = this.#o;
    connection.on('session', (accept, reject) => {
      if (!this.#roomForChannel()) return reject();
      const session = accept();
      this.#session(session, this.#counted(session));
    });
    connection.on('tcpip', (accept, reject, info) => this.#localForward(accept, reject, info));
    connection.on('request', (accept, reject, name, info) => this.#globalRequest(accept, reject, name, info as ssh2.TcpipBindInfo));
    connection.on('openssh.streamlocal', (_accept, reject) => rejectWithReason(connection, reject, 'postern: forwarding to UNIX sockets is not supported on managed SSH sockets'));
    if (this.#refused) {
      // Nothing but the reason: the connection goes once the client had time to read it.
      setTimeout(() => this.#end(this.#refused!.line), 10_000).unref();
      return;
    }
    this.#register();
  }

  #register(): void {
    const user = this.#user!;
    this.#registered = true;
    const sessionId = this.#o.certificateSessionId ?? '';
    const socket = this.#o.socket;
    const initial = this.#decide(this.#loginAction());
    this.#audit('ssh.session.start', { decision: 'allow', rule: initial.allowed ? decidingRule(initial.decision) : '', details: { protocol: 'ssh', login: this.#login, client: this.#o.clientIdent } });
    this.#o.logger.info({ event: 'ssh.session.start', connection: this.#id, socket: this.#o.socketName, user: this.#o.email, login: this.#login, clientIp: this.#o.clientIp }, 'ssh session started');
    this.#o.live.add({
      id: this.#id, protocol: 'ssh', socket: this.#o.socketName, userId: user.id, email: this.#o.email, sessionId,
      clientIp: this.#o.clientIp, country: this.#o.country ?? '', startedAt: this.#startedAt,
      counters: { get bytesUp() { return socket.bytesRead; }, get bytesDown() { return socket.bytesWritten; } },
      decide: () => this.#redecide(),
      close: (reason: string) => this.#cut(reason),
    }, initial.allowed ? initial.decision.recheckAt : undefined);
  }

  #roomForChannel(): boolean {
    return this.#userChannels < this.#o.limits.maxChannels;
  }

  /** Counts a user channel until it (or, for a session, the channel it started) closes; returns the release. */
  #counted(channel: Closable): () => void {
    this.#userChannels++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#userChannels--;
    };
    channel.once('close', release);
    return release;
  }

  // ---- session channels ---------------------------------------------------------------------

  #session(session: Session, release: () => void): void {
    let pty: PtyRequest | undefined;
    const env: Record<string, string> = {};
    let started: { channel: ServerChannel; upstream?: ClientChannel; recording?: RecordingHandle } | undefined;
    const notices: string[] = [];

    session.on('pty', (accept, _reject, info) => {
      const size = clampTerminal(info);
      pty = { term: sanitizeTerm(info.term), ...size, modes: info.modes };
      accept?.();
    });
    session.on('env', (accept, reject, info) => {
      if (Object.keys(env).length >= MAX_ENV || !PASSED_ENV.test(info.key) || info.val.length > 1024) return reject?.();
      env[info.key] = info.val;
      accept?.();
    });
    session.on('window-change', (accept, _reject, info) => {
      const size = clampTerminal(info);
      if (pty) pty = { ...pty, ...size };
      started?.upstream?.setWindow(size.rows, size.cols, size.height, size.width);
      started?.recording?.resize(size.cols, size.rows);
      accept?.();
    });
    session.on('signal', (accept, _reject, info) => {
      started?.upstream?.signal(info.name);
      accept?.();
    });
    let agentForward = false;
    session.on('auth-agent', (accept, reject) => {
      const refusal = this.#refused ?? this.#decideChannel(this.#channelAction('agent_forwarding'));
      if (refusal) {
        notices.push(refusal.line);
        return reject?.();
      }
      agentForward = true;
      this.#audit('ssh.forward.agent', { decision: 'allow', details: { protocol: 'ssh', login: this.#login } });
      accept?.();
    });
    session.on('x11', (_accept, reject) => {
      const refusal = this.#refused ?? this.#decideChannel(this.#channelAction('x11')) ?? { line: 'postern: X11 forwarding is not available on managed SSH sockets' };
      notices.push(refusal.line);
      reject?.();
    });

    const begin = (kind: 'shell' | 'exec' | 'sftp' | 'scp', accept: () => ServerChannel, command?: string) => {
      if (started) return;
      const channel = accept();
      channel.once('close', release);
      started = { channel };
      for (const line of notices) channel.stderr.write(`${line}\r\n`);
      const action = this.#channelAction(kind, command === undefined ? {} : { command });
      const refusal = this.#refused ?? this.#decideChannel(action);
      if (refusal) return refuseChannel(channel, refusal.line);
      const upstream = this.#upstream!.client;
      const opened = (err: Error | undefined, up: ClientChannel) => {
        if (err) return refuseChannel(channel, `postern: the SSH server behind ${this.#o.socketName} refused the ${kind === 'shell' ? 'shell' : kind === 'sftp' ? 'sftp subsystem' : 'command'}: ${err.message}`);
        if (channel.destroyed || this.#closing) return up.close();
        started!.upstream = up;
        this.#relay(kind, action, channel, up, pty, command, started!);
      };
      const options = { ...(Object.keys(env).length > 0 ? { env } : {}), ...(agentForward ? { agentForward: true } : {}) };
      if (kind === 'shell') upstream.shell(pty ? ptyWindow(pty) : false, options, opened);
      else if (kind === 'sftp') upstream.subsys('sftp', opened);
      else upstream.exec(command!, { ...options, ...(pty ? { pty: ptyWindow(pty) } : {}) }, opened);
    };
    session.on('shell', (accept) => begin('shell', accept));
    session.on('exec', (accept, _reject, info) => begin(sshExecChannel(info.command), accept, info.command));
    session.on('subsystem', (accept, _reject, info) => {
      if (info.name !== 'sftp') {
        const channel = accept();
        channel.once('close', release);
        started = { channel };
        return refuseChannel(channel, `postern: the subsystem "${info.name.slice(0, 40)}" is not available on managed SSH sockets`);
      }
      begin('sftp', accept);
    });
  }

  /** Relays an allowed channel both ways, with its recording or audit trail, until either side closes. */
  #relay(kind: 'shell' | 'exec' | 'sftp' | 'scp', action: Action, channel: ServerChannel, up: ClientChannel, pty: PtyRequest | undefined, command: string | undefined, started: { recording?: RecordingHandle }): void {
    const record = this.#o.view().socket(this.#o.socketName);
    let exit: { code?: number; signal?: string } = {};
    let recording: RecordingHandle | undefined;
    let sftp: SftpAuditor | undefined;
    let finished = false;
    const open: OpenChannel = {
      action,
      ...(kind === 'shell' || kind === 'exec' ? { notice: (line: string) => { if (!channel.destroyed) channel.stderr.write(`\r\n${line}\r\n`); } } : {}),
      close: () => {
        up.close();
        channel.close();
      },
      finish: () => {
        if (finished) return;
        finished = true;
        this.#channels.delete(open);
        sftp?.end();
        recording?.end({ reason: this.#closingReason ?? 'closed', ...(exit.code === undefined ? {} : { exitStatus: exit.code }) });
        if (kind === 'exec') {
          this.#audit('ssh.exec', { decision: 'allow', details: { protocol: 'ssh', login: this.#login, command, ...(exit.code === undefined ? {} : { exitStatus: exit.code }), ...(exit.signal ? { signal: exit.signal } : {}), recording: recording?.id } });
        }
      },
    };
    this.#channels.add(open);
    if (kind === 'shell' || kind === 'exec') {
      recording = this.#o.recordings.start({
        connectionId: this.#id, ...(this.#o.certificateSessionId ? { sessionId: this.#o.certificateSessionId } : {}),
        socket: this.#o.socketName, email: this.#o.email, login: this.#login, kind: kind === 'shell' ? 'shell' : 'exec',
        ...(command === undefined ? {} : { command }), width: pty?.cols ?? 80, height: pty?.rows ?? 24, term: pty?.term ?? 'dumb',
        title: `${this.#login}@${this.#o.socketName}${command === undefined ? '' : `: ${command.slice(0, 200)}`}`, startedAt: this.#o.now(),
        recordInput: record?.recordInput ?? false,
      });
      started.recording = recording;
      this.#recordings.push(recording.id);
    } else if (kind === 'sftp') {
      sftp = new SftpAuditor((operation) => this.#auditSftp(operation));
    } else {
      this.#audit('ssh.scp', { decision: 'allow', details: { protocol: 'ssh', login: this.#login, command } });
    }
    channel.on('data', (chunk: Buffer) => {
      recording?.input(chunk);
      sftp?.fromClient(chunk);
    });
    up.on('data', (chunk: Buffer) => {
      recording?.output(chunk);
      sftp?.fromServer(chunk);
    });
    up.stderr.on('data', (chunk: Buffer) => recording?.output(chunk));
    channel.pipe(up);
    // Not ended with the upstream's EOF: ssh2 closes a server channel as it ends it, and the exit
    // status (which sshd may send after its EOF) must reach the user first.
    up.pipe(channel, { end: false });
    up.stderr.pipe(channel.stderr, { end: false });
    up.on('exit', (code: number | null, signal?: string, dumped?: boolean, description?: string) => {
      if (code !== null) {
        exit = { code };
        channel.exit(code);
      } else if (signal) {
        exit = { signal };
        channel.exit(signal, dumped ?? false, description ?? '');
      }
    });
    up.on('close', () => {
      open.finish();
      if (!channel.destroyed) channel.end();
      channel.close();
    });
    channel.on('close', () => {
      open.finish();
      up.close();
    });
    channel.on('error', () => undefined);
    up.on('error', () => undefined);
  }

  #auditSftp(operation: SftpOperation): void {
    const { op, ...rest } = operation;
    this.#audit(`ssh.sftp.${op}` as AuditEventType, { decision: 'allow', details: { protocol: 'ssh', login: this.#login, ...rest } });
  }

  // ---- forwards -----------------------------------------------------------------------------

  #localForward(accept: () => ServerChannel, reject: () => void, info: ssh2.TcpipRequestInfo): void {
    const target = `${info.destIP}:${info.destPort}`;
    const action = this.#channelAction('local_forward', { target });
    const refusal = this.#refused ?? (this.#roomForChannel() ? this.#decideChannel(action) : { line: 'postern: too many channels on this connection' });
    if (refusal) return rejectWithReason(this.#o.connection, reject, refusal.line);
    this.#upstream!.client.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, up) => {
      if (err) return rejectWithReason(this.#o.connection, reject, `postern: the SSH server behind ${this.#o.socketName} refused the forward to ${target}: ${err.message}`);
      this.#audit('ssh.forward.local', { decision: 'allow', details: { protocol: 'ssh', login: this.#login, target } });
      const channel = accept();
      this.#counted(channel);
      this.#pipeForward(action, channel, up);
    });
  }

  #globalRequest(accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, name: string, info: ssh2.TcpipBindInfo): void {
    if (name === 'cancel-tcpip-forward') {
      const key = `${info.bindAddr}:${info.bindPort}`;
      if (!this.#remoteForwards.delete(key) || !this.#upstream) return reject?.();
      this.#upstream.client.unforwardIn(info.bindAddr, info.bindPort, (err) => (err ? reject?.() : accept?.()));
      return;
    }
    if (name !== 'tcpip-forward') return reject?.();
    const target = `${info.bindAddr}:${info.bindPort}`;
    const action = this.#channelAction('remote_forward', { target });
    const refusal = this.#refused ?? (this.#remoteForwards.size < this.#o.limits.maxChannels ? this.#decideChannel(action) : { line: 'postern: too many forwards on this connection' });
    if (refusal) {
      for (const channel of this.#channels) channel.notice?.(refusal.line);
      return reject?.();
    }
    this.#upstream!.client.forwardIn(info.bindAddr, info.bindPort, (err, port) => {
      if (err) return reject?.();
      this.#remoteForwards.set(`${info.bindAddr}:${info.bindPort === 0 ? port : info.bindPort}`, port);
      this.#audit('ssh.forward.remote', { decision: 'allow', details: { protocol: 'ssh', login: this.#login, target: `${info.bindAddr}:${port}` } });
      accept?.(port);
    });
  }

  /** A connection to a remote forward arrived upstream: open it to the user, if the forward still stands. */
  #forwardedConnection(info: ssh2.TcpConnectionDetails, accept: () => ClientChannel, reject: () => void): void {
    const action = this.#channelAction('remote_forward', { target: `${info.destIP}:${info.destPort}` });
    if (this.#closing || !this.#roomForChannel() || this.#decide(action).allowed === false) return reject();
    this.#o.connection.forwardOut(info.destIP, info.destPort, info.srcIP, info.srcPort, (err, channel) => {
      if (err) return reject();
      this.#counted(channel);
      this.#pipeForward(action, channel, accept());
    });
  }

  #pipeForward(action: Action, channel: ServerChannel, up: ClientChannel): void {
    const open: OpenChannel = {
      action,
      close: () => {
        up.close();
        channel.close();
      },
      finish: () => this.#channels.delete(open),
    };
    this.#channels.add(open);
    channel.pipe(up).pipe(channel);
    channel.on('close', () => {
      open.finish();
      up.close();
    });
    up.on('close', () => {
      open.finish();
      channel.close();
    });
    channel.on('error', () => undefined);
    up.on('error', () => undefined);
  }

  // ---- ending -------------------------------------------------------------------------------

  /** Ends a live session for `reason`, telling the user's terminals first (policy change, kill, max_session). */
  #cut(reason: string): void {
    if (this.#closing) return;
    for (const channel of this.#channels) channel.notice?.(`postern: ${reason}`);
    this.#end(reason);
  }

  #end(reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#closingReason = reason;
    clearTimeout(this.#maxSessionTimer);
    clearTimeout(this.#loginTimer);
    const hadChannels = this.#channels.size > 0;
    for (const channel of [...this.#channels]) channel.close();
    // ssh leaves at a disconnect without printing what it still holds, but drains a closed channel
    // first: closing the channels lets it show the notices and go by itself. The disconnect and the
    // socket follow shortly in any case.
    const disconnect = () => this.#o.connection.end();
    if (hadChannels) setTimeout(disconnect, 500).unref();
    else disconnect();
    setTimeout(() => this.#o.socket.destroy(), hadChannels ? 1_500 : 500).unref();
    if (this.#registered) this.#o.live.closed(this.#id, reason);
  }

  #closed(): void {
    if (!this.#closing) this.#end('closed');
    for (const channel of [...this.#channels]) channel.finish();
    this.#upstream?.client.end();
    if (!this.#registered || this.#ended) return;
    this.#ended = true;
    const socket = this.#o.socket;
    this.#audit('ssh.session.end', {
      reason: this.#closingReason ?? 'closed',
      details: { protocol: 'ssh', login: this.#login, bytesUp: socket.bytesRead, bytesDown: socket.bytesWritten, durationMs: this.#o.now().getTime() - this.#startedAt.getTime(), recordings: this.#recordings },
    });
    this.#o.logger.info({ event: 'ssh.session.end', connection: this.#id, socket: this.#o.socketName, user: this.#o.email, login: this.#login, reason: this.#closingReason }, 'ssh session ended');
  }

  // ---- audit --------------------------------------------------------------------------------

  #audit(type: AuditEventType, event: Omit<NewAuditEvent, 'type' | 'actor' | 'socket' | 'clientIp' | 'country' | 'connectionId' | 'sessionId'>): void {
    this.#o.audit({
      type, actor: this.#o.email, socket: this.#o.socketName, clientIp: this.#o.clientIp, country: this.#o.country ?? '',
      connectionId: this.#id, sessionId: this.#o.certificateSessionId ?? '', ...event,
    });
  }

  #auditDenied(action: Action, refusal: Refusal): void {
    this.#audit('access.denied', { decision: 'deny', reason: refusal.line.replace(/^postern: /, ''), rule: refusal.rule ?? '', details: this.#actionDetails(action) });
  }

  /** Observe mode's record of a login or channel decision (not of re-decisions: one event per thing the user did). */
  #auditObserved(action: Action, decided: Decided): void {
    if (!decided.decision) return;
    const base = {
      actor: this.#o.email, socket: this.#o.socketName, clientIp: this.#o.clientIp, country: this.#o.country ?? '',
      connectionId: this.#id, sessionId: this.#o.certificateSessionId ?? '', details: this.#actionDetails(action),
    };
    const detail = decided.allowed ? decided.decision.summary : decided.refusal.line.replace(/^postern: /, '');
    for (const event of observedEvents(decided.decision, base, detail)) this.#o.audit(event);
  }

  #actionDetails(action: Action): Record<string, unknown> {
    const ssh = action.protocol === 'ssh' ? action : undefined;
    return { protocol: 'ssh', login: this.#login, ...(ssh?.channel ? { channel: ssh.channel } : {}), ...(ssh?.command === undefined ? {} : { command: ssh.command }), ...(ssh?.target ? { target: ssh.target } : {}) };
  }
}

/** Tells the user why, and ends the channel as a failed command would. */
function refuseChannel(channel: ServerChannel, line: string): void {
  channel.stderr.write(`${line}\r\n`);
  channel.exit(1);
  channel.end();
  channel.close();
}

function ptyWindow(pty: PtyRequest): ssh2.PseudoTtyOptions {
  return { term: pty.term, cols: pty.cols, rows: pty.rows, width: pty.width, height: pty.height, modes: pty.modes };
}

function sanitizeTerm(term: string): string {
  return /^[A-Za-z0-9._+-]{1,64}$/.test(term) ? term : 'xterm';
}

function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}
