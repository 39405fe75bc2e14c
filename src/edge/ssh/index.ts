// Managed `ssh` sockets at the edge: SSH is terminated here. The user's Postern TLS client
// certificate (verified in the handshake) says who they are; the SSH login they ask for, and
// then every channel they open, is decided by policy; an allowed login is carried to the
// upstream sshd through the connector with a certificate minted for this session. Sessions
// are recorded and registered, so they are decided again on every change and can be killed.
import type tls from 'node:tls';
import ssh2 from 'ssh2';
import type { SshCertificateAuthority } from '../../ca/index.js';
import type { RecordingSink } from '../../reporting/index.js';
import type { SocketRecord } from '../../store/index.js';
import { certificateFacts } from '../access.js';
import type { ConnectionHandlerOptions } from '../access.js';
import type { SshHostKeys } from './host-keys.js';
import { certifiedHostKeys } from './ssh2-extensions.js';
import { SshSession } from './session.js';

export { SshHostKeys } from './host-keys.js';

export interface SshLimits {
  /** Channels (sessions, forwards) one connection may have open at once. */
  readonly maxChannels: number;
  /** From the TLS handshake to a decided login. */
  readonly loginTimeoutMs: number;
  /** Reaching and logging in to the upstream sshd. */
  readonly upstreamTimeoutMs: number;
}

export const DEFAULT_SSH_LIMITS: SshLimits = Object.freeze({ maxChannels: 64, loginTimeoutMs: 30_000, upstreamTimeoutMs: 20_000 });

export interface SshSocketOptions extends ConnectionHandlerOptions {
  /** Signs the session's login certificate for the upstream sshd. */
  readonly userCa: SshCertificateAuthority;
  readonly hostKeys: SshHostKeys;
  readonly recordings: RecordingSink;
  /** Stores the upstream's host key seen at the first login (it then reaches every edge). */
  readonly pinHostKey: (socket: string, hostKey: string) => Promise<void>;
  readonly limits?: Partial<SshLimits>;
}

export class SshSockets {
  readonly #limits: SshLimits;

  constructor(private readonly options: SshSocketOptions) {
    this.#limits = { ...DEFAULT_SSH_LIMITS, ...options.limits };
  }

  /** Runs SSH on a verified TLS connection for `record`. */
  accept(socket: tls.TLSSocket, record: SocketRecord): void {
    const cert = certificateFacts(socket);
    if (!cert.email) {
      this.options.logger.info({ socket: record.name, remoteAddress: socket.remoteAddress }, 'ssh socket refused: no user certificate');
      return void socket.destroy();
    }
    const clientIp = this.options.clientIp(socket);
    const hostKey = this.options.hostKeys.for(record);
    const keys = certifiedHostKeys(hostKey.openSshPrivateKey, hostKey.certificate);
    const server = new ssh2.Server({ hostKeys: keys.keys, ident: 'Postern' });
    server.on('connection', (connection, info) => {
      keys.bind(connection);
      new SshSession({
        ...this.options,
        limits: this.#limits,
        connection,
        socket,
        socketName: record.name,
        email: cert.email!,
        certificateSessionId: cert.sessionId,
        clientIp,
        country: this.options.geo?.country(clientIp),
        clientIdent: info.header.identRaw.slice(0, 120),
      }).start();
    });
    server.injectSocket(socket as unknown as import('node:net').Socket);
  }
}
