// The connector's side of a `postgres` socket: the edge sends a StartupMessage (already decided
// and rewritten, its `user` the role policy mapped the person to, or none for the default
// login); the connector logs in to the upstream as that role with the credentials its own
// config names — a password from its environment or a file (trust, cleartext, MD5 and
// SCRAM-SHA-256) or a TLS client certificate — and passes none of the exchange back: the edge
// sees AuthenticationOk and what follows. A CancelRequest is passed on as it is. Credentials
// never leave this process.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { PosternError, errorMessage, isPosternError } from '../errors.js';
import { ResetCode } from '../tunnel/index.js';
import type { MuxStream } from '../tunnel/index.js';
import { PgDecoder, SqlState, decodeBackend, encodePasswordMessage, encodeSaslInitialResponse, encodeSaslResponse, encodeStartup, errorResponse } from '../pgwire/index.js';
import type { PgPacket, StartupPacket } from '../pgwire/index.js';
import { postgresLoginFor, usesTls } from './config.js';
import type { ConnectorSocket, PostgresLogin } from './config.js';

/** How long the upstream may take to accept the connection and finish a TLS handshake. */
const DIAL_TIMEOUT_MS = 10_000;

async function readSecret(login: PostgresLogin, what: 'password_file' | 'cert' | 'key' | 'ca'): Promise<string | undefined> {
  const file = login[what];
  if (file === undefined) return undefined;
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new PosternError('config_invalid', `cannot read the ${what} of ${login.user}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, { cause: err });
  }
}

async function loginPassword(login: PostgresLogin): Promise<string | undefined> {
  if (login.password_env) return process.env[login.password_env];
  return (await readSecret(login, 'password_file'))?.trim();
}

/** Resolves once `socket` emits `ready`; rejects on an error, an early close or the dial timeout. */
function settle(socket: net.Socket, ready: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new PosternError('upstream_unreachable', `${what} timed out`)), DIAL_TIMEOUT_MS);
    const done = () => {
      clearTimeout(timer);
      socket.off('error', fail).off('close', closed).off(ready, ok);
    };
    const ok = () => (done(), resolve());
    const fail = (err: Error) => (done(), reject(err));
    const closed = () => fail(new PosternError('upstream_unreachable', `${what}: the upstream closed the connection`));
    socket.once(ready, ok).once('error', fail).once('close', closed);
  });
}

/** The single byte answering an SSLRequest; anything more is refused (bytes sent before the handshake could be injected). */
function sslAnswer(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new PosternError('upstream_unreachable', 'the upstream did not answer the SSLRequest')), DIAL_TIMEOUT_MS);
    const done = () => {
      clearTimeout(timer);
      socket.off('data', data).off('error', fail).off('end', closed).off('close', closed);
    };
    const fail = (err: Error) => (done(), reject(err));
    const closed = () => fail(new PosternError('upstream_unreachable', 'the upstream closed the connection at the SSLRequest'));
    const data = (chunk: Buffer) => {
      done();
      if (chunk.length !== 1) return reject(new PosternError('upstream_unreachable', 'the upstream answered the SSLRequest with more than one byte'));
      resolve(String.fromCharCode(chunk[0]!));
    };
    // The connection is half-open: an upstream that ends its side sends 'end', not 'close'.
    socket.on('data', data).once('error', fail).once('end', closed).once('close', closed);
  });
}

/**
 * A connection to the upstream ready for the StartupMessage: plain TCP, or for a TLS login an
 * SSLRequest and then TLS with its client certificate, verifying the server against its CA
 * (and its host name, unless `verify: ca`).
 */
export async function dialUpstream(url: URL, login: PostgresLogin): Promise<net.Socket> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const [cert, key, ca] = usesTls(login) ? await Promise.all([readSecret(login, 'cert'), readSecret(login, 'key'), readSecret(login, 'ca')]) : [];
  const plain = net.connect({ host, port: Number(url.port) || 5432, allowHalfOpen: true });
  plain.setNoDelay(true);
  try {
    await settle(plain, 'connect', `connecting to ${url.host}`);
    if (!usesTls(login)) return plain;
    plain.write(encodeStartup({ type: 'SSLRequest' }));
    const answer = await sslAnswer(plain);
    if (answer !== 'S') throw new PosternError('upstream_unreachable', `the upstream ${url.host} does not accept TLS (answered ${JSON.stringify(answer)} to the SSLRequest; is ssl on?)`);
    const secure = tls.connect({
      socket: plain, host, ...(net.isIP(host) ? {} : { servername: host }),
      ...(cert !== undefined ? { cert, key } : {}), ...(ca !== undefined ? { ca } : {}),
      minVersion: 'TLSv1.2',
      ...(login.verify === 'ca' ? { checkServerIdentity: () => undefined } : {}),
    });
    await settle(secure, 'secureConnect', `TLS with ${url.host}`).catch((err: Error) => {
      throw isPosternError(err) ? err : new PosternError('upstream_unreachable', `TLS with ${url.host} failed: ${err.message}`, { cause: err });
    });
    return secure;
  } catch (err) {
    plain.destroy();
    throw isPosternError(err) ? err : new PosternError('upstream_unreachable', `upstream ${url.host}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, { cause: err });
  }
}

