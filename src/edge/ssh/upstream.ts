// The edge's login to the upstream sshd of a managed socket, over a tunnel stream: a fresh key
// and a user certificate from Postern's user CA for this one session (principal = the login,
// valid for minutes), and the upstream's host key checked against the one pinned for the socket.
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { generateSshKey } from '../../ca/index.js';
import type { SshCertificateAuthority } from '../../ca/index.js';
import { PosternError } from '../../errors.js';
import { certificateLogin } from './ssh2-extensions.js';

/** Upstream certificates are valid from a little before now (clock skew) to a few minutes on. */
export const UPSTREAM_CERTIFICATE_TTL_MS = 5 * 60_000;
const BACKDATE_MS = 60_000;

export interface UpstreamLoginOptions {
  readonly stream: Duplex;
  readonly login: string;
  /** Goes into the certificate's key id, so the upstream's auth log names the person. */
  readonly email: string;
  readonly userCa: SshCertificateAuthority;
  /** The host key pinned for the socket (`type base64`), or null: this login pins it. */
  readonly pinnedHostKey: string | null;
  readonly socket: string;
  readonly now: Date;
  readonly timeoutMs: number;
  /** The user's agent, for sessions that forward it. */
  readonly agent?: ssh2.BaseAgent;
}

export interface UpstreamSession {
  readonly client: ssh2.Client;
  /** The upstream's host key as `type base64`. */
  readonly hostKey: string;
}

/** `type base64` of a host key blob (its first wire string is its type). */
export function hostKeyLine(blob: Buffer): string {
  const length = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type = blob.subarray(4, 4 + length).toString('latin1');
  return `${type} ${blob.toString('base64')}`;
}

/** The `type base64` part of an authorized_keys-style line (any comment dropped). */
export function normalizedHostKey(line: string): string {
  return line.trim().split(/\s+/).slice(0, 2).join(' ');
}

export async function loginUpstream(options: UpstreamLoginOptions): Promise<UpstreamSession> {
  const ephemeral = generateSshKey();
  const at = options.now.getTime();
  const certificate = options.userCa.sign({
    publicKey: ephemeral.publicKey,
    keyId: options.email,
    principals: [options.login],
    validAfter: new Date(at - BACKDATE_MS),
    validBefore: new Date(at + UPSTREAM_CERTIFICATE_TTL_MS),
  });
  const login = certificateLogin(ephemeral.openSshPrivateKey, certificate);
  const client = new ssh2.Client();
  let seenHostKey = '';
  let hostKeyChanged = false;
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      client.end();
      options.stream.destroy();
      if (hostKeyChanged) {
        return reject(new PosternError('ssh_host_key_changed', `the SSH server behind ${options.socket} shows a different host key than the one pinned for it (${seenHostKey.slice(0, 40)}…); if it was re-keyed on purpose, run: postern socket update ${options.socket} --forget-host-key`));
      }
      const level = (err as { level?: string }).level;
      if (level === 'client-authentication') return reject(new PosternError('ssh_login_failed', `the SSH server behind ${options.socket} refused the login ${options.login} (does its principals file for ${options.login} list "${options.login}"?)`));
      reject(new PosternError('upstream_unreachable', `the SSH server behind ${options.socket} could not be reached: ${err.message}`, { cause: err }));
    };
    client.once('ready', () => {
      client.off('error', fail);
      client.on('error', () => undefined);
      resolve({ client, hostKey: seenHostKey });
    });
    client.once('error', fail);
    client.connect({
      sock: options.stream,
      username: options.login,
      readyTimeout: options.timeoutMs,
      ...(options.agent ? { agent: options.agent } : {}),
      keepaliveInterval: 15_000,
      hostVerifier: (blob: Buffer) => {
        seenHostKey = hostKeyLine(blob);
        hostKeyChanged = options.pinnedHostKey !== null && normalizedHostKey(options.pinnedHostKey) !== seenHostKey;
        return !hostKeyChanged;
      },
      authHandler: (methodsLeft, _partial, next) => {
        // Called again only after the certificate was refused: nothing else to try.
        if (methodsLeft !== null) return next(false as unknown as ssh2.AuthenticationType);
        next({ type: 'publickey', username: options.login, key: login.key });
      },
    });
    login.attach(client);
  });
}
