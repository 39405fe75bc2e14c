// The dashboard's web terminal: a WebSocket on the control host (`/api/v1/terminal/<socket>`)
// that a signed-in person's browser opens from the control origin. The control plane then is an
// SSH client of the edge's front door, exactly as `ssh login@<socket>.<domain>` through
// `postern client tls` would be: a fresh in-memory key with a short-lived TLS client certificate
// for this person and this sign-in, so the edge decides the login and every channel, records
// the shell, registers the live connection and can kill it. Nothing here bypasses the edge.
import type http from 'node:http';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { WebSocketServer } from 'ws';
import type { RawData, WebSocket } from 'ws';
import { CLIENT_IP_CERT_LIFETIME_MS, createKeyAndCsr } from '../ca/index.js';
import type { CertificateAuthority, CsrSignRequest } from '../ca/index.js';
import { PosternError, isPosternError } from '../errors.js';
import { SESSION_URI_PREFIX, readSessionCookie } from '../identity/index.js';
import type { Store } from '../store/index.js';
import { browserPrincipal } from './principal.js';
import type { PersonPrincipal } from './principal.js';
import type { SessionService } from './sessions.js';
import { TERMINAL_CLOSE, TERMINAL_PATH, terminalQuery, terminalResize } from './terminal-types.js';
import type { TerminalCloseCode, TerminalQuery } from './terminal-types.js';

/** What the edge hands the control host for an HTTP upgrade (with the client address it resolved). */
export type ControlUpgrade = (req: http.IncomingMessage, client: Duplex, head: Buffer, clientIp: string) => void;

export interface TerminalOptions {
  readonly store: Store;
  readonly ca: CertificateAuthority;
  readonly sessions: SessionService;
  /** `https://<domain>[:port]`: the only Origin a terminal is opened from, and where the edge's front door is. */
  readonly controlOrigin: string;
  readonly adminGroup: string;
  readonly logger: Logger;
  readonly now?: () => Date;
  /** The edge's front door; default: the control origin's host and port (where an ssh client goes). */
  readonly edge?: { readonly host: string; readonly port: number };
  readonly limits?: Partial<TerminalLimits>;
}

export interface TerminalLimits {
  /** Terminal output waiting for the browser beyond this pauses the SSH channel… */
  readonly highWaterBytes: number;
  /** …until the browser has taken it down to this. */
  readonly lowWaterBytes: number;
  /** Largest WebSocket message from the browser (keystrokes and pastes). */
  readonly maxMessageBytes: number;
  /** From the upgrade to an open shell. */
  readonly connectTimeoutMs: number;
}

const DEFAULT_LIMITS: TerminalLimits = { highWaterBytes: 1024 * 1024, lowWaterBytes: 256 * 1024, maxMessageBytes: 64 * 1024, connectTimeoutMs: 20_000 };
/** A WebSocket close reason holds at most 123 bytes. */
const MAX_CLOSE_REASON_BYTES = 123;
/** The edge's refusals and cuts are one line on the terminal that starts with this. */
const POSTERN_LINE = /(?:^|\n)(postern: [^\r\n]+)/;

/** The socket name of a terminal URL path, or undefined for any other path. */
export function terminalSocketOf(path: string): string | undefined {
  if (!path.startsWith(TERMINAL_PATH)) return undefined;
  const name = path.slice(TERMINAL_PATH.length);
  return /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(name) ? name.toLowerCase() : undefined;
}

/**
 * The terminal's client certificate: this person, this sign-in (revoking it cuts the terminal)
 * and the browser's address, which the edge then decides, shows and audits the session with
 * instead of the control node's. It only has to outlive the TLS handshake.
 */
export function terminalCertificateRequest(person: { readonly email: string; readonly sessionId: string }, csrPem: string, browserIp: string): CsrSignRequest {
  return {
    csrPem, commonName: person.email, emails: [person.email], uris: [`${SESSION_URI_PREFIX}${person.sessionId}`], clientIp: browserIp, lifetimeMs: CLIENT_IP_CERT_LIFETIME_MS, usage: 'client',
  };
}

/** `reason` cut to what a close frame carries (whole UTF-8 characters). */
export function closeReason(reason: string): string {
  let text = reason.replace(/[\r\n]+/g, ' ').trim();
  while (Buffer.byteLength(text) > MAX_CLOSE_REASON_BYTES) text = text.slice(0, -2) + '…';
  return text;
}

