// Bearer secrets (src/identity/tokens.ts, used by the CLI's admin token): formats, hashing and
// Authorization header parsing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bearerToken, generateApiToken, generateSecret, hashToken, sameHash } from '../../src/identity/tokens.js';

test('tokens: API tokens are pat1_ plus 256 random bits in base64url', () => {
  const tokens = new Set(Array.from({ length: 50 }, generateApiToken));
  assert.equal(tokens.size, 50);
  for (const token of tokens) assert.match(token, /^pat1_[A-Za-z0-9_-]{43}$/);
});

test('tokens: generateSecret length follows the byte count', () => {
  assert.match(generateSecret(), /^[A-Za-z0-9_-]{43}$/);
  assert.equal(generateSecret(16).length, 22);
  assert.equal(Buffer.from(generateSecret(48), 'base64url').length, 48);
  assert.notEqual(generateSecret(), generateSecret());
});

test('tokens: hashToken is lowercase SHA-256 hex of the UTF-8 text', () => {
  assert.equal(hashToken('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(hashToken(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.match(hashToken('pat1_é'), /^[0-9a-f]{64}$/);
  assert.notEqual(hashToken('pat1_a'), hashToken('pat1_b'));
});

test('tokens: sameHash compares hashes of equal and different values', () => {
  const h = hashToken('pat1_secret');
  assert.equal(sameHash(h, hashToken('pat1_secret')), true);
  assert.equal(sameHash(h, h.toUpperCase()), true);
  assert.equal(sameHash(h, hashToken('pat1_other')), false);
  assert.equal(sameHash(h, h.slice(0, 32)), false);
});

test('bearerToken: parses Authorization: Bearer <token>', () => {
  const cases: [string | undefined, string | undefined][] = [
    ['Bearer pat1_abc', 'pat1_abc'],
    ['bearer pat1_abc', 'pat1_abc'],
    ['BEARER   pat1_abc  ', 'pat1_abc'],
    ['Bearer\tpat1_abc', 'pat1_abc'],
    ['Bearer pjt1.x.y', 'pjt1.x.y'],
    [undefined, undefined],
    ['', undefined],
    ['Bearer', undefined],
    ['Bearer ', undefined],
    ['Bearer a b', undefined],
    ['Basic dXNlcjpwYXNz', undefined],
    ['xBearer pat1_abc', undefined],
    [' Bearer pat1_abc', undefined],
  ];
  for (const [header, token] of cases) assert.equal(bearerToken(header), token, JSON.stringify(header));
});
