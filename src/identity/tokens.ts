// Bearer secrets: random, prefixed so a leaked one is recognisable, and stored only as a hash.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export type TokenKind = 'pat1' | 'pjt1';

export function generateSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** An API token: `pat1_<secret>`. */
export function generateApiToken(): string {
  return `pat1_${generateSecret()}`;
}

/** SHA-256 hex: tokens carry 256 random bits, so a fast hash is enough (no password stretching). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function sameHash(a: string, b: string): boolean {
  if (!/^[0-9a-f]{64}$/i.test(a) || !/^[0-9a-f]{64}$/i.test(b)) return false;
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** `Authorization: Bearer <token>` → token, or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return match?.[1];
}
