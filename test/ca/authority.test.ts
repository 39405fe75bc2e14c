// CertificateAuthority: root persistence in a SecretRepo, server certificates for a host name,
// client certificates from CSRs — all checked with node:crypto's X509Certificate.
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { PosternError } from '../../src/errors.js';
import { CertificateAuthority, createKeyAndCsr, createKeyCipher } from '../../src/ca/index.js';
import { MemorySecrets } from './helpers.js';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const DAY = 86_400_000;

const masterKey = randomBytes(32);
const cipher = createKeyCipher(masterKey);
const secrets = new MemorySecrets();
const caPromise = CertificateAuthority.loadOrCreate(secrets, cipher, { name: 'Test Root' });

function assertIssuedBy(certPem: string, rootPem: string): X509Certificate {
  const cert = new X509Certificate(certPem);
  const root = new X509Certificate(rootPem);
  assert.equal(cert.checkIssued(root), true, 'issuer matches root subject');
  assert.equal(cert.verify(root.publicKey), true, 'signature by the root key');
  assert.equal(cert.ca, false);
  return cert;
}

test('CA: the root is a self-signed CA certificate, created once and reloaded', async () => {
  const ca = await caPromise;
  const root = new X509Certificate(ca.certificatePem);
  assert.equal(root.ca, true);
  assert.equal(root.checkIssued(root), true);
  assert.equal(root.verify(root.publicKey), true);
  assert.match(root.subject, /CN=Test Root/);
  assert.match(root.subject, /O=Postern/);
  assert.match(ca.certificatePem, /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
  assert.equal(secrets.writes, 1);
  const again = await CertificateAuthority.loadOrCreate(secrets, cipher);
  assert.equal(again.certificatePem, ca.certificatePem);
  assert.equal(secrets.writes, 1, 'second load writes nothing');
});

test('CA: concurrent first starts agree on one root (first writer wins)', async () => {
  const shared = new MemorySecrets();
  const [a, b, c] = await Promise.all([1, 2, 3].map(() => CertificateAuthority.loadOrCreate(shared, cipher)));
  assert.equal(shared.writes, 1);
  assert.equal(a!.certificatePem, b!.certificatePem);
  assert.equal(b!.certificatePem, c!.certificatePem);
});

test('CA: the stored value holds the certificate and a sealed key, never the plaintext key', async () => {
  await caPromise;
  const stored = secrets.values.get('ca/root')!;
  const parsed = JSON.parse(stored) as { certPem: string; sealedKey: string };
  assert.deepEqual(Object.keys(parsed).sort(), ['certPem', 'sealedKey']);
  assert.doesNotMatch(stored, /PRIVATE KEY/);
  const der = cipher.decrypt(parsed.sealedKey, 'ca/root');
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  assert.equal(key.asymmetricKeyType, 'ec');
  for (const encoding of ['base64', 'base64url', 'hex'] as const) assert.ok(!stored.includes(der.toString(encoding)), encoding);
  const pemBody = (key.export({ format: 'pem', type: 'pkcs8' }) as string).split('\n').slice(1, 3).join('');
  assert.ok(!stored.replace(/\\n/g, '').includes(pemBody));
  await assert.rejects(CertificateAuthority.loadOrCreate(secrets, createKeyCipher(randomBytes(32))),
    (err: unknown) => err instanceof PosternError && err.code === 'config_invalid');
});

test('CA: serverCredentials issues a serverAuth certificate for exactly that host', async () => {
  const ca = await caPromise;
  const creds = await ca.serverCredentials('a.localhost');
  const cert = assertIssuedBy(creds.certPem, ca.certificatePem);
  assert.equal(cert.subjectAltName, 'DNS:a.localhost');
  assert.match(cert.subject, /CN=a\.localhost/);
  assert.deepEqual(cert.keyUsage, [SERVER_AUTH]);
  assert.equal(cert.checkHost('a.localhost'), 'a.localhost');
  assert.equal(cert.checkHost('b.localhost'), undefined);
  assert.equal(cert.checkPrivateKey(createPrivateKey(creds.keyPem)), true);
  // X.509 times have whole seconds; notAfter is reported with the milliseconds it was computed with.
  assert.equal(Date.parse(cert.validTo), Math.floor(creds.notAfter.getTime() / 1000) * 1000);
  assert.ok(creds.notAfter.getTime() - Date.now() > 29 * DAY);
  assert.equal(ca.verifiesIssued(creds.certPem), true);
});

test('CA: server certificates are cached per host (any case) and IPs get an IP SAN', async () => {
  const ca = await caPromise;
  const first = await ca.serverCredentials('cache.localhost');
  assert.equal((await ca.serverCredentials('CACHE.localhost')).certPem, first.certPem);
  const other = await ca.serverCredentials('other.localhost');
  assert.notEqual(other.certPem, first.certPem);
  const ip = new X509Certificate((await ca.serverCredentials('127.0.0.1')).certPem);
  assert.equal(ip.subjectAltName, 'IP Address:127.0.0.1');
  assert.equal(ip.checkIP('127.0.0.1'), '127.0.0.1');
});

test('CA: a cached server certificate is renewed when less than a day is left', async () => {
  let now = new Date();
  const ca = await CertificateAuthority.loadOrCreate(secrets, cipher, { now: () => now });
  const first = await ca.serverCredentials('renew.localhost');
  now = new Date(first.notAfter.getTime() - 2 * DAY);
  assert.equal((await ca.serverCredentials('renew.localhost')).certPem, first.certPem);
  now = new Date(first.notAfter.getTime() - DAY / 2);
  const renewed = await ca.serverCredentials('renew.localhost');
  assert.notEqual(renewed.certPem, first.certPem);
  assert.ok(renewed.notAfter > first.notAfter);
});

test('CA: signCsr issues a client certificate with the caller’s names and lifetime', async () => {
  const now = new Date('2030-06-01T12:00:00.000Z');
  const ca = await CertificateAuthority.loadOrCreate(secrets, cipher, { now: () => now });
  const { keyPem, csrPem } = await createKeyAndCsr('name-the-connector-asked-for');
  assert.match(csrPem, /BEGIN CERTIFICATE REQUEST/);
  const issued = await ca.signCsr({
    csrPem, commonName: 'connector-7', uris: ['spiffe://postern/connector/c7'], emails: ['ops@example.com'], lifetimeMs: 7 * DAY, usage: 'client',
  });
  const cert = assertIssuedBy(issued.certPem, ca.certificatePem);
  assert.equal(cert.subject, 'CN=connector-7');
  assert.equal(cert.subjectAltName, 'URI:spiffe://postern/connector/c7, email:ops@example.com');
  assert.deepEqual(cert.keyUsage, [CLIENT_AUTH]);
  assert.equal(cert.checkPrivateKey(createPrivateKey(keyPem)), true, 'issued for the CSR key');
  assert.equal(issued.notAfter.getTime(), now.getTime() + 7 * DAY);
  assert.equal(Date.parse(cert.validTo), issued.notAfter.getTime());
  assert.equal(Date.parse(cert.validFrom), issued.notBefore.getTime());
  assert.ok(issued.notBefore < now);
  assert.equal(cert.serialNumber.toLowerCase(), issued.serial.toLowerCase());
  assert.equal(ca.verifiesIssued(issued.certPem), true);
  const later = await CertificateAuthority.loadOrCreate(secrets, cipher, { now: () => new Date(now.getTime() + 8 * DAY) });
  assert.equal(later.verifiesIssued(issued.certPem), false, 'expired by then');
});

test('CA: signCsr for server and mutual usage, no SAN when none is asked; DN specials are escaped', async () => {
  const ca = await caPromise;
  const { csrPem } = await createKeyAndCsr('x');
  const server = new X509Certificate((await ca.signCsr({ csrPem, commonName: 'svc', lifetimeMs: DAY, usage: 'server' })).certPem);
  assert.deepEqual(server.keyUsage, [SERVER_AUTH]);
  assert.equal(server.subjectAltName, undefined);
  const mutual = new X509Certificate((await ca.signCsr({ csrPem, commonName: 'svc', lifetimeMs: DAY, usage: 'mutual' })).certPem);
  assert.deepEqual(mutual.keyUsage, [CLIENT_AUTH, SERVER_AUTH], 'a service SVID serves as both ends of a mesh connection');
  const tricky = new X509Certificate((await ca.signCsr({ csrPem, commonName: 'a,O=Evil', lifetimeMs: DAY, usage: 'client' })).certPem);
  assert.doesNotMatch(tricky.subject, /^O=Evil$/m);
});

test('CA: a tampered or malformed CSR is bad_request', async () => {
  const ca = await caPromise;
  const { csrPem } = await createKeyAndCsr('connector-1');
  const der = Buffer.from(csrPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const at = der.indexOf(Buffer.from('connector-1'));
  assert.ok(at > 0);
  der[at] = 'C'.charCodeAt(0);
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`;
  const isBadRequest = (pattern: RegExp) => (err: unknown) => err instanceof PosternError && err.code === 'bad_request' && pattern.test(err.message);
  await assert.rejects(ca.signCsr({ csrPem: tampered, commonName: 'c', lifetimeMs: DAY, usage: 'client' }), isBadRequest(/does not verify/));
  for (const bad of ['', 'not a csr', ca.certificatePem.replace('CERTIFICATE', 'CERTIFICATE REQUEST')]) {
    await assert.rejects(ca.signCsr({ csrPem: bad, commonName: 'c', lifetimeMs: DAY, usage: 'client' }), isBadRequest(/./));
  }
});

test('CA: verifiesIssued is false for other roots and garbage', async () => {
  const ca = await caPromise;
  const stranger = await CertificateAuthority.loadOrCreate(new MemorySecrets(), cipher);
  const foreign = await stranger.serverCredentials('a.localhost');
  assert.equal(ca.verifiesIssued(foreign.certPem), false);
  assert.equal(ca.verifiesIssued('garbage'), false);
});
