// Keys the control plane creates once and keeps sealed in the store (like the CA key), shared
// by every node: the assertion signing key (one JWKS for all edges), the invitation HMAC key,
// the SSH user CA, the SSH host CA and the seed of the ssh sockets' host keys.
import { randomBytes } from 'node:crypto';
import type { SecretRepo } from '../store/index.js';
import { SshCertificateAuthority, SSH_HOST_KEY_SEED_BYTES } from '../ca/index.js';
import type { KeyCipher } from '../ca/index.js';
import { SigningKeys, generateSigningKey } from '../identity/index.js';
import type { SigningKeyMaterial } from '../identity/index.js';

/** The sealed value under `name`, created by `make` on first use (first writer wins across nodes). */
export async function loadOrCreateSealed(secrets: SecretRepo, cipher: KeyCipher, name: string, make: () => Promise<Buffer>): Promise<Buffer> {
  let sealed = await secrets.get(name);
  if (sealed === undefined) sealed = await secrets.putIfAbsent(name, cipher.encrypt(await make(), name));
  return cipher.decrypt(sealed, name);
}

export async function loadOrCreateSigningKeys(secrets: SecretRepo, cipher: KeyCipher): Promise<SigningKeys> {
  const raw = await loadOrCreateSealed(secrets, cipher, 'identity/assertion-key', async () => Buffer.from(JSON.stringify(await generateSigningKey())));
  return SigningKeys.load(JSON.parse(raw.toString('utf8')) as SigningKeyMaterial);
}

export function loadOrCreateInviteKey(secrets: SecretRepo, cipher: KeyCipher): Promise<Buffer> {
  return loadOrCreateSealed(secrets, cipher, 'identity/invite-key', async () => randomBytes(32));
}

export async function loadOrCreateSshCa(secrets: SecretRepo, cipher: KeyCipher): Promise<SshCertificateAuthority> {
  const pem = await loadOrCreateSealed(secrets, cipher, 'ca/ssh-user', async () => Buffer.from(SshCertificateAuthority.generateKey()));
  return SshCertificateAuthority.fromPrivateKey(pem.toString('utf8'));
}

/** Certifies the host keys ssh sockets present; users trust it with one @cert-authority line. */
export async function loadOrCreateSshHostCa(secrets: SecretRepo, cipher: KeyCipher): Promise<SshCertificateAuthority> {
  const pem = await loadOrCreateSealed(secrets, cipher, 'ca/ssh-host', async () => Buffer.from(SshCertificateAuthority.generateKey()));
  return SshCertificateAuthority.fromPrivateKey(pem.toString('utf8'), { comment: 'postern-host-ca' });
}

/** What deriveSshHostKey turns into each ssh socket's host key (the same on every edge). */
export function loadOrCreateSshHostKeySeed(secrets: SecretRepo, cipher: KeyCipher): Promise<Buffer> {
  return loadOrCreateSealed(secrets, cipher, 'ca/ssh-host-key-seed', async () => randomBytes(SSH_HOST_KEY_SEED_BYTES));
}
