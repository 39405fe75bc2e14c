// What the managed SSH proxy needs of the ssh2 library beyond its public API; everything that
// reaches into ssh2's internals lives in this file, against the version pinned in package.json,
// and the managed-SSH tests fail if an upgrade breaks it.
// - OpenSSH certificates on both legs: two places of ssh2's protocol code name a signature by
//   the negotiated algorithm, where for a `…-cert-v01@openssh.com` algorithm OpenSSH expects the
//   plain key type (PROTOCOL.certkeys): the host key signature of the key exchange (edge → user)
//   and the publickey signature of user authentication (edge → upstream sshd).
// - A reason on refused channel opens, which ssh2's reject() cannot carry.
// - Opening an agent channel toward the user, for agent forwarding (ssh2 servers cannot).
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { sshString } from '../../ca/index.js';
import type { Connection, ParsedKey } from 'ssh2';

const require = createRequire(import.meta.url);
const { sendPacket } = require('ssh2/lib/protocol/utils.js') as { sendPacket: (proto: unknown, packet: Buffer) => boolean };

const USERAUTH_REQUEST = 50;
const ADMINISTRATIVELY_PROHIBITED = 1;

interface KexState {
  negotiated?: { serverHostKey?: string };
}

/** ssh2's own defaults for channels it opens. */
const CHANNEL_WINDOW = 2 * 1024 * 1024;
const CHANNEL_PACKET = 32 * 1024;

interface ProtocolInternals {
  _kex?: KexState & { sessionID: Buffer };
  _authsQueue: string[];
  _packetRW: { write: { allocStart: number; alloc(size: number): Buffer; finalize(packet: Buffer): Buffer } };
  authPK(username: string, pubKey: unknown, keyAlgo?: unknown, cbSign?: unknown): void;
  channelOpenFail(recipient: number, reason: number, description: string): void;
  openssh_authAgent(channel: number, window: number, packetSize: number): void;
}

function protocolOf(peer: Connection | ssh2.Client): ProtocolInternals {
  const proto = (peer as unknown as { _protocol?: ProtocolInternals })._protocol;
  if (!proto) throw new Error('ssh2 connection has no protocol yet');
  return proto;
}

/** A certificate line (`<cert-type> <base64> [comment]`) as its type and blob. */
function certificateParts(line: string): { type: string; blob: Buffer; plainType: string } {
  const [type, data] = line.trim().split(/\s+/);
  if (!type || !data || !type.endsWith('-cert-v01@openssh.com')) throw new Error('not an OpenSSH certificate line');
  return { type, blob: Buffer.from(data, 'base64'), plainType: type.slice(0, -'-cert-v01@openssh.com'.length) };
}

function parsePrivateKey(openSshPrivateKey: string): ParsedKey {
  const parsed = ssh2.utils.parseKey(openSshPrivateKey);
  if (parsed instanceof Error) throw parsed;
  return Array.isArray(parsed) ? parsed[0]! : parsed;
}

/**
 * A host key for one user connection that offers `certificate` (signed by the host CA) first
 * and the plain key after it. Call `bind(connection)` from the server's 'connection' event:
 * the signature it makes during key exchange is then named by the plain type, as OpenSSH
 * verifies it.
 */
export function certifiedHostKeys(openSshPrivateKey: string, certificate: string): { keys: { key: ParsedKey }[]; bind(connection: Connection): void } {
  const plain = parsePrivateKey(openSshPrivateKey);
  const cert = certificateParts(certificate);
  let kexOf: (() => KexState | undefined) | undefined;
  const certified = Object.create(plain, {
    type: { value: cert.type },
    getPublicSSH: { value: () => cert.blob },
    sign: {
      value: (data: Buffer, algo?: string) => {
        const negotiated = kexOf?.()?.negotiated;
        if (negotiated?.serverHostKey === cert.type) negotiated.serverHostKey = cert.plainType;
        return plain.sign(data, algo);
      },
    },
  }) as ParsedKey;
  return {
    // Wrapped: ssh2 reads a host key object that is not a Buffer or string as `{ key }`.
    keys: [{ key: certified }, { key: plain }],
    bind(connection) {
      const proto = protocolOf(connection);
      kexOf = () => proto._kex;
    },
  };
}

/**
 * A key that logs in with `certificate` for the key in `openSshPrivateKey`: hand `key` to ssh2 as
 * publickey auth and call `attach(client)` right after `connect()`. Parsed before anything
 * connects, so a bad key fails here and never half-way through a login.
 */
