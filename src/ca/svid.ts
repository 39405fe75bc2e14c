// Service identities (SPIFFE X.509-SVIDs): the id of a service, the CSR an agent sends for it
// (naming the one URI SAN it asks for, so the CA can refuse a request for anything else), and
// the check every verifier of an SVID runs (the edge, the agent's L4 proxy): issued by our CA,
// valid now, exactly one URI SAN naming a service of our trust domain, and the agent that
// spoke for it (its CN) not revoked. Pure apart from the crypto.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { ECDSA_P256, SIGNING, subtle, x509 } from './x509.js';
import type { KeyAndCsr } from './csr.js';

const SEGMENT = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function serviceSpiffeId(trustDomain: string, namespace: string, name: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/svc/${name}`;
}

/** The namespace and name a service SPIFFE id of this trust domain names, or undefined. */
export function parseServiceSpiffeId(id: string, trustDomain: string): { namespace: string; name: string } | undefined {
  const prefix = `spiffe://${trustDomain}/ns/`;
  if (!id.startsWith(prefix)) return undefined;
  const [namespace, svc, name, ...rest] = id.slice(prefix.length).split('/');
  if (svc !== 'svc' || rest.length > 0 || !namespace || !name || !SEGMENT.test(namespace) || !SEGMENT.test(name)) return undefined;
  return { namespace, name };
}

/** A fresh P-256 key and a CSR that asks for `spiffeId` as its one URI SAN. */
export async function createSvidKeyAndCsr(spiffeId: string): Promise<KeyAndCsr> {
  const keys = (await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=svid', keys, signingAlgorithm: SIGNING,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }])],
  });
  const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
  return { keyPem, csrPem: csr.toString('pem') };
}

/** Every name the CSR asks for in its subjectAltName extension request (`url:…`, `dns:…`, …); undefined when it is not a CSR. */
export function csrRequestedNames(csrPem: string): string[] | undefined {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch {
    return undefined;
  }
  const names: string[] = [];
  for (const ext of csr.extensions) {
    if (ext.type !== x509.SubjectAlternativeNameExtension.NAME.toString() && !(ext instanceof x509.SubjectAlternativeNameExtension)) continue;
    const san = ext instanceof x509.SubjectAlternativeNameExtension ? ext : new x509.SubjectAlternativeNameExtension(ext.rawData);
    for (const name of san.names.items) names.push(`${name.type}:${name.value}`);
  }
  return names;
}

export type SvidRefusal = 'not-issued-by-ca' | 'expired' | 'not-a-service-identity' | 'agent-revoked';

export type SvidCheck =
  | { readonly ok: true; readonly spiffeId: string; readonly namespace: string; readonly name: string; readonly agentId: string }
  | { readonly ok: false; readonly reason: SvidRefusal; readonly detail: string };

export interface SvidCheckOptions {
  /** The CA certificates of the trust bundle. */
  readonly caPems: readonly string[];
  readonly trustDomain: string;
  readonly now: number;
  /** RevokedAgents.has on a node that follows the change feed. */
  readonly isAgentRevoked: (agentId: string) => boolean;
}

/** The URI SANs of a certificate as node:crypto prints them (`URI:a, URI:b`). */
function uriSans(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}

export function checkX509Svid(certPem: string, options: SvidCheckOptions): SvidCheck {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return { ok: false, reason: 'not-a-service-identity', detail: 'not an X.509 certificate' };
  }
  const issuer = options.caPems.map((pem) => new X509Certificate(pem)).find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
  if (!issuer) return { ok: false, reason: 'not-issued-by-ca', detail: 'not signed by a CA of the trust bundle' };
  if (Date.parse(cert.validFrom) > options.now || options.now > Date.parse(cert.validTo)) return { ok: false, reason: 'expired', detail: `valid from ${cert.validFrom} to ${cert.validTo}` };
  const uris = uriSans(cert);
  if (uris.length !== 1) return { ok: false, reason: 'not-a-service-identity', detail: `${uris.length} URI SANs (an SVID has exactly one)` };
  const service = parseServiceSpiffeId(uris[0]!, options.trustDomain);
  if (!service) return { ok: false, reason: 'not-a-service-identity', detail: `${uris[0]} is not a service of spiffe://${options.trustDomain}` };
  const agentId = /^CN=(agt_[a-z0-9_]+)$/m.exec(cert.subject)?.[1];
  if (!agentId) return { ok: false, reason: 'not-a-service-identity', detail: 'no agent named in the subject' };
  if (options.isAgentRevoked(agentId)) return { ok: false, reason: 'agent-revoked', detail: `agent ${agentId}, which speaks for ${uris[0]}, is revoked` };
  return { ok: true, spiffeId: uris[0]!, ...service, agentId };
}
