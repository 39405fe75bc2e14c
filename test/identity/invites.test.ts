// Invitation tokens: signed, expiring, bound to the password they were issued against.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createInviteToken, passwordStamp, verifyInviteToken } from '../../src/identity/invites.js';
import { PosternError } from '../../src/errors.js';

const key = randomBytes(32);
const now = new Date('2026-11-26T12:00:00Z');
const claims = { userId: 'usr_1', stamp: passwordStamp(null), expiresAt: now.getTime() / 1000 + 3600 };

test('invites: round trip, and the stamp changes once a password is set', () => {
  const token = createInviteToken(key, claims);
  assert.deepEqual(verifyInviteToken(key, token, now), claims);
  assert.notEqual(passwordStamp('scrypt$after'), claims.stamp);
  assert.equal(passwordStamp(null), passwordStamp(null));
});

test('invites: tampered, foreign-key, malformed and expired tokens are refused with stable codes', () => {
  const token = createInviteToken(key, claims);
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof PosternError);
      return err.code;
    }
    return 'accepted';
  };
  const [payload, mac] = token.split('.');
  const forged = Buffer.from(JSON.stringify({ u: 'usr_admin', s: claims.stamp, e: claims.expiresAt })).toString('base64url');
  assert.equal(code(() => verifyInviteToken(key, `${forged}.${mac}`, now)), 'token_invalid');
  assert.equal(code(() => verifyInviteToken(randomBytes(32), token, now)), 'token_invalid');
  assert.equal(code(() => verifyInviteToken(key, `${payload}`, now)), 'token_invalid');
  assert.equal(code(() => verifyInviteToken(key, 'x'.repeat(2000), now)), 'token_invalid');
  assert.equal(code(() => verifyInviteToken(key, token, new Date(now.getTime() + 3601_000))), 'token_expired');
});
