// Upstream identity assertions: ES256 JWTs checked with jose's jwtVerify against the published
// JWK Set; tampering, expiry, wrong audience, key rotation and retirement; the signing cache.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { SignJWT, createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import { isPosternError } from '../../src/errors.js';
import { AssertionCache, SigningKeys, generateSigningKey, type AssertionSubject } from '../../src/identity/assertion.js';

const ISSUER = 'https://postern.localhost:8443';
const GRAFANA = 'https://grafana.localhost:8443';
const T0 = Date.parse('2030-01-01T00:00:00Z');
const joe: AssertionSubject = { sessionId: 'ses_1', userId: 'usr_joe', email: 'joe@corp.example', groups: ['support', 'ops'] };

function clock(startMs = T0): { now: () => Date; advance: (ms: number) => void } {
  let ms = startMs;
  return { now: () => new Date(ms), advance: (by) => (ms += by) };
}

async function verify(jwt: string, keys: SigningKeys, at: number, audience = GRAFANA) {
  return jwtVerify(jwt, createLocalJWKSet(keys.jwks()), {
    issuer: ISSUER,
    audience,
    algorithms: ['ES256'],
    currentDate: new Date(at),
  });
}

test('keys: generated keys are P-256 with a thumbprint kid; the JWK Set holds only public parts', async () => {
  const material = await generateSigningKey();
  assert.match(material.kid, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(typeof material.privateKey, 'object');
  const keys = await SigningKeys.load(JSON.parse(JSON.stringify(material)));
  const [jwk, ...rest] = keys.jwks().keys;
  assert.equal(rest.length, 0);
  assert.deepEqual(Object.keys(jwk!).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  assert.deepEqual([jwk!.kty, jwk!.crv, jwk!.alg, jwk!.use, jwk!.kid], ['EC', 'P-256', 'ES256', 'sig', material.kid]);
  assert.equal(keys.currentKid, material.kid);
});

test('assertion: verifies with the JWK Set and carries iss, aud, sub, email, groups, sid, iat, exp', async () => {
  const keys = await SigningKeys.load(await generateSigningKey());
  const time = clock();
  const cache = new AssertionCache({ issuer: ISSUER, keys: () => keys, now: time.now });
  const jwt = await cache.get(joe, GRAFANA);
  const { payload, protectedHeader } = await verify(jwt, keys, T0);
  assert.deepEqual(protectedHeader, { alg: 'ES256', kid: keys.currentKid, typ: 'JWT' });
  assert.deepEqual(payload, {
    iss: ISSUER,
    aud: GRAFANA,
    sub: 'usr_joe',
    email: 'joe@corp.example',
    groups: ['support', 'ops'],
    sid: 'ses_1',
    iat: T0 / 1000,
    exp: T0 / 1000 + 300,
  });
});

test('assertion: tampered, re-signed, unsigned, expired or mis-addressed tokens are refused', async () => {
  const keys = await SigningKeys.load(await generateSigningKey());
  const cache = new AssertionCache({ issuer: ISSUER, keys: () => keys, now: clock().now });
  const jwt = await cache.get(joe, GRAFANA);
  const [header, body, signature] = jwt.split('.') as [string, string, string];
  const forged = Buffer.from(JSON.stringify({ ...decodeJwt(jwt), email: 'ceo@corp.example' })).toString('base64url');
  await assert.rejects(verify(`${header}.${forged}.${signature}`, keys, T0), errors.JWSSignatureVerificationFailed);
  const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
  await assert.rejects(verify(`${header}.${body}.${flipped}`, keys, T0), errors.JWSSignatureVerificationFailed);
  const none = Buffer.from(JSON.stringify({ alg: 'none', kid: keys.currentKid })).toString('base64url');
  await assert.rejects(verify(`${none}.${body}.`, keys, T0), errors.JOSEAlgNotAllowed);
  // Another key claiming the published kid.
  const other = await generateSigningKey();
  const otherKeys = await SigningKeys.load({ ...other, kid: keys.currentKid });
  const impostor = await otherKeys.sign({ issuer: ISSUER, audience: GRAFANA, subject: joe, issuedAt: T0 / 1000, expiresAt: T0 / 1000 + 300 });
  await assert.rejects(verify(impostor, keys, T0), errors.JWSSignatureVerificationFailed);
  await assert.rejects(verify(jwt, keys, T0 + 301_000), errors.JWTExpired);
  await assert.rejects(verify(jwt, keys, T0, 'https://wiki.localhost:8443'), errors.JWTClaimValidationFailed);
  await assert.rejects(
    jwtVerify(jwt, createLocalJWKSet(keys.jwks()), { issuer: 'https://evil.example', audience: GRAFANA, currentDate: new Date(T0) }),
    errors.JWTClaimValidationFailed,
  );
});

test('rotation: old tokens verify until their key is retired; new tokens use the new key', async () => {
  const first = await SigningKeys.load(await generateSigningKey());
  let keys = first;
  const time = clock();
  const cache = new AssertionCache({ issuer: ISSUER, keys: () => keys, now: time.now });
  const before = await cache.get(joe, GRAFANA);
  keys = await first.rotate(await generateSigningKey());
  assert.deepEqual(keys.kids, [keys.currentKid, first.currentKid]);
  assert.equal(first.kids.length, 1, 'rotate returns a new set; the old one is unchanged');
  const after = await cache.get(joe, GRAFANA);
  assert.notEqual(after, before, 'a rotated key re-signs at once');
  assert.equal(decodeProtectedHeader(after).kid, keys.currentKid);
  assert.equal((await verify(before, keys, T0)).protectedHeader.kid, first.currentKid);
  await verify(after, keys, T0);
  const retired = keys.retire(first.currentKid);
  await assert.rejects(verify(before, retired, T0), errors.JWKSNoMatchingKey);
  await verify(after, retired, T0);
  assert.throws(() => retired.retire(retired.currentKid), (err) => isPosternError(err, 'bad_request'));
  assert.throws(() => retired.retire('nope'), (err) => isPosternError(err, 'not_found'));
});

test('keys: PKCS#8 PEM loads; wrong curves, public-only or non-EC keys and duplicate kids do not', async () => {
  const pem = (namedCurve: string): string =>
    generateKeyPairSync('ec', { namedCurve }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const keys = await SigningKeys.load({ kid: 'pem-1', privateKey: pem('prime256v1') });
  const jwt = await keys.sign({ issuer: ISSUER, audience: GRAFANA, subject: joe, issuedAt: T0 / 1000, expiresAt: T0 / 1000 + 60 });
  await verify(jwt, keys, T0);
  const material = await generateSigningKey();
  const { d: _d, ...publicOnly } = material.privateKey as Record<string, string>;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const stranger = (await generateSigningKey()).privateKey as Record<string, string>;
  const bad = [
    { kid: 'mismatch', privateKey: { ...(material.privateKey as Record<string, string>), x: stranger.x!, y: stranger.y! } },
    { kid: 'p384', privateKey: pem('secp384r1') },
    { kid: 'pub', privateKey: publicOnly },
    { kid: 'rsa', privateKey: rsa },
    { kid: 'junk', privateKey: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----' },
    { kid: '', privateKey: material.privateKey },
    { kid: 'has space', privateKey: material.privateKey },
  ];
  for (const entry of bad) {
    await assert.rejects(SigningKeys.load(entry), (err) => isPosternError(err, 'config_invalid'), entry.kid);
  }
  await assert.rejects(SigningKeys.load(material, [material]), (err) => isPosternError(err, 'config_invalid'));
});

test('cache: one signature per (session, socket), reused until within the margin of expiry', async () => {
  const keys = await SigningKeys.load(await generateSigningKey());
  const time = clock();
  const cache = new AssertionCache({ issuer: ISSUER, keys: () => keys, now: time.now, lifetimeSeconds: 300, refreshMarginSeconds: 60 });
  const [a, b] = await Promise.all([cache.get(joe, GRAFANA), cache.get(joe, GRAFANA)]);
  assert.equal(a, b, 'concurrent requests share one signature');
  const wiki = await cache.get(joe, 'https://wiki.localhost:8443');
  assert.notEqual(wiki, a);
  assert.equal(cache.size, 2);
  time.advance(239_000);
  assert.equal(await cache.get(joe, GRAFANA), a, '61 s left: reused');
  time.advance(1_000);
  const renewed = await cache.get(joe, GRAFANA);
  assert.notEqual(renewed, a, '60 s left: signed anew');
  assert.equal(decodeJwt(renewed).exp, T0 / 1000 + 240 + 300);
  assert.equal(await cache.get(joe, GRAFANA), renewed);
});

test('cache: a changed identity re-signs; forgetSession drops only that session', async () => {
  const keys = await SigningKeys.load(await generateSigningKey());
  const cache = new AssertionCache({ issuer: ISSUER, keys: () => keys, now: clock().now });
  const ann: AssertionSubject = { sessionId: 'ses_2', userId: 'usr_ann', email: 'ann@corp.example', groups: [] };
  const first = await cache.get(joe, GRAFANA);
  const annFirst = await cache.get(ann, GRAFANA);
  const groups = ['support'];
  const demoted = await cache.get({ ...joe, groups }, GRAFANA);
  assert.notEqual(demoted, first);
  assert.deepEqual(decodeJwt(demoted).groups, ['support']);
  groups.push('admin');
  assert.deepEqual(decodeJwt(await cache.get({ ...joe, groups }, GRAFANA)).groups, ['support', 'admin'], 'caller mutation is noticed');
  const current = await cache.get({ ...joe, groups }, GRAFANA);
  cache.forgetSession('ses_1');
  assert.equal(cache.size, 1);
  assert.notEqual(await cache.get({ ...joe, groups }, GRAFANA), current);
  assert.equal(await cache.get(ann, GRAFANA), annFirst);
  cache.forgetSession('unknown');
});

test('cache: bounded, least recently used first; a failed signature is not cached', async () => {
  const keys = await SigningKeys.load(await generateSigningKey());
  const cache = new AssertionCache({ issuer: ISSUER, keys: () => keys, now: clock().now, maxEntries: 2 });
  const s = (n: number): AssertionSubject => ({ ...joe, sessionId: `ses_${n}` });
  const one = await cache.get(s(1), GRAFANA);
  await cache.get(s(2), GRAFANA);
  assert.equal(await cache.get(s(1), GRAFANA), one, 'touch 1: 2 is now the least recently used');
  await cache.get(s(3), GRAFANA);
  assert.equal(cache.size, 2);
  assert.equal(await cache.get(s(1), GRAFANA), one);
  cache.forgetSession('ses_2');
  assert.equal(cache.size, 2, 'ses_2 was already evicted');
  for (let i = 10; i < 200; i++) await cache.get(s(i), GRAFANA);
  assert.equal(cache.size, 2);

  let failing = true;
  const broken = {
    currentKid: keys.currentKid,
    sign: (input: Parameters<SigningKeys['sign']>[0]) => (failing ? Promise.reject(new Error('hsm offline')) : keys.sign(input)),
  } as unknown as SigningKeys;
  const flaky = new AssertionCache({ issuer: ISSUER, keys: () => broken, now: clock().now });
  await assert.rejects(flaky.get(joe, GRAFANA), /hsm offline/);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(flaky.size, 0);
  failing = false;
  await verify(await flaky.get(joe, GRAFANA), keys, T0);
});

test('cache: options are validated', async () => {
  const keys = await SigningKeys.load(await generateSigningKey());
  const bad = [{ lifetimeSeconds: 0 }, { lifetimeSeconds: 60, refreshMarginSeconds: 60 }, { refreshMarginSeconds: -1 }, { maxEntries: 0 }];
  for (const options of bad) {
    assert.throws(() => new AssertionCache({ issuer: ISSUER, keys: () => keys, ...options }), (err) => isPosternError(err, 'config_invalid'));
  }
});

test('assertion: a token signed by hand with the right claims but HS256 is refused', async () => {
  const keys = await SigningKeys.load(await generateSigningKey());
  const hs = await new SignJWT({ email: 'joe@corp.example' })
    .setProtectedHeader({ alg: 'HS256', kid: keys.currentKid })
    .setIssuer(ISSUER)
    .setAudience(GRAFANA)
    .setExpirationTime(T0 / 1000 + 60)
    .sign(new TextEncoder().encode('x'.repeat(32)));
  await assert.rejects(verify(hs, keys, T0), errors.JOSEAlgNotAllowed);
});
