// OpenSSH user certificates (PROTOCOL.certkeys) signed by Postern's SSH user CA (Ed25519).
// Pure encoding over node:crypto; sshd verifies them with TrustedUserCAKeys.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { PosternError } from '../errors.js';

const USER_CERT = 1;

/** What sshd lets a certificate do; sorted by name on the wire as the protocol requires. */
export const DEFAULT_SSH_EXTENSIONS = ['permit-X11-forwarding', 'permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty', 'permit-user-rc'] as const;

export interface SshCertificateRequest {
  /** The user's public key in authorized_keys form: `ssh-ed25519 AAAA… comment` or `ecdsa-sha2-nistp256 …`. */
  publicKey: string;
  keyId: string;
  principals: readonly string[];
  validAfter: Date;
  validBefore: Date;
  serial?: bigint;
  extensions?: readonly string[];
  /** e.g. { 'force-command': '…', 'source-address': '10.0.0.0/8' } */
  criticalOptions?: Readonly<Record<string, string>>;
}

const KEY_TYPES: Record<string, string> = {
  'ssh-ed25519': 'ssh-ed25519-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256': 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384': 'ecdsa-sha2-nistp384-cert-v01@openssh.com',
};

function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

function u64(value: bigint): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(value);
  return out;
}

function str(value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([u32(bytes.length), bytes]);
}

/** Reads SSH wire strings from a public key blob. */
function readStrings(blob: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset < blob.length) {
    if (offset + 4 > blob.length) throw new PosternError('bad_request', 'SSH public key is truncated');
    const length = blob.readUInt32BE(offset);
    offset += 4;
    if (offset + length > blob.length) throw new PosternError('bad_request', 'SSH public key is truncated');
    parts.push(blob.subarray(offset, offset + length));
    offset += length;
  }
  return parts;
}

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
  private constructor(private readonly key: KeyObject, private readonly caBlob: Buffer) {}

  /** A new Ed25519 CA key as PKCS#8 PEM (the caller seals it). */
  static generateKey(): string {
    return generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }

  static fromPrivateKey(pem: string): SshCertificateAuthority {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') throw new PosternError('config_invalid', 'the SSH CA key must be Ed25519');
    const raw = Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x!, 'base64url');
    return new SshCertificateAuthority(key, Buffer.concat([str('ssh-ed25519'), str(raw)]));
  }

  /** The line for sshd's TrustedUserCAKeys. */
  publicKey(comment = 'postern-user-ca'): string {
    return `ssh-ed25519 ${this.caBlob.toString('base64')} ${comment}`;
  }

  /** A `…-cert-v01@openssh.com` line for `<key>-cert.pub`. */
  sign(request: SshCertificateRequest): string {
    const { type, fields } = parseSshPublicKey(request.publicKey);
    if (request.validBefore <= request.validAfter) throw new PosternError('bad_request', 'certificate validity ends before it starts');
    const certType = KEY_TYPES[type]!;
    const seconds = (date: Date) => BigInt(Math.floor(date.getTime() / 1000));
    const extensions = Object.fromEntries([...(request.extensions ?? DEFAULT_SSH_EXTENSIONS)].map((name) => [name, '']));
    const body = Buffer.concat([
      str(certType),
      str(randomBytes(32)),
      ...fields.map((field) => str(field)),
      u64(request.serial ?? randomBytes(8).readBigUInt64BE()),
      u32(USER_CERT),
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
