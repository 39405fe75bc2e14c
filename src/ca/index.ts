// Public face of the CA: key sealing, the root authority, client-side CSRs, SSH certificates and host keys.
export { createKeyCipher, loadOrCreateMasterKey } from './key-cipher.js';
export type { KeyCipher } from './key-cipher.js';
export { CertificateAuthority } from './authority.js';
export { BACKDATE_MS } from './x509.js';
export type { IssuedCertificate, ServerCredentials, CsrSignRequest } from './authority.js';
export { CLIENT_IP_CERT_LIFETIME_MS, CLIENT_IP_URI_PREFIX, vouchedClientIp } from './client-ip.js';
export type { PeerCertificateText, VouchedClientIp } from './client-ip.js';
export { createKeyAndCsr } from './csr.js';
export type { KeyAndCsr } from './csr.js';
export { SshCertificateAuthority, DEFAULT_SSH_EXTENSIONS, parseSshPublicKey } from './ssh-cert.js';
export type { SshCertificateRequest, SshCertificateType } from './ssh-cert.js';
export { SSH_HOST_KEY_SEED_BYTES, deriveSshHostKey, generateSshKey } from './ssh-host-key.js';
export type { SshHostKey } from './ssh-host-key.js';
export { caPin } from './pin.js';
export { str as sshString } from './ssh-wire.js';