/** Serves one tunnel stream of a postgres socket whose upstream is `url`; `connector` names this connector in refusals. */
export function servePostgres(socket: ConnectorSocket, url: URL, stream: MuxStream, logger: Logger, connector: string): void {
  const early: Buffer[] = [];
  let upstream: net.Socket | undefined;
  let loggedIn = false;
  let gone = false;
  const decoder = new PgDecoder({ side: 'frontend' }, {
    startup: (packet, raw) => void begin(packet, raw),
    message: (packet) => (loggedIn ? upstream?.write(packet.raw) : early.push(packet.raw)),
  });
  stream.on('data', (chunk: Buffer) => {
    // The messages of one chunk (Parse, Bind, Execute, Sync) reach the upstream in one write.
    upstream?.cork();
    try {
      decoder.push(chunk);
    } catch (err) {
      logger.info({ err, socket: socket.name }, 'postgres stream from the edge broke the protocol');
      stream.reset(ResetCode.internal);
      upstream?.destroy();
    } finally {
      upstream?.uncork();
    }
  });
  stream.on('end', () => {
    gone = true;
    upstream?.end();
  });
  stream.on('close', () => {
    gone = true;
    if (stream.resetCode !== undefined) upstream?.destroy();
  });
  stream.on('error', () => upstream?.destroy());
  const refuse = (message: string, sqlstate = '08006') => {
    if (stream.destroyed) return;
    if (!stream.headersSent) stream.respond({ ':status': '200' });
    stream.end(errorResponse({ severity: 'FATAL', code: sqlstate, message: `postern connector: ${message}` }));
    upstream?.destroy();
  };

  const begin = async (packet: StartupPacket, raw: Buffer) => {
    if (packet.type === 'CancelRequest') {
      // Written at once (queued until connected): the edge's stream may end before the upstream connects.
      // PostgreSQL reads a cancel before any TLS or authentication, so plain TCP serves every login.
      const cancel = net.connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) || 5432 });
      cancel.on('error', (err) => logger.debug({ err, socket: socket.name }, 'postgres cancel not delivered'));
      cancel.end(raw);
      return stream.respond({ ':status': '200' }, { endStream: true });
    }
    if (packet.type !== 'StartupMessage') return refuse('expected a StartupMessage');
    if (!socket.postgres) return refuse(`socket "${socket.name}" has no postgres login in the connector's configuration`);
    const role = packet.parameters.user;
    const login = postgresLoginFor(socket.postgres, role);
    if (!login) return refuse(`role ${role} is not configured on connector ${connector} (socket "${socket.name}": add it under postgres.roles)`, SqlState.invalidAuthorization);
    let up: net.Socket;
    let password: string | undefined;
    try {
      password = await loginPassword(login);
      up = await dialUpstream(url, login);
    } catch (err) {
      logger.debug({ err, socket: socket.name }, 'postgres upstream login failed');
      return refuse(isPosternError(err) ? err.message : errorMessage(err));
    }
    if (gone || stream.destroyed) return void up.destroy();
    upstream = up;
    up.on('error', (err: NodeJS.ErrnoException) => {
      logger.debug({ err, socket: socket.name }, 'postgres upstream connection failed');
      refuse(`upstream ${url.host}: ${err.code ?? err.message}`);
    });
    up.on('close', () => {
      if (!stream.destroyed && !stream.writableEnded) stream.end();
    });
    stream.respond({ ':status': '200' });
    up.write(encodeStartup({ ...packet, parameters: { ...packet.parameters, user: login.user } }));
    const auth = new UpstreamAuth(login.user, password);
    const backend = new PgDecoder({ side: 'backend' }, {
      message: (message: PgPacket) => {
        if (loggedIn) return void stream.write(message.raw);
        if (message.type !== 'R') {
          // An ErrorResponse (wrong password, unknown database) or a protocol notice: the edge relays it.
          return void stream.write(message.raw);
        }
        const answer = auth.answer(message);
        if (answer.kind === 'reply') return void up.write(answer.bytes);
        if (answer.kind === 'wait') return;
        if (answer.kind === 'refused') return refuse(answer.reason);
        loggedIn = true;
        stream.write(message.raw);
        for (const bytes of early.splice(0)) up.write(bytes);
      },
    });
    up.on('data', (chunk: Buffer) => {
      if (loggedIn) {
        // After the login the bytes pass as they are; the decoder only had to find the end of it.
        if (!stream.write(chunk)) {
          up.pause();
          stream.once('drain', () => up.resume());
        }
        return;
      }
      try {
        backend.push(chunk);
      } catch (err) {
        refuse(`the upstream broke the protocol: ${String(err)}`);
      }
    });
  };
}

