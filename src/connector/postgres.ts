// The connector's side of a `postgres` socket: the edge sends a StartupMessage (already decided
// and rewritten); the connector logs in to the upstream as the role its own config names, with
// the password from its environment or a file (trust, cleartext, MD5 and SCRAM-SHA-256), and
// passes none of the exchange back: the edge sees AuthenticationOk and what follows. A
// CancelRequest is passed on as it is. Credentials never leave this process.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import type { Logger } from 'pino';
import { ResetCode } from '../tunnel/index.js';
import type { MuxStream } from '../tunnel/index.js';
import { PgDecoder, decodeBackend, encodePasswordMessage, encodeSaslInitialResponse, encodeSaslResponse, encodeStartup, errorResponse } from '../pgwire/index.js';
import type { PgPacket, StartupPacket } from '../pgwire/index.js';
import type { ConnectorSocket } from './config.js';

export interface PostgresLogin {
  readonly user: string;
  readonly password_env?: string | undefined;
  readonly password_file?: string | undefined;
}

async function loginPassword(login: PostgresLogin): Promise<string | undefined> {
  if (login.password_env) return process.env[login.password_env];
  if (login.password_file) return (await readFile(login.password_file, 'utf8')).trim();
  return undefined;
}

/** Serves one tunnel stream of a postgres socket whose upstream is `url`. */
export function servePostgres(socket: ConnectorSocket, url: URL, stream: MuxStream, logger: Logger): void {
  const early: Buffer[] = [];
  let upstream: net.Socket | undefined;
  let loggedIn = false;
  const decoder = new PgDecoder({ side: 'frontend' }, {
    startup: (packet, raw) => void begin(packet, raw),
    message: (packet) => (loggedIn ? upstream?.write(packet.raw) : early.push(packet.raw)),
  });
  stream.on('data', (chunk: Buffer) => {
    try {
      decoder.push(chunk);
    } catch (err) {
      logger.info({ err, socket: socket.name }, 'postgres stream from the edge broke the protocol');
      stream.reset(ResetCode.internal);
      upstream?.destroy();
    }
  });
  stream.on('end', () => upstream?.end());
  stream.on('close', () => {
    if (stream.resetCode !== undefined) upstream?.destroy();
  });
  stream.on('error', () => upstream?.destroy());
  const refuse = (message: string) => {
    if (stream.destroyed) return;
    if (!stream.headersSent) stream.respond({ ':status': '200' });
    stream.end(errorResponse({ severity: 'FATAL', code: '08006', message: `postern connector: ${message}` }));
    upstream?.destroy();
  };

  const begin = async (packet: StartupPacket, raw: Buffer) => {
    const port = Number(url.port) || 5432;
    upstream = net.connect({ host: url.hostname, port, allowHalfOpen: true });
    upstream.setNoDelay(true);
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      logger.debug({ err, socket: socket.name }, 'postgres upstream connection failed');
      refuse(`upstream ${url.host}: ${err.code ?? err.message}`);
    });
    upstream.on('close', () => {
      if (!stream.destroyed && !stream.writableEnded) stream.end();
    });
    if (packet.type === 'CancelRequest') {
      // Written at once (queued until connected): the edge's stream may end before the upstream connects.
      upstream.end(raw);
      return stream.respond({ ':status': '200' }, { endStream: true });
    }
    if (packet.type !== 'StartupMessage') return refuse('expected a StartupMessage');
    const login = socket.postgres;
    if (!login) return refuse(`socket "${socket.name}" has no postgres login in the connector's configuration`);
    let password: string | undefined;
    try {
      password = await loginPassword(login);
    } catch (err) {
      return refuse(`cannot read the password of ${login.user}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const up = upstream;
    up.once('connect', () => {
      if (stream.destroyed) return up.destroy();
      stream.respond({ ':status': '200' });
      up.write(encodeStartup({ ...packet, parameters: { ...packet.parameters, user: login.user } }));
    });
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
