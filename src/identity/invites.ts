// Invitations to set a password: a stateless, HMAC-signed token bound to the user's current
// password hash, so it stops working the moment a password is set (one use) or when it expires.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { PosternError } from '../errors.js';

export interface InviteClaims {
  readonly userId: string;
  /** Digest of the password hash the invite was made for (none yet, or the old one). */
  readonly stamp: string;
  /** Seconds since the epoch. */
  readonly expiresAt: number;
}

export function passwordStamp(passwordHash: string | null): string {
  return createHash('sha256').update(`postern-invite:${passwordHash ?? ''}`).digest('base64url').slice(0, 22);
}

export function createInviteToken(key: Buffer, claims: InviteClaims): string {
  const payload = Buffer.from(JSON.stringify({ u: claims.userId, s: claims.stamp, e: claims.expiresAt })).toString('base64url');
  return `${payload}.${sign(key, payload)}`;
}

/** Checks signature and expiry; the caller compares `stamp` with the user's current password. */
export function verifyInviteToken(key: Buffer, token: string, now: Date): InviteClaims {
  const [payload, mac, ...rest] = token.split('.');
  if (!payload || !mac || rest.length > 0 || token.length > 1024) throw new PosternError('token_invalid', 'this invitation link is malformed');
  const expected = Buffer.from(sign(key, payload));
  const given = Buffer.from(mac);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw new PosternError('token_invalid', 'this invitation link is not valid');
  let parsed: { u?: unknown; s?: unknown; e?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof parsed;
  } catch {
    throw new PosternError('token_invalid', 'this invitation link is malformed');
  }
  if (typeof parsed.u !== 'string' || typeof parsed.s !== 'string' || typeof parsed.e !== 'number') throw new PosternError('token_invalid', 'this invitation link is malformed');
  if (parsed.e * 1000 <= now.getTime()) throw new PosternError('token_expired', 'this invitation link has expired: ask for a new one');
  return { userId: parsed.u, stamp: parsed.s, expiresAt: parsed.e };
}

function sign(key: Buffer, payload: string): string {
  return createHmac('sha256', key).update(payload).digest('base64url');
}