export function certificateLogin(openSshPrivateKey: string, certificate: string): { key: ParsedKey; attach(client: ssh2.Client): void } {
  const plain = parsePrivateKey(openSshPrivateKey);
  const cert = certificateParts(certificate);
  const certified = Object.create(plain, {
    type: { value: cert.type },
    getPublicSSH: { value: () => cert.blob },
  }) as ParsedKey;
  return {
    key: certified,
    attach(client) {
      const proto = protocolOf(client);
      const original = proto.authPK.bind(proto);
      proto.authPK = (username, pubKey, keyAlgo, cbSign) => {
        const sign = typeof keyAlgo === 'function' ? keyAlgo : cbSign;
        if (pubKey !== certified || typeof sign !== 'function') return original(username, pubKey, keyAlgo, cbSign);
        // The signed request, built here so that the signature blob names the plain key type.
        const sessionId = proto._kex!.sessionID;
        const body = Buffer.concat([
          Buffer.from([USERAUTH_REQUEST]), sshString(username), sshString('ssh-connection'), sshString('publickey'),
          Buffer.from([1]), sshString(cert.type), sshString(cert.blob),
        ]);
        const signature = plain.sign(Buffer.concat([sshString(sessionId), body]));
        if (signature instanceof Error) throw signature;
        const payload = Buffer.concat([body, sshString(Buffer.concat([sshString(cert.plainType), sshString(signature)]))]);
        const packet = proto._packetRW.write.alloc(payload.length);
        payload.copy(packet, proto._packetRW.write.allocStart);
        proto._authsQueue.push('publickey');
        sendPacket(proto, proto._packetRW.write.finalize(packet));
      };
    },
  };
}

/**
 * Rejects a channel open as administratively prohibited, with a description the user's ssh
 * prints ("open failed: administratively prohibited: <description>"); ssh2's own reject
 * sends "connect failed" and no description.
 */
export function rejectWithReason(connection: Connection, reject: () => void, description: string): void {
  const proto = protocolOf(connection);
  const original = proto.channelOpenFail;
  proto.channelOpenFail = (recipient) => original.call(proto, recipient, ADMINISTRATIVELY_PROHIBITED, description);
  try {
    reject();
  } finally {
    delete (proto as Partial<ProtocolInternals>).channelOpenFail;
  }
}

type OpenCallback = ((err: Error | undefined, channel?: Duplex) => void) & { type?: string };

/**
 * The user's ssh agent, reached over `auth-agent@openssh.com` channels to their ssh (which ran
 * with `-A`): the upstream client forwards the agent to the sshd through it.
 */
export class UserAgentRelay extends ssh2.BaseAgent<ParsedKey> {
  constructor(private readonly connection: Connection) {
    super();
  }

  override getStream(callback: (err: Error | undefined, stream?: Duplex) => void): void {
    const internals = this.connection as unknown as { _chanMgr: { add(opened: OpenCallback): number } };
    const opened: OpenCallback = (err, channel) => callback(err, channel);
    opened.type = 'auth-agent@openssh.com';
    const local = internals._chanMgr.add(opened);
    if (local === -1) return callback(new Error('no free channels'));
    protocolOf(this.connection).openssh_authAgent(local, CHANNEL_WINDOW, CHANNEL_PACKET);
  }

  override getIdentities(callback: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    this.#withAgent(callback, (agent, done) => agent.getIdentities(done));
  }

  override sign(pubKey: ParsedKey, data: Buffer, options: ssh2.SigningRequestOptions | ssh2.SignCallback, callback?: ssh2.SignCallback): void {
    const cb = (typeof options === 'function' ? options : callback) ?? (() => undefined);
    const opts = typeof options === 'function' ? {} : options;
    this.#withAgent(cb, (agent, done) => agent.sign(pubKey, data, opts, done));
  }

  /** One request over a fresh agent channel, which is closed after the answer. */
  #withAgent<T>(callback: (err: Error | undefined, value?: T) => void, request: (agent: ssh2.AgentProtocol, done: (err: Error | null | undefined, value?: T) => void) => void): void {
    this.getStream((err, stream) => {
      if (err || !stream) return callback(err ?? new Error('no agent channel'));
      const agent = new ssh2.AgentProtocol(true);
      agent.pipe(stream).pipe(agent);
      request(agent, (requestErr, value) => {
        stream.end();
        callback(requestErr ?? undefined, value);
      });
    });
  }
}
