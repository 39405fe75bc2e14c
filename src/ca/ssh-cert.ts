// OpenSSH certificates (PROTOCOL.certkeys) signed by an Ed25519 CA of Postern's: user
// certificates (sshd verifies them with TrustedUserCAKeys) and host certificates (ssh verifies
// them with an @cert-authority line in known_hosts). Pure encoding over node:crypto.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { PosternError } from '../errors.js';
import { readStrings, str, u32, u64 } from './ssh-wire.js';

const CERT_TYPES = { user: 1, host: 2 } as const;
export type SshCertificateType = keyof typeof CERT_TYPES;

/** What sshd lets a certificate do; sorted by name on the wire as the protocol requires. */
export const DEFAULT_SSH_EXTENSIONS = ['permit-X11-forwarding', 'permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty', 'permit-user-rc'] as const;

export interface SshCertificateRequest {
  /** The certified public key in authorized_keys form: `ssh-ed25519 AAAA… comment` or `ecdsa-sha2-nistp256 …`. */
  publicKey: string;
  keyId: string;
  /** User certificates: logins; host certificates: the host names they are valid for. */
  principals: readonly string[];
  /** Default `user`. */
  certType?: SshCertificateType;
  validAfter: Date;
  validBefore: Date;
  serial?: bigint;
  /** Default: DEFAULT_SSH_EXTENSIONS for user certificates, none for host certificates (OpenSSH defines none for hosts). */
  extensions?: readonly string[];
  /** e.g. { 'force-command': '…', 'source-address': '10.0.0.0/8' } */
  criticalOptions?: Readonly<Record<string, string>>;
}

const KEY_TYPES: Record<string, string> = {
  'ssh-ed25519': 'ssh-ed25519-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256': 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384': 'ecdsa-sha2-nistp384-cert-v01@openssh.com',
};

/** `type`, its blob's fields after the type name, from an authorized_keys line. */
export function parseSshPublicKey(line: string): { type: string; fields: Buffer[] } {
  const [type, data] = line.trim().split(/\s+/);
  if (!type || !data || !KEY_TYPES[type]) throw new PosternError('bad_request', `unsupported SSH public key type "${type ?? ''}" (use ed25519 or ecdsa)`);
  const blob = Buffer.from(data, 'base64');
  const [name, ...fields] = readStrings(blob);
  if (name?.toString() !== type) throw new PosternError('bad_request', 'SSH public key type does not match its contents');
  const expected = type === 'ssh-ed25519' ? 1 : 2;
  if (fields.length !== expected) throw new PosternError('bad_request', 'SSH public key is malformed');
  return { type, fields };
}

function principalsBlob(principals: readonly string[]): Buffer {
  for (const principal of principals) {
    if (!principal || /[\s,]/.test(principal) || principal.length > 255) throw new PosternError('bad_request', `invalid SSH principal "${principal}"`);
  }
  return Buffer.concat(principals.map((p) => str(p)));
}

function optionsBlob(options: Readonly<Record<string, string>>, flag: boolean): Buffer {
  return Buffer.concat(Object.keys(options).sort().map((name) => Buffer.concat([str(name), flag ? str('') : str(str(options[name]!))])));
}

export class SshCertificateAuthority {
  private constructor(private readonly key: KeyObject, private readonly caBlob: Buffer, private readonly comment: string) {}

  /** A new Ed25519 CA key as PKCS#8 PEM (the caller seals it). */
  static generateKey(): string {
    return generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }

  /** `comment` ends the publicKey() line: what the CA is for (`postern-host-ca` for the host CA). */
  static fromPrivateKey(pem: string, options: { comment?: string } = {}): SshCertificateAuthority {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') throw new PosternError('config_invalid', 'the SSH CA key must be Ed25519');
    const raw = Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url');
    return new SshCertificateAuthority(key, Buffer.concat([str('ssh-ed25519'), str(raw)]), options.comment ?? 'postern-user-ca');
  }

  /** The line for sshd's TrustedUserCAKeys (user CA) or after `@cert-authority <hosts>` in known_hosts (host CA). */
  publicKey(comment = this.comment): string {
    return `ssh-ed25519 ${this.caBlob.toString('base64')} ${comment}`;
  }

  /** A `…-cert-v01@openssh.com` line for `<key>-cert.pub` (or sshd's HostCertificate). */
  sign(request: SshCertificateRequest): string {
    const { type, fields } = parseSshPublicKey(request.publicKey);
    if (request.validBefore <= request.validAfter) throw new PosternError('bad_request', 'certificate validity ends before it starts');
    const kind = request.certType ?? 'user';
    if (!Object.hasOwn(CERT_TYPES, kind)) throw new PosternError('bad_request', `SSH certificate type "${String(kind)}" is not user or host`);
    const certType = KEY_TYPES[type]!;
    const seconds = (date: Date) => BigInt(Math.floor(date.getTime() / 1000));
    const extensions = Object.fromEntries([...(request.extensions ?? (kind === 'user' ? DEFAULT_SSH_EXTENSIONS : []))].map((name) => [name, '']));
    const body = Buffer.concat([
      str(certType),
      str(randomBytes(32)),
      ...fields.map((field) => str(field)),
      u64(request.serial ?? randomBytes(8).readBigUInt64BE()),
      u32(CERT_TYPES[kind]),
      str(request.keyId),
      str(principalsBlob(request.principals)),
      u64(seconds(request.validAfter)),
      u64(seconds(request.validBefore)),
      str(optionsBlob(request.criticalOptions ?? {}, false)),
      str(optionsBlob(extensions, true)),
      str(''),
      str(this.caBlob),
    ]);
    const signature = Buffer.concat([str('ssh-ed25519'), str(sign(null, body, this.key))]);
    const blob = Buffer.concat([body, str(signature)]);
    return `${certType} ${blob.toString('base64')} ${request.keyId}`;
  }
}
