// Which services an agent may speak for, and the control plane's JWT-SVID key.
//
// The rule: an agent may obtain identities only for services in the namespace its *verified*
// attributes give it — `namespace`, vouched for by the admin on the join token
// (`--attr namespace=payroll`) or mapped from a claim of a trusted JWT issuer (a Kubernetes
// service-account token's namespace). Host facts the agent reports about itself never count,
// unless the admin said to trust them. The namespace is the unit of delegation the policies
// already use, and it needs no per-service admin step for replicas on many hosts (they all
// share one service identity, as SPIFFE intends); an agent without the attribute gets none.
import type { JWK } from 'jose';
import { JwtSvidSigner } from '../ca/index.js';
import type { KeyCipher } from '../ca/index.js';
import { generateSigningKey } from '../identity/index.js';
import type { SigningKeyMaterial } from '../identity/index.js';
import { PosternError } from '../errors.js';
import type { AgentRecord, SecretRepo } from '../store/index.js';
import { loadOrCreateSealed } from './server-keys.js';

export const SERVICE_NAMESPACE_ATTRIBUTE = 'namespace';

/** Throws forbidden unless `agent` may speak for services of `namespace`. */
export function assertMaySpeakFor(agent: AgentRecord, namespace: string, name: string): void {
  const granted = agent.attributes[SERVICE_NAMESPACE_ATTRIBUTE];
  if (granted === undefined) {
    throw new PosternError('forbidden', `agent ${agent.id} has no verified "${SERVICE_NAMESPACE_ATTRIBUTE}" attribute, so it may speak for no service (give it one on its join token with --attr ${SERVICE_NAMESPACE_ATTRIBUTE}=${namespace}, or map it from a JWT claim)`);
  }
  if (granted !== namespace) throw new PosternError('forbidden', `agent ${agent.id} may speak for services of namespace "${granted}", not for ${namespace}/${name}`);
}

/** The JWT-SVID signing key, sealed in the store and shared by every control node (first writer wins). */
export async function loadOrCreateJwtSvidSigner(secrets: SecretRepo, cipher: KeyCipher): Promise<JwtSvidSigner> {
  const raw = await loadOrCreateSealed(secrets, cipher, 'identity/jwt-svid-key', async () => Buffer.from(JSON.stringify(await generateSigningKey())));
  const material = JSON.parse(raw.toString('utf8')) as SigningKeyMaterial;
  if (typeof material.privateKey === 'string') throw new PosternError('internal', 'the JWT-SVID key is stored as a JWK');
  return JwtSvidSigner.load(material.kid, material.privateKey as JWK);
}
