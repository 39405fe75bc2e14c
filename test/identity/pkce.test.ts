// PKCE S256 for the loopback CLI sign-in: the RFC 7636 example, what a verifier must look like,
// and the check code both sides show.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PKCE_CHALLENGE_SHAPE, PKCE_VERIFIER_SHAPE, newPkceVerifier, pkceCheckCode, pkceMatches, s256Challenge } from '../../src/identity/pkce.js';

const RFC_VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const RFC_CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

test('pkce: the RFC 7636 appendix B example', () => {
  assert.equal(s256Challenge(RFC_VERIFIER), RFC_CHALLENGE);
  assert.equal(pkceMatches(RFC_VERIFIER, RFC_CHALLENGE), true);
});

test('pkce: only the verifier itself matches', () => {
  for (const wrong of [undefined, null, 42, '', RFC_CHALLENGE, `${RFC_VERIFIER}A`, RFC_VERIFIER.slice(1), 'a'.repeat(129), `${RFC_VERIFIER.slice(0, 42)}!`, newPkceVerifier()]) {
    assert.equal(pkceMatches(wrong, RFC_CHALLENGE), false, String(wrong));
  }
  assert.equal(pkceMatches(RFC_VERIFIER, 'not-a-challenge'), false);
  assert.equal(pkceMatches('~'.repeat(128), s256Challenge('~'.repeat(128))), true, 'unreserved characters, 128 long');
});

test('pkce: fresh verifiers are well formed and distinct; the check code is stable and readable', () => {
  const a = newPkceVerifier();
  assert.match(a, PKCE_VERIFIER_SHAPE);
  assert.notEqual(a, newPkceVerifier());
  assert.match(s256Challenge(a), PKCE_CHALLENGE_SHAPE);
  assert.match(pkceCheckCode(RFC_CHALLENGE), /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  assert.equal(pkceCheckCode(RFC_CHALLENGE), pkceCheckCode(RFC_CHALLENGE));
  assert.notEqual(pkceCheckCode(RFC_CHALLENGE), pkceCheckCode(s256Challenge(a)));
});
