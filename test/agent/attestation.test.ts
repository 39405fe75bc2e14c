// Attestation verification on the control plane: JWTs against a trusted issuer's keys (good,
// wrong issuer, wrong audience, expired, alg none, unknown kid, tampered) and one-time join
// tokens (reused, expired), with a real SQLite store.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose';
import type { JWK, JWTVerifyGetKey } from 'jose';
import { joinTokenVerifier, verifyIssuerJwt } from '../../src/control/agent-attestation.js';
import { hashToken } from '../../src/identity/index.js';
import { openStore, silentLogger } from '../../src/store/index.js';
import type { AgentIssuerRecord, Store } from '../../src/store/index.js';
import { isPosternError } from '../../src/errors.js';
import { tempDir } from '../helpers/util.js';

const now = new Date('2026-06-01T12:00:00Z');
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

describe('JWT attestation', () => {
  let keys: JWTVerifyGetKey;
  let privateKey: CryptoKey;
  let otherKey: CryptoKey;
  const issuer: AgentIssuerRecord = {
    id: 'ais_test', name: 'ci', issuer: 'https://ci.example', audience: 'postern', jwksUrl: 'https://ci.example/jwks', claims: { repo: 'repository', 'k8s.ns': 'kubernetes.io.namespace' },
    algorithms: ['ES256'], maxSkewSeconds: 30, trustFacts: false, createdAt: now.toISOString(),
  };

  before(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    privateKey = pair.privateKey;
    otherKey = (await generateKeyPair('ES256')).privateKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
    keys = createLocalJWKSet({ keys: [jwk] });
  });

  const sign = (claims: Record<string, unknown> = {}, options: { iss?: string; aud?: string; exp?: number | null; kid?: string; key?: CryptoKey } = {}) => {
    const jwt = new SignJWT({ repository: 'acme/payroll', kubernetes: { io: { namespace: 'prod' } }, ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? 'k1' })
      .setIssuer(options.iss ?? issuer.issuer).setAudience(options.aud ?? issuer.audience).setSubject('runner-7').setIssuedAt(seconds(now) - 10);
    if (options.exp !== null) jwt.setExpirationTime(options.exp ?? seconds(now) + 300);
    return jwt.sign(options.key ?? privateKey);
  };
  const refused = async (token: string, code: string, detail: RegExp) => {
    await assert.rejects(verifyIssuerJwt(token, issuer, keys, now), (err) => isPosternError(err) && err.code === code && detail.test(err.message));
  };

  test('a good token gives the mapped attributes and a key per (issuer, sub)', async () => {
    const verdict = await verifyIssuerJwt(await sign(), issuer, keys, now);
    assert.equal(verdict.attestationKey, 'jwt:ais_test:runner-7');
    assert.deepEqual(verdict.attributes, { 'jwt.issuer': 'ci', 'jwt.sub': 'runner-7', repo: 'acme/payroll', 'k8s.ns': 'prod' });
  });
  test('a wrong issuer is refused', async () => refused(await sign({}, { iss: 'https://evil.example' }), 'token_invalid', /claim "iss"/));
  test('a wrong audience is refused', async () => refused(await sign({}, { aud: 'someone-else' }), 'token_invalid', /claim "aud"/));
  test('an expired token is refused, past the skew', async () => {
    await refused(await sign({}, { exp: seconds(now) - 31 }), 'token_expired', /expired/);
    // Within the skew it passes: clocks drift.
    assert.ok(await verifyIssuerJwt(await sign({}, { exp: seconds(now) - 10 }), issuer, keys, now));
  });
  test('a token without exp is refused', async () => refused(await sign({}, { exp: null }), 'token_invalid', /"exp" is missing/));
  test('alg none is refused', async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const unsigned = `${b64({ alg: 'none' })}.${b64({ iss: issuer.issuer, aud: issuer.audience, sub: 'x', exp: seconds(now) + 60 })}.`;
    await refused(unsigned, 'token_invalid', /algorithm|not a valid JWT/);
  });
  test('an unknown kid is refused', async () => refused(await sign({}, { kid: 'k2' }), 'token_invalid', /no key/));
  test('a tampered payload or a foreign signature is refused', async () => {
    const [header, , signature] = (await sign()).split('.');
    const forged = Buffer.from(JSON.stringify({ iss: issuer.issuer, aud: issuer.audience, sub: 'admin', exp: seconds(now) + 60 })).toString('base64url');
    await refused(`${header}.${forged}.${signature}`, 'token_invalid', /signature/);
    await refused(await sign({}, { key: otherKey }), 'token_invalid', /signature/);
  });
  test('an issuer that allows no algorithm refuses everything', async () => {
    await assert.rejects(verifyIssuerJwt(await sign(), { ...issuer, algorithms: [] }, keys, now), (err) => isPosternError(err, 'token_invalid'));
  });
});

describe('join-token attestation', () => {
  let store: Store;
  let dir: Awaited<ReturnType<typeof tempDir>>;

  before(async () => {
    dir = await tempDir('postern-agent-');
    store = await openStore(join(dir.path, 'store.db'), { logger: silentLogger });
    await store.migrate();
  });
  after(async () => {
    await store.close();
    await dir.cleanup();
  });

  test('a token attests once; the second use is refused as used', async () => {
    await store.agents.tokens.create({ tokenHash: hashToken('s3cret'), agentName: 'web-1', attributes: { env: 'prod' }, expiresAt: new Date(now.getTime() + 60_000).toISOString() });
    const verifier = joinTokenVerifier(store);
    const verdict = await verifier.verify({ method: 'join_token', token: 'pat1.s3cret.pin', csr: 'x' }, now);
    assert.deepEqual(verdict.attributes, { env: 'prod' });
    const agent = await store.agents.agents.create({ name: verdict.name, method: 'join_token', attestationKey: verdict.attestationKey, attributes: verdict.attributes, selfAsserted: {}, spiffePrefix: 'spiffe://td/agent/' });
    assert.equal(agent.spiffeId, `spiffe://td/agent/${agent.id}`);
    await verdict.bind!(agent.id);
    await assert.rejects(verifier.verify({ method: 'join_token', token: 'pat1.s3cret.pin', csr: 'x' }, now), (err) => isPosternError(err, 'token_used'));
    // A race past verify still loses at consume (one conditional UPDATE).
    await assert.rejects(verdict.bind!('agt_other'), (err) => isPosternError(err, 'token_used'));
  });
  test('an expired or unknown token is refused', async () => {
    await store.agents.tokens.create({ tokenHash: hashToken('old'), agentName: 'web-2', expiresAt: new Date(now.getTime() - 1).toISOString() });
    const verifier = joinTokenVerifier(store);
    await assert.rejects(verifier.verify({ method: 'join_token', token: 'old', csr: 'x' }, now), (err) => isPosternError(err, 'token_expired'));
    await assert.rejects(verifier.verify({ method: 'join_token', token: 'nope', csr: 'x' }, now), (err) => isPosternError(err, 'token_invalid'));
  });
});
