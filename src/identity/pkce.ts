// PKCE (RFC 7636, S256 only) for the loopback CLI sign-in: the CLI keeps a random verifier and
// sends only its hash in the start link, so a code that reaches anyone else (another process on
// the loopback port, a log, a crafted link) cannot be redeemed without the verifier.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** RFC 7636 §4.1: 43-128 unreserved characters. */
export const PKCE_VERIFIER_SHAPE = /^[A-Za-z0-9._~-]{43,128}$/;
/** base64url of a SHA-256: 43 characters. */
export const PKCE_CHALLENGE_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export function newPkceVerifier(): string {
  return randomBytes(32).toString('base64url');
}

export function s256Challenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** Whether `verifier` is well formed and hashes to `challenge` (compared in constant time). */
export function pkceMatches(verifier: unknown, challenge: string): boolean {
  if (typeof verifier !== 'string' || !PKCE_VERIFIER_SHAPE.test(verifier) || !PKCE_CHALLENGE_SHAPE.test(challenge)) return false;
  return timingSafeEqual(Buffer.from(s256Challenge(verifier)), Buffer.from(challenge));
}

/** A short code both the terminal and the approval page show, so a person can tell the sign-in is theirs. */
export function pkceCheckCode(challenge: string): string {
  const digest = createHash('sha256').update(`postern-check:${challenge}`).digest();
  const letters = 'BCDFGHJKLMNPQRSTVWXZ';
  const chars = [...digest.subarray(0, 8)].map((b) => letters[b % letters.length]!);
  return `${chars.slice(0, 4).join('')}-${chars.slice(4).join('')}`;
}
