// The key that signs identity assertions for upstreams: created once, kept sealed in the store
// (like the CA key), shared by every node so any edge's assertion verifies against one JWKS.
import type { SecretRepo } from '../store/types.js';
import type { KeyCipher } from '../ca/key-cipher.js';
import { SigningKeys, generateSigningKey } from '../identity/assertion.js';
import type { SigningKeyMaterial } from '../identity/assertion.js';

const SECRET_NAME = 'identity/assertion-key';

export async function loadOrCreateSigningKeys(secrets: SecretRepo, cipher: KeyCipher): Promise<SigningKeys> {
  let sealed = await secrets.get(SECRET_NAME);
  if (sealed === undefined) {
    const fresh = await generateSigningKey();
    sealed = await secrets.putIfAbsent(SECRET_NAME, cipher.encrypt(Buffer.from(JSON.stringify(fresh)), SECRET_NAME));
  }
  const material = JSON.parse(cipher.decrypt(sealed, SECRET_NAME).toString('utf8')) as SigningKeyMaterial;
  return SigningKeys.load(material);
}