/** `wait`: nothing to send, the upstream speaks next (AuthenticationOk after a verified SASLFinal). */
export type AuthAnswer = { kind: 'reply'; bytes: Buffer } | { kind: 'wait' } | { kind: 'done' } | { kind: 'refused'; reason: string };

/** Answers the upstream's authentication requests for one login. */
export class UpstreamAuth {
  #scram: { nonce: string; bare: string; serverSignature?: Buffer } | undefined;

  constructor(
    private readonly user: string,
    private readonly password: string | undefined,
    private readonly newNonce: () => string = () => randomBytes(18).toString('base64'),
  ) {}

  answer(packet: PgPacket): AuthAnswer {
    const message = decodeBackend(packet);
    switch (message.type) {
      case 'AuthenticationOk': return { kind: 'done' };
      case 'AuthenticationCleartextPassword': return this.#withPassword((p) => encodePasswordMessage(p));
      case 'AuthenticationMD5Password':
        return this.#withPassword((p) => {
          const inner = createHash('md5').update(p + this.user).digest('hex');
          return encodePasswordMessage(`md5${createHash('md5').update(inner).update(message.salt).digest('hex')}`);
        });
      case 'AuthenticationSASL': {
        if (!message.mechanisms.includes('SCRAM-SHA-256')) return { kind: 'refused', reason: `the upstream offers only ${message.mechanisms.join(', ')}` };
        const nonce = this.newNonce();
        const bare = `n=*,r=${nonce}`;
        this.#scram = { nonce, bare };
        return this.#withPassword(() => encodeSaslInitialResponse('SCRAM-SHA-256', Buffer.from(`n,,${bare}`)));
      }
      case 'AuthenticationSASLContinue': return this.#scramFinal(message.data.toString('utf8'));
      case 'AuthenticationSASLFinal': {
        const verifier = /(?:^|,)v=([^,]+)/.exec(message.data.toString('utf8'))?.[1];
        const expected = this.#scram?.serverSignature;
        const ok = verifier !== undefined && expected !== undefined && Buffer.from(verifier, 'base64').length === expected.length && timingSafeEqual(Buffer.from(verifier, 'base64'), expected);
        // AuthenticationOk follows; an upstream that cannot prove it knows the password is not trusted.
        return ok ? { kind: 'wait' } : { kind: 'refused', reason: 'the upstream\'s SCRAM server signature did not verify' };
      }
      default: return { kind: 'refused', reason: `the upstream asks for ${message.type}, which the connector does not answer` };
    }
  }

  #withPassword(reply: (password: string) => Buffer): AuthAnswer {
    if (this.password === undefined) return { kind: 'refused', reason: `the upstream asks for a password of ${this.user} and the connector has none (password_env or password_file)` };
    return { kind: 'reply', bytes: reply(this.password) };
  }

  #scramFinal(serverFirst: string): AuthAnswer {
    const scram = this.#scram;
    const fields = Object.fromEntries(serverFirst.split(',').map((f) => [f.slice(0, 1), f.slice(2)]));
    if (!scram || !fields.r?.startsWith(scram.nonce) || !fields.s || !fields.i) return { kind: 'refused', reason: 'the upstream\'s SCRAM message is malformed' };
    const salted = pbkdf2Sync(this.password!.normalize('NFKC'), Buffer.from(fields.s, 'base64'), Number(fields.i), 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${fields.r}`;
    const authMessage = `${scram.bare},${serverFirst},${withoutProof}`;
    const signature = createHmac('sha256', storedKey).update(authMessage).digest();
    const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
    scram.serverSignature = createHmac('sha256', createHmac('sha256', salted).update('Server Key').digest()).update(authMessage).digest();
    return { kind: 'reply', bytes: encodeSaslResponse(Buffer.from(`${withoutProof},p=${proof.toString('base64')}`)) };
  }
}
