// Postern's X.509 certificate authority: one ECDSA P-256 root per installation, its key
// sealed in the store; issues edge server certificates per host name and signs connector CSRs.
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import type { KeyCipher } from './key-cipher.js';
import { CLIENT_IP_CERT_LIFETIME_MS, CLIENT_IP_URI_PREFIX, clientIpUri } from './client-ip.js';
import { BACKDATE_MS, ECDSA_P256, SIGNING, subtle, x509 } from './x509.js';
import { PosternError } from '../errors.js';
import type { SecretRepo } from '../store/index.js';

const ROOT_SECRET = 'ca/root';
const DAY = 24 * 60 * 60 * 1000;
const EXTENDED_KEY_USAGES: Record<CsrSignRequest['usage'], x509.ExtendedKeyUsageType[]> = {
  client: [x509.ExtendedKeyUsage.clientAuth],
  server: [x509.ExtendedKeyUsage.serverAuth],
  mutual: [x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth],
};

export interface IssuedCertificate {
  readonly certPem: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface ServerCredentials {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notAfter: Date;
}

export interface CsrSignRequest {
  csrPem: string;
  commonName: string;
  uris?: string[];
  emails?: string[];
  lifetimeMs: number;
  /** `mutual`: both EKUs, for a service's X.509-SVID, which the mesh presents as client and as server certificate. */
  usage: 'client' | 'server' | 'mutual';
  /**
   * The address the edge takes as this client's (client-ip.ts): only the web terminal, dialing the
   * edge for a browser, asks for it, with a certificate of at most CLIENT_IP_CERT_LIFETIME_MS.
   */
  clientIp?: string;
}

interface StoredRoot {
  certPem: string;
  sealedKey: string;
}

export class CertificateAuthority {
  private readonly serverCerts = new Map<string, Promise<ServerCredentials>>();
  private serverKeys?: Promise<CryptoKeyPair>;

  private constructor(
    private readonly root: x509.X509Certificate,
    private readonly rootKey: CryptoKey,
    private readonly now: () => Date,
  ) {}

  /** Loads the root from the store, creating it on first start (first writer wins across nodes). */
  static async loadOrCreate(
    secrets: SecretRepo,
    cipher: KeyCipher,
    options: { name?: string; now?: () => Date } = {},
  ): Promise<CertificateAuthority> {
    const now = options.now ?? (() => new Date());
    let stored = await secrets.get(ROOT_SECRET);
    if (stored === undefined) {
      stored = await secrets.putIfAbsent(ROOT_SECRET, JSON.stringify(await createRoot(cipher, options.name ?? 'Postern Root CA', now())));
    }
    const parsed = JSON.parse(stored) as StoredRoot;
    const keyDer = cipher.decrypt(parsed.sealedKey, ROOT_SECRET);
    const rootKey = await subtle.importKey('pkcs8', keyDer, ECDSA_P256, false, ['sign']);
    return new CertificateAuthority(new x509.X509Certificate(parsed.certPem), rootKey, now);
  }

  get certificatePem(): string {
    return pem(this.root);
  }

  /** A certificate for exactly `hostname` (no wildcards: curl and browsers treat `*.localhost` unevenly). */
  serverCredentials(hostname: string): Promise<ServerCredentials> {
    const key = hostname.toLowerCase();
    const cached = this.serverCerts.get(key);
    if (cached) {
      return cached.then((creds) => (creds.notAfter.getTime() - this.now().getTime() > DAY ? creds : this.refreshServer(key)));
    }
    return this.refreshServer(key);
  }

  private refreshServer(hostname: string): Promise<ServerCredentials> {
    const pending = this.issueServer(hostname);
    this.serverCerts.set(hostname, pending);
    pending.catch(() => this.serverCerts.delete(hostname));
    return pending;
  }

