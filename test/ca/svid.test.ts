// Service identities: the X.509-SVID check (one URI SAN of our trust domain, our CA, valid,
// its agent not revoked), the CSR's requested names, and JWT-SVIDs (tampered, wrong audience,
// expired, revoked agent, another trust domain: all refused).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { generateSigningKey } from '../../src/identity/index.js';
import {
  CertificateAuthority, JwtSvidSigner, checkX509Svid, createKeyAndCsr, createKeyCipher, createSvidKeyAndCsr, csrRequestedNames, parseServiceSpiffeId, serviceSpiffeId, verifyJwtSvid,
} from '../../src/ca/index.js';
import { isPosternError } from '../../src/errors.js';
import type { JWK } from 'jose';
import { MemorySecrets } from './helpers.js';

const TD = 'corp.test';
const payroll = serviceSpiffeId(TD, 'fin', 'payroll');
const caPromise = CertificateAuthority.loadOrCreate(new MemorySecrets(), createKeyCipher(randomBytes(32)), { name: 'SVID Test Root' });
const noneRevoked = (_agentId: string) => false;

test('service SPIFFE ids: built and parsed only in their own shape and trust domain', () => {
  assert.equal(payroll, 'spiffe://corp.test/ns/fin/svc/payroll');
  assert.deepEqual(parseServiceSpiffeId(payroll, TD), { namespace: 'fin', name: 'payroll' });
  for (const id of ['spiffe://other.test/ns/fin/svc/payroll', 'spiffe://corp.test/ns/fin/svc/payroll/x', 'spiffe://corp.test/agent/agt_1', 'spiffe://corp.test/ns/Fin/svc/payroll', 'spiffe://corp.test/ns/fin/svc/']) {
    assert.equal(parseServiceSpiffeId(id, TD), undefined, id);
  }
});

test('csrRequestedNames: what the CSR asks for, so a second URI SAN or another id can be refused', async () => {
  assert.deepEqual(csrRequestedNames((await createSvidKeyAndCsr(payroll)).csrPem), [`url:${payroll}`]);
  assert.deepEqual(csrRequestedNames((await createKeyAndCsr('plain')).csrPem), []);
  assert.equal(csrRequestedNames('not a csr'), undefined);
});

test('checkX509Svid: accepts our SVID, refuses another CA, two URI SANs, an agent identity, expiry and a revoked agent', async () => {
  const ca = await caPromise;
  const issue = async (uris: string[], commonName = 'agt_abc123') => (await ca.signCsr({ csrPem: (await createKeyAndCsr('x')).csrPem, commonName, uris, lifetimeMs: 60_000, usage: 'client' })).certPem;
  const options = { caPems: [ca.certificatePem], trustDomain: TD, now: Date.now(), isAgentRevoked: noneRevoked };
  const good = await issue([payroll]);
  assert.deepEqual(checkX509Svid(good, options), { ok: true, spiffeId: payroll, namespace: 'fin', name: 'payroll', agentId: 'agt_abc123' });

  const refusal = (pem: string, opts = options) => { const r = checkX509Svid(pem, opts); return r.ok ? 'ok' : r.reason; };
  assert.equal(refusal(await issue([payroll, serviceSpiffeId(TD, 'fin', 'other')])), 'not-a-service-identity');
  assert.equal(refusal(await issue([`spiffe://${TD}/agent/agt_abc123`])), 'not-a-service-identity');
  assert.equal(refusal(await issue([serviceSpiffeId('other.test', 'fin', 'payroll')])), 'not-a-service-identity');
  assert.equal(refusal(await issue([payroll], 'someone')), 'not-a-service-identity');
  assert.equal(refusal(good, { ...options, now: Date.now() + 120_000 }), 'expired');
  assert.equal(refusal(good, { ...options, isAgentRevoked: (id) => id === 'agt_abc123' }), 'agent-revoked');
  const otherCa = await CertificateAuthority.loadOrCreate(new MemorySecrets(), createKeyCipher(randomBytes(32)), { name: 'Other Root' });
  assert.equal(refusal(good, { ...options, caPems: [otherCa.certificatePem] }), 'not-issued-by-ca');
  assert.equal(refusal('garbage'), 'not-a-service-identity');
});

async function signer(): Promise<JwtSvidSigner> {
  const material = await generateSigningKey();
  return JwtSvidSigner.load(material.kid, material.privateKey as JWK);
}

test('JWT-SVID: verifies with sub, labels and agent; refuses tampered, wrong aud, expired, revoked, foreign key, too long a life', async () => {
  const keys = await signer();
  const now = Math.floor(Date.now() / 1000);
  const claims = { spiffeId: payroll, audience: 'orders', labels: { app: 'payroll', env: 'prod' }, agentId: 'agt_abc123' };
  const token = await keys.sign(claims, now, 300);
  const options = { jwks: keys.jwks(), audience: 'orders', trustDomain: TD, now, isAgentRevoked: noneRevoked };
  const verified = await verifyJwtSvid(token, options);
  assert.deepEqual(verified, { spiffeId: payroll, namespace: 'fin', name: 'payroll', labels: { app: 'payroll', env: 'prod' }, agentId: 'agt_abc123', expiresAt: now + 300 });

  const refused = async (t: string, opts: Parameters<typeof verifyJwtSvid>[1], code: 'token_invalid' | 'token_expired', message: RegExp) => {
    await assert.rejects(verifyJwtSvid(t, opts), (err) => isPosternError(err, code) && message.test(err.message));
  };
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), labels: { app: 'payroll', env: 'prod', admin: 'true' } })).toString('base64url');
  await refused(`${header}.${forged}.${signature}`, options, 'token_invalid', /does not verify/);
  await refused(token, { ...options, audience: 'billing' }, 'token_invalid', /claim "aud" does not match/);
  await refused(token, { ...options, now: now + 301 }, 'token_expired', /expired/);
  await refused(token, { ...options, isAgentRevoked: () => true }, 'token_invalid', /agent agt_abc123 is revoked/);
  await refused(token, { ...options, jwks: (await signer()).jwks() }, 'token_invalid', /does not verify/);
  await refused(token, { ...options, trustDomain: 'other.test' }, 'token_invalid', /not a service of spiffe:\/\/other\.test/);
  await assert.rejects(keys.sign(claims, now, 301), (err) => isPosternError(err, 'bad_request'));
});
