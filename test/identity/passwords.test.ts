// Local passwords: policy messages, scrypt encoding, constant-time verification of good, bad,
// tampered and missing hashes, and when a stored hash asks to be upgraded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPosternError } from '../../src/errors.js';
import {
  DEFAULT_SCRYPT_PARAMS,
  checkPasswordPolicy,
  hashPassword,
  needsRehash,
  verifyPassword,
} from '../../src/identity/passwords.js';

// Cheap parameters keep the suite fast; the defaults are exercised once below.
const FAST = { N: 1024, r: 8, p: 1 };

function policyError(password: string): string {
  try {
    checkPasswordPolicy(password);
  } catch (err) {
    assert.ok(isPosternError(err, 'bad_request'));
    return err.message;
  }
  return '';
}

test('policy: length, repetition, and messages that say which rule failed', () => {
  assert.equal(policyError('correct horse battery'), '');
  assert.equal(policyError('ab'.repeat(6)), '', '12 characters, two distinct');
  assert.match(policyError('short pass'), /at least 12 characters \(it has 10\)/);
  assert.match(policyError('x'.repeat(1025) + 'y'), /at most 1024 characters/);
  assert.match(policyError('a'.repeat(40)), /single character repeated/);
  assert.match(policyError('🔑'.repeat(12)), /single character repeated/, 'counts code points, not UTF-16 units');
  assert.match(policyError('🔑🗝'.repeat(5)), /it has 10/);
  assert.equal(policyError('x'.repeat(1023) + 'y'), '', 'the maximum itself is fine');
});

test('hash: scrypt$N$r$p$salt$hash with the parameters used and a fresh salt each time', async () => {
  const a = await hashPassword('correct horse battery', { params: FAST });
  const b = await hashPassword('correct horse battery', { params: FAST });
  assert.match(a, /^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a, b);
  const fixed = () => Buffer.alloc(16, 7);
  assert.equal(
    await hashPassword('correct horse battery', { params: FAST, randomBytes: fixed }),
    await hashPassword('correct horse battery', { params: FAST, randomBytes: fixed }),
    'deterministic for a given salt',
  );
});

test('hash: refuses out-of-range parameters and absurd input', async () => {
  for (const params of [{ N: 1000, r: 8, p: 1 }, { N: 2 ** 24, r: 8, p: 1 }, { N: 1024, r: 0, p: 1 }, { N: 1024, r: 8, p: 1.5 }]) {
    await assert.rejects(hashPassword('correct horse battery', { params }), (err) => isPosternError(err, 'config_invalid'));
  }
  await assert.rejects(hashPassword('x'.repeat(100_000), { params: FAST }), (err) => isPosternError(err, 'bad_request'));
});

test('verify: right password, wrong password, Unicode normalization', async () => {
  const encoded = await hashPassword('correct horse battery', { params: FAST });
  assert.equal(await verifyPassword('correct horse battery', encoded), true);
  assert.equal(await verifyPassword('correct horse batterY', encoded), false);
  assert.equal(await verifyPassword('', encoded), false);
  const composed = await hashPassword('caf\u00e9 au lait!!', { params: FAST });
  assert.equal(await verifyPassword('cafe\u0301 au lait!!', composed), true, 'NFD input matches an NFC password');
});

test('verify: tampered, malformed and hostile stored hashes never match and never throw', async () => {
  const encoded = await hashPassword('correct horse battery', { params: FAST });
  const parts = encoded.split('$');
  const flip = (s: string): string => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
  const variants = [
    [...parts.slice(0, 5), flip(parts[5]!)].join('$'),
    [...parts.slice(0, 4), flip(parts[4]!), parts[5]].join('$'),
    ['scrypt', 2048, 8, 1, parts[4], parts[5]].join('$'),
    ['bcrypt', ...parts.slice(1)].join('$'),
    ['scrypt', 2 ** 22, 8, 1, parts[4], parts[5]].join('$'),
    ['scrypt', 1024, 8, 1, parts[4], parts[5]!.slice(0, 20)].join('$'),
    ['scrypt', '0x400', 8, 1, parts[4], parts[5]].join('$'),
    `${encoded}$extra`,
    '',
    'scrypt$$$$$',
  ];
  for (const variant of variants) {
    assert.equal(await verifyPassword('correct horse battery', variant), false, variant);
  }
});

test('verify: a missing hash costs a full default-cost hash and returns false', async () => {
  const started = process.hrtime.bigint();
  assert.equal(await verifyPassword('correct horse battery', undefined), false);
  assert.equal(await verifyPassword('correct horse battery', null), false);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(ms > 20, `two dummy verifications took ${ms.toFixed(1)} ms: they must not short-circuit`);
  assert.equal(await verifyPassword('x'.repeat(100_000), undefined), false);
});

test('needsRehash: other parameters or malformed values ask for a new hash', async () => {
  const fast = await hashPassword('correct horse battery', { params: FAST });
  assert.equal(needsRehash(fast, FAST), false);
  assert.equal(needsRehash(fast), true, 'below the defaults');
  assert.equal(needsRehash(fast, { ...FAST, p: 2 }), true);
  assert.equal(needsRehash('not a hash'), true);
  const strong = await hashPassword('correct horse battery');
  assert.ok(strong.startsWith(`scrypt$${DEFAULT_SCRYPT_PARAMS.N}$${DEFAULT_SCRYPT_PARAMS.r}$${DEFAULT_SCRYPT_PARAMS.p}$`));
  assert.equal(needsRehash(strong), false);
  assert.equal(await verifyPassword('correct horse battery', strong), true);
});
