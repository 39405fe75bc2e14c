// Client side of enrollment: a fresh ECDSA P-256 key and a CSR for it (the key never leaves the machine).
import { createPrivateKey } from 'node:crypto';
import { ECDSA_P256, SIGNING, subtle, x509 } from './x509.js';

export interface KeyAndCsr {
  readonly keyPem: string;
  readonly csrPem: string;
}

export async function createKeyAndCsr(commonName: string): Promise<KeyAndCsr> {
  const keys = (await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${commonName.replace(/([,+"\\<>;=])/g, '\\$1')}`,
    keys,
    signingAlgorithm: SIGNING,
  });
  const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
  return { keyPem, csrPem: csr.toString('pem') };
}
