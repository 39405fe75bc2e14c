// Each ssh socket's host key and host certificate. The key is derived from one sealed seed and
// the socket's id, so every edge presents the same key with nothing stored per socket; the
// certificate (principal `<socket>.<domain>`) is signed by the SSH host CA here, short-lived,
// and signed anew once past half its life.
import { deriveSshHostKey } from '../../ca/index.js';
import type { SshCertificateAuthority } from '../../ca/index.js';
import type { SocketRecord } from '../../store/index.js';

/** How long a host certificate is valid; a new one is made at half of it. */
export const HOST_CERTIFICATE_TTL_MS = 7 * 24 * 3600_000;

export interface SocketHostKey {
  /** Unencrypted OpenSSH private key form, for ssh2. */
  readonly openSshPrivateKey: string;
  readonly publicKey: string;
  /** `ssh-ed25519-cert-v01@openssh.com …` line. */
  readonly certificate: string;
}

interface Cached extends SocketHostKey {
  readonly renewAt: number;
}

export class SshHostKeys {
  readonly #cache = new Map<string, Cached>();

  constructor(
    private readonly hostCa: SshCertificateAuthority,
    private readonly seed: Buffer,
    private readonly domain: string,
    private readonly now: () => Date,
  ) {}

  for(socket: Pick<SocketRecord, 'id' | 'name'>): SocketHostKey {
    const at = this.now().getTime();
    const key = `${socket.id}/${socket.name}`;
    const cached = this.#cache.get(key);
    if (cached && cached.renewAt > at) return cached;
    const derived = deriveSshHostKey(this.seed, socket.id);
    const certificate = this.hostCa.sign({
      certType: 'host',
      publicKey: derived.publicKey,
      keyId: `${socket.name}.${this.domain}`,
      principals: [`${socket.name}.${this.domain}`],
      validAfter: new Date(at - 5 * 60_000),
      validBefore: new Date(at + HOST_CERTIFICATE_TTL_MS),
      extensions: [],
    });
    const fresh = { openSshPrivateKey: derived.openSshPrivateKey, publicKey: derived.publicKey, certificate, renewAt: at + HOST_CERTIFICATE_TTL_MS / 2 };
    this.#cache.set(key, fresh);
    return fresh;
  }
}
