// Per-socket SSH host keys derived, not stored: HKDF-SHA256 of one sealed seed and the socket
// id gives the Ed25519 key, so every edge presents the same key for a socket with no per-socket
// state. Encoded for ssh2 and OpenSSH as the unencrypted openssh-key-v1 format (PROTOCOL.key).
import { createPrivateKey, createPublicKey, hkdfSync, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { PosternError } from '../errors.js';
import { str, u32 } from './ssh-wire.js';

export interface SshHostKey {
  readonly privateKey: KeyObject;
  /** `ssh-ed25519 AAAA…` (no comment). */
  readonly publicKey: string;
  /** `-----BEGIN OPENSSH PRIVATE KEY-----…`, unencrypted. */
  readonly openSshPrivateKey: string;
}

/** Versioned, so a future derivation can never yield the same keys by accident. */
const SALT = Buffer.from('postern/ssh-host-key/v1');
/** PKCS#8 DER of an Ed25519 private key, up to the 32-byte seed (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
export const SSH_HOST_KEY_SEED_BYTES = 32;

export function deriveSshHostKey(seed: Buffer, socketId: string): SshHostKey {
  if (seed.length < SSH_HOST_KEY_SEED_BYTES) throw new PosternError('config_invalid', `the SSH host key seed must be at least ${SSH_HOST_KEY_SEED_BYTES} bytes`);
  if (socketId === '') throw new PosternError('bad_request', 'an SSH host key needs a socket id');
  return ed25519FromSecret(Buffer.from(hkdfSync('sha256', seed, SALT, Buffer.from(socketId, 'utf8'), 32)));
}

/** A fresh Ed25519 key in the same forms (ssh2's own generator writes keys its parser sometimes refuses). */
export function generateSshKey(): SshHostKey {
  return ed25519FromSecret(randomBytes(32));
}

function ed25519FromSecret(secret: Buffer): SshHostKey {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, secret]), format: 'der', type: 'pkcs8' });
  const raw = Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url');
  const blob = Buffer.concat([str('ssh-ed25519'), str(raw)]);
  return { privateKey, publicKey: `ssh-ed25519 ${blob.toString('base64')}`, openSshPrivateKey: openSshEd25519(blob, secret, raw) };
}

function openSshEd25519(publicBlob: Buffer, secret: Buffer, raw: Buffer): string {
  // The check integer only proves a passphrase right; a fixed one keeps the encoding a pure function of the key.
  const check = u32(raw.readUInt32BE(0));
  const keys = Buffer.concat([check, check, str('ssh-ed25519'), str(raw), str(Buffer.concat([secret, raw])), str('')]);
  // Padded with 1, 2, 3… to the block size of cipher "none" (8).
  const padding = Buffer.from(Array.from({ length: (8 - (keys.length % 8)) % 8 }, (_, i) => i + 1));
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    str('none'), str('none'), str(''),
    u32(1),
    str(publicBlob),
    str(Buffer.concat([keys, padding])),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g)!;
  return ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n');
}