/** The upgrade handler of the control host: the terminal's path, 404 for any other. */
export function createTerminalUpgrade(options: TerminalOptions): ControlUpgrade {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const now = options.now ?? (() => new Date());
  const origin = new URL(options.controlOrigin);
  const edge = options.edge ?? { host: origin.hostname, port: Number(origin.port || 443) };
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: limits.maxMessageBytes });

  const authorize = async (req: http.IncomingMessage): Promise<PersonPrincipal> => {
    // A page on another origin can open a WebSocket with the person's cookie: only the dashboard may.
    if (req.headers.origin !== options.controlOrigin) {
      throw new PosternError('csrf_failed', `a terminal opened from ${String(req.headers.origin ?? 'no origin').slice(0, 200)} is refused: the dashboard runs on ${options.controlOrigin}`);
    }
    const cookie = readSessionCookie(req.headers);
    if (!cookie) throw new PosternError('unauthenticated', 'sign in at /auth/login to open a terminal');
    return browserPrincipal(options.sessions, options.store, cookie, now(), options.adminGroup);
  };

  return (req, client, head, clientIp) => {
    client.on('error', () => client.destroy());
    const url = new URL(req.url ?? '/', 'http://control');
    const socketName = terminalSocketOf(url.pathname);
    if (socketName === undefined) return refuseUpgrade(client, new PosternError('not_found', 'no upgrade here'));
    authorize(req).then((principal) => {
      wss.handleUpgrade(req, client, head, (ws) => {
        options.logger.info({ socket: socketName, user: principal.user.email, clientIp }, 'web terminal opened');
        const query = terminalQuery.safeParse(Object.fromEntries(url.searchParams));
        if (!query.success) return endWith(ws, TERMINAL_CLOSE.badRequest, `postern: ${query.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
        void new TerminalSession({ ...options, limits, edge, now }, ws, principal, clientIp, socketName, query.data).start();
      });
    }, (err: unknown) => refuseUpgrade(client, err));
  };
}

/** The answer to an upgrade that is not taken: a problem document, then close. */
function refuseUpgrade(client: Duplex, err: unknown): void {
  const error = isPosternError(err) ? err : new PosternError('internal', 'internal error (see the server log)');
  const body = JSON.stringify({ type: `https://postern.dev/errors/${error.code}`, title: error.message, status: error.httpStatus, detail: error.message, code: error.code });
  client.end(`HTTP/1.1 ${error.httpStatus} ${error.code}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/** Shows `line` in the terminal, then closes with `code` and the line as the reason. */
function endWith(ws: WebSocket, code: TerminalCloseCode, line: string): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.send(Buffer.from(`\r\n${line}\r\n`));
  ws.close(code, closeReason(line));
}

type SessionOptions = TerminalOptions & { readonly limits: TerminalLimits; readonly edge: { host: string; port: number }; readonly now: () => Date };

/** One browser terminal: its TLS connection and SSH session to the edge, and the relay between them. */
class TerminalSession {
  readonly #ssh = new ssh2.Client();
  #tls: tls.TLSSocket | undefined;
  #channel: ClientChannel | undefined;
  /** The edge's last `postern: …` line: why it refused or ended the session. */
  #posternLine: string | undefined;
  #exitCode: number | undefined;
  #ended = false;

  constructor(
    private readonly o: SessionOptions,
    private readonly ws: WebSocket,
    private readonly principal: PersonPrincipal,
    /** The browser's address as the edge resolved it for the upgrade. */
    private readonly browserIp: string,
    private readonly socketName: string,
    private readonly query: TerminalQuery,
  ) {}

  async start(): Promise<void> {
    const { ws } = this;
    ws.on('close', () => this.#teardown());
    ws.on('error', () => this.#teardown());
    const timer = setTimeout(() => this.#end(TERMINAL_CLOSE.unreachable, `postern: the shell on ${this.socketName} did not open within ${this.o.limits.connectTimeoutMs / 1000} s`), this.o.limits.connectTimeoutMs);
    timer.unref();
    try {
      const record = await this.o.store.sockets.get(this.socketName);
      if (!record || record.type !== 'ssh') return this.#end(TERMINAL_CLOSE.socketUnknown, `postern: there is no managed SSH socket named ${this.socketName}`);
      this.#tls = await this.#dialEdge();
      if (this.#ended) return this.#teardown();
      this.#channel = await this.#openShell(this.#tls);
      if (this.#ended) return this.#teardown();
      clearTimeout(timer);
      this.#relay(this.#channel);
    } catch (err) {
      clearTimeout(timer);
      const message = err instanceof Error ? err.message : String(err);
      this.o.logger.info({ socket: this.socketName, user: this.principal.user.email, err: message }, 'web terminal could not connect');
      this.#end(TERMINAL_CLOSE.unreachable, this.#posternLine ?? `postern: ${this.socketName} could not be reached: ${message}`);
    }
  }

  /** TLS to the edge as this person, this sign-in and the browser's address (terminalCertificateRequest); the key stays in memory. */
  async #dialEdge(): Promise<tls.TLSSocket> {
    const { user, session } = this.principal;
    const key = await createKeyAndCsr(user.email);
    const issued = await this.o.ca.signCsr(terminalCertificateRequest({ email: user.email, sessionId: session.id }, key.csrPem, this.browserIp));
    const domain = new URL(this.o.controlOrigin).hostname;
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: this.o.edge.host, port: this.o.edge.port, servername: `${this.socketName}.${domain}`,
        ca: this.o.ca.certificatePem, key: key.keyPem, cert: issued.certPem, minVersion: 'TLSv1.3',
      });
      socket.once('secureConnect', () => resolve(socket)).once('error', reject);
    });
  }

  #openShell(sock: tls.TLSSocket): Promise<ClientChannel> {
    const { query } = this;
    return new Promise((resolve, reject) => {
      this.#ssh.on('error', (err) => {
        this.o.logger.info({ socket: this.socketName, err: err.message }, 'web terminal ssh error');
        reject(err);
      });
      this.#ssh.once('ready', () => {
        this.#ssh.shell({ term: 'xterm-256color', cols: query.cols, rows: query.rows, width: 0, height: 0 }, (err, channel) => (err ? reject(err) : resolve(channel)));
      });
      this.#ssh.on('close', () => this.#sshClosed());
      // The edge is who TLS proved it to be (Postern's CA, the socket's name); the SSH identity is
      // the certificate, so no SSH credentials are offered (the edge takes any auth method).
      this.#ssh.connect({ sock: sock as unknown as Duplex, username: query.login, ident: 'postern-web-terminal', hostVerifier: () => true, readyTimeout: this.o.limits.connectTimeoutMs });
    });
  }

  #relay(channel: ClientChannel): void {
    const { ws } = this;
    const { highWaterBytes, lowWaterBytes } = this.o.limits;
    let paused = false;
    const toBrowser = (chunk: Buffer) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(chunk, { binary: true }, () => {
        if (paused && ws.bufferedAmount <= lowWaterBytes) {
          paused = false;
          channel.resume();
          channel.stderr.resume();
        }
      });
      if (!paused && ws.bufferedAmount > highWaterBytes) {
        paused = true;
        channel.pause();
        channel.stderr.pause();
      }
    };
    channel.on('data', toBrowser);
    channel.stderr.on('data', (chunk: Buffer) => {
      const line = POSTERN_LINE.exec(chunk.toString('utf8'))?.[1];
      if (line) this.#posternLine = line;
      toBrowser(chunk);
    });
    channel.on('exit', (code: number | null) => {
      if (code !== null) this.#exitCode = code;
    });
    channel.on('close', () => this.#shellClosed());
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (isBinary) {
        if (!channel.write(bytes)) {
          ws.pause();
          channel.once('drain', () => ws.resume());
        }
        return;
      }
      const resize = terminalResize.safeParse(parseJson(bytes.toString('utf8')));
      if (!resize.success) return this.#end(TERMINAL_CLOSE.badRequest, 'postern: text frames carry only {"type":"resize","cols":…,"rows":…}');
      channel.setWindow(resize.data.rows, resize.data.cols, 0, 0);
    });
  }

  #shellClosed(): void {
    if (this.#posternLine && this.#exitCode !== 0) return this.#close(TERMINAL_CLOSE.postern, this.#posternLine);
    this.#close(TERMINAL_CLOSE.ended, this.#exitCode === undefined ? 'the shell ended' : `the shell ended (exit status ${this.#exitCode})`);
  }

  #sshClosed(): void {
    if (!this.#channel) return;
    if (this.#posternLine) return this.#close(TERMINAL_CLOSE.postern, this.#posternLine);
    this.#close(TERMINAL_CLOSE.ended, 'the connection closed');
  }

  /** Closes without another line: the terminal already shows why (the edge's line or the shell's end). */
  #close(code: TerminalCloseCode, reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(code, closeReason(reason));
    this.#teardown();
  }

  #end(code: TerminalCloseCode, line: string): void {
    if (this.#ended) return;
    this.#ended = true;
    endWith(this.ws, code, line);
    this.#teardown();
  }

  #teardown(): void {
    this.#ended = true;
    this.#ssh.end();
    this.#tls?.destroy();
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
