// The browser's address in the web terminal's client certificate: the CA writes
// `urn:postern:client-ip:` only from signCsr's `clientIp` (which only the terminal's issuance
// passes), never from a CSR or a caller's `uris`; the edge believes it only from a certificate
// as short-lived as the terminal's and bound to a sign-in.
import assert from 'node:assert/strict';
import { X509Certificate, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { PosternError } from '../../src/errors.js';
import { BACKDATE_MS, CLIENT_IP_CERT_LIFETIME_MS, CertificateAuthority, createKeyAndCsr, createKeyCipher, vouchedClientIp } from '../../src/ca/index.js';
import type { PeerCertificateText } from '../../src/ca/index.js';
import { ECDSA_P256, SIGNING, subtle, x509 } from '../../src/ca/x509.js';
import { SESSION_URI_PREFIX } from '../../src/identity/index.js';
import { terminalCertificateRequest } from '../../src/control/terminal.js';
import { MemorySecrets } from './helpers.js';

const EMAIL = 'tess@corp.example';
const SESSION = `${SESSION_URI_PREFIX}sess_abc`;
const caPromise = CertificateAuthority.loadOrCreate(new MemorySecrets(), createKeyCipher(randomBytes(32)), { name: 'Test Root' });

/** A certificate as node:tls reports a peer's. */
function peerText(certPem: string): PeerCertificateText {
  const cert = new X509Certificate(certPem);
  return { subjectaltname: cert.subjectAltName ?? '', valid_from: cert.validFrom, valid_to: cert.validTo };
}

/** A CSR that asks for the client-ip name itself (a CA that copied CSR extensions would grant it). */
async function csrAskingForClientIp(ip: string): Promise<string> {
  const keys = (await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${EMAIL}`, keys, signingAlgorithm: SIGNING,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `urn:postern:client-ip:${ip}` }])],
  });
  return csr.toString('pem');
}

test('the terminal\'s issuance writes the browser\'s address, bound to the sign-in, for 5 minutes', async () => {
  const ca = await caPromise;
  const { csrPem } = await createKeyAndCsr(EMAIL);
  const request = terminalCertificateRequest({ email: EMAIL, sessionId: 'sess_abc' }, csrPem, '203.0.113.7');
  assert.equal(request.lifetimeMs, CLIENT_IP_CERT_LIFETIME_MS);
  const issued = await ca.signCsr(request);
  const san = new X509Certificate(issued.certPem).subjectAltName ?? '';
  assert.match(san, /URI:urn:postern:client-ip:203\.0\.113\.7/);
  assert.ok(san.includes(`URI:${SESSION}`), san);
  assert.deepEqual(vouchedClientIp(peerText(issued.certPem), { sessionId: 'sess_abc' }, new Date()), { kind: 'vouched', ip: '203.0.113.7' });
  const v6 = await ca.signCsr(terminalCertificateRequest({ email: EMAIL, sessionId: 'sess_abc' }, csrPem, '2001:db8::7'));
  assert.deepEqual(vouchedClientIp(peerText(v6.certPem), { sessionId: 'sess_abc' }, new Date()), { kind: 'vouched', ip: '2001:db8::7' });
});

test('every other issuance carries no address, whatever the CSR asks for', async () => {
  const ca = await caPromise;
  // As /me/certificates/tls issues: the caller's names, a CSR that asks for the client-ip name.
  const issued = await ca.signCsr({ csrPem: await csrAskingForClientIp('198.51.100.1'), commonName: EMAIL, emails: [EMAIL], uris: [SESSION], lifetimeMs: 60_000, usage: 'client' });
  const text = peerText(issued.certPem);
  assert.doesNotMatch(text.subjectaltname ?? '', /client-ip/);
  assert.deepEqual(vouchedClientIp(text, { sessionId: 'sess_abc' }, new Date()), { kind: 'none' });
});

test('the name is the CA\'s to write: not through `uris`, not on a long-lived or server certificate', async () => {
  const ca = await caPromise;
  const { csrPem } = await createKeyAndCsr(EMAIL);
  const base = { csrPem, commonName: EMAIL, emails: [EMAIL], lifetimeMs: 60_000, usage: 'client' as const };
  const internal = (err: unknown) => err instanceof PosternError && err.code === 'internal';
  await assert.rejects(ca.signCsr({ ...base, uris: [SESSION, 'urn:postern:client-ip:10.0.0.1'] }), internal);
  await assert.rejects(ca.signCsr({ ...base, uris: ['URN:Postern:Client-IP:10.0.0.1'] }), internal);
  await assert.rejects(ca.signCsr({ ...base, clientIp: '10.0.0.1', lifetimeMs: CLIENT_IP_CERT_LIFETIME_MS + 1 }), internal);
  await assert.rejects(ca.signCsr({ ...base, clientIp: '10.0.0.1', usage: 'server' }), internal);
  await assert.rejects(ca.signCsr({ ...base, clientIp: '10.0.0.1, URI:evil' }), /not an IP address/);
});

test('the edge believes the address only from a fresh certificate bound to a sign-in', () => {
  const issuedAt = Date.parse('2030-01-01T00:00:00Z');
  const cert = (san: string, lifeMs = CLIENT_IP_CERT_LIFETIME_MS): PeerCertificateText => ({
    subjectaltname: san, valid_from: new Date(issuedAt - BACKDATE_MS).toUTCString(), valid_to: new Date(issuedAt + lifeMs).toUTCString(),
  });
  const at = (minutes: number) => new Date(issuedAt + minutes * 60_000);
  const sans = `email:${EMAIL}, URI:${SESSION}, URI:urn:postern:client-ip:203.0.113.7`;
  const bound = { sessionId: 'sess_abc' };
  assert.deepEqual(vouchedClientIp(cert(sans), bound, at(1)), { kind: 'vouched', ip: '203.0.113.7' });
  assert.deepEqual(vouchedClientIp(cert(`email:${EMAIL}, URI:${SESSION}`), bound, at(1)), { kind: 'none' });
  const refused = (text: PeerCertificateText, sessionId: string | undefined, now: Date) => {
    const result = vouchedClientIp(text, { sessionId }, now);
    return result.kind === 'refused' ? result.reason : `not refused: ${JSON.stringify(result)}`;
  };
  assert.match(refused(cert(sans), undefined, at(1)), /not bound to a sign-in/);
  assert.match(refused(cert(sans, 24 * 60 * 60_000), 'sess_abc', at(1)), /valid for longer than the terminal's 5 minutes/);
  assert.match(refused(cert(sans), 'sess_abc', at(6)), /issued more than 5 minutes ago/);
  assert.match(refused(cert(`${sans}, URI:urn:postern:client-ip:10.0.0.1`), 'sess_abc', at(1)), /more than one/);
  assert.match(refused(cert(`URI:${SESSION}, URI:urn:postern:client-ip:nowhere`), 'sess_abc', at(1)), /not an IP address/);
});