  private async issueServer(hostname: string): Promise<ServerCredentials> {
    this.serverKeys ??= subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
    const keys = await this.serverKeys;
    const notBefore = new Date(this.now().getTime() - BACKDATE_MS);
    const notAfter = wholeSeconds(new Date(notBefore.getTime() + 30 * DAY));
    const altNames = isIpAddress(hostname) ? [{ type: 'ip' as const, value: hostname }] : [{ type: 'dns' as const, value: hostname }];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: `CN=${hostname}`,
      issuer: this.root.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: this.rootKey,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(altNames),
        await x509.AuthorityKeyIdentifierExtension.create(this.root),
      ],
    });
    const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey));
    const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
    return { certPem: pem(cert), keyPem, notAfter };
  }

  /** Verifies the CSR's self-signature, then issues for its key with the names the caller decides (never the CSR's). */
  async signCsr(request: CsrSignRequest): Promise<IssuedCertificate> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(request.csrPem);
    } catch (cause) {
      throw new PosternError('bad_request', 'certificate signing request is not valid PEM/DER', { cause });
    }
    if (!(await csr.verify())) throw new PosternError('bad_request', 'certificate signing request signature does not verify');
    // The edge believes this name: it is written from `clientIp` alone, never from `uris`.
    if ((request.uris ?? []).some((uri) => uri.toLowerCase().startsWith(CLIENT_IP_URI_PREFIX))) {
      throw new PosternError('internal', `${CLIENT_IP_URI_PREFIX}… is written by the CA from clientIp only`);
    }
    if (request.clientIp !== undefined && (request.usage !== 'client' || request.lifetimeMs > CLIENT_IP_CERT_LIFETIME_MS)) {
      throw new PosternError('internal', `a certificate that vouches for a client address is a client certificate of at most ${CLIENT_IP_CERT_LIFETIME_MS / 60_000} minutes`);
    }
    const notBefore = new Date(this.now().getTime() - BACKDATE_MS);
    const notAfter = wholeSeconds(new Date(this.now().getTime() + request.lifetimeMs));
    const serial = randomSerial();
    const altNames = [
      ...[...(request.uris ?? []), ...(request.clientIp === undefined ? [] : [clientIpUri(request.clientIp)])].map((value) => ({ type: 'url' as const, value })),
      ...(request.emails ?? []).map((value) => ({ type: 'email' as const, value })),
    ];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: `CN=${escapeDnValue(request.commonName)}`,
      issuer: this.root.subject,
      notBefore,
      notAfter,
      publicKey: csr.publicKey,
      signingKey: this.rootKey,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension(EXTENDED_KEY_USAGES[request.usage]),
        ...(altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNames)] : []),
        await x509.AuthorityKeyIdentifierExtension.create(this.root),
      ],
    });
    return { certPem: pem(cert), serial, notBefore, notAfter };
  }

  /** True when `certPem` was issued by this root (signature and validity at `now`). */
  verifiesIssued(certPem: string): boolean {
    try {
      const cert = new X509Certificate(certPem);
      const rootCert = new X509Certificate(this.certificatePem);
      const now = this.now().getTime();
      return cert.checkIssued(rootCert) && cert.verify(rootCert.publicKey) && Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);
    } catch {
      return false;
    }
  }
}

async function createRoot(cipher: KeyCipher, name: string, now: Date): Promise<StoredRoot> {
  const keys = (await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${escapeDnValue(name)}, O=Postern`,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + 10 * 365 * DAY),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey));
  return { certPem: pem(cert), sealedKey: cipher.encrypt(pkcs8, ROOT_SECRET) };
}

/** Certificates store whole seconds; report exactly what the certificate says. */
function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/** PEM with exactly one trailing newline, so certificates concatenate into valid chains. */
function pem(cert: x509.X509Certificate): string {
  return `${cert.toString('pem').trim()}\n`;
}

/** Positive 16-byte serial (first bit cleared so DER does not read it as negative). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function escapeDnValue(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}

function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}
