// Public face of the CA: key sealing, the root authority, client-side CSRs.
export { createKeyCipher, loadOrCreateMasterKey } from './key-cipher.js';
export type { KeyCipher } from './key-cipher.js';
export { CertificateAuthority, BACKDATE_MS } from './authority.js';
export type { IssuedCertificate, ServerCredentials, CsrSignRequest } from './authority.js';
export { createKeyAndCsr } from './csr.js';
export type { KeyAndCsr } from './csr.js';
export { SshCertificateAuthority, DEFAULT_SSH_EXTENSIONS, parseSshPublicKey } from './ssh-cert.js';
export type { SshCertificateRequest } from './ssh-cert.js';
export { caPin } from './pin.js';
