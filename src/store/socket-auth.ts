// Socket sign-in settings and e-mail normalization: what the store accepts (validated,
// trimmed, lower-cased, de-duplicated) and how it reads the stored JSON back (fail closed).

import { PosternError } from '../errors.js';
import { noSocketAuth } from './types.js';
import type { SocketAuth } from './types.js';

const labelPattern = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
/** A DNS name in lower case: one or more labels, 253 characters at most. */
const DOMAIN_PATTERN = new RegExp(`^(?=.{1,253}$)${labelPattern}(?:\\.${labelPattern})*$`);
/** Deliberately loose (providers send what they send): `local@domain`, no whitespace, one '@'. */
const EMAIL_PATTERN = /^[^\s@]{1,64}@[^\s@]{1,253}$/;
const maxAllowListEntries = 1000;

/** Trimmed and lower-cased; the one form the store keeps and looks up. */
export function normalizeEmail(email: string): string {
  return typeof email === 'string' ? email.trim().toLowerCase() : '';
}

/** Normalizes an e-mail address; throws PosternError('bad_request') when it is not one. */
export function checkEmail(email: unknown, field = 'email'): string {
  const normalized = typeof email === 'string' ? normalizeEmail(email) : '';
  if (!EMAIL_PATTERN.test(normalized)) {
    throw new PosternError('bad_request', `${field} is not a valid e-mail address`);
  }
  return normalized;
}

function checkList(value: unknown, field: string, check: (entry: string) => boolean, what: string): string[] {
  if (!Array.isArray(value)) throw new PosternError('bad_request', `${field} must be an array of strings`);
  if (value.length > maxAllowListEntries) {
    throw new PosternError('bad_request', `${field} has more than ${maxAllowListEntries} entries`);
  }
  const out: string[] = [];
  for (const entry of value) {
    if (typeof entry !== 'string') throw new PosternError('bad_request', `${field} must be an array of strings`);
    const normalized = entry.trim().toLowerCase();
    if (!check(normalized)) throw new PosternError('bad_request', `${field}: "${entry}" is not ${what}`);
    if (!out.includes(normalized)) out.push(normalized);
  }
  return out;
}

/**
 * Validates socket auth settings and returns their canonical form (frozen): entries trimmed,
 * lower-cased and de-duplicated in order. Throws PosternError('bad_request').
 */
export function normalizeSocketAuth(input: unknown): SocketAuth {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new PosternError('bad_request', 'socket auth must be an object');
  }
  const auth = input as Record<string, unknown>;
  if (typeof auth.cloudauth !== 'boolean') {
    throw new PosternError('bad_request', 'socket auth.cloudauth must be a boolean');
  }
  const allowedEmailDomains = checkList(
    auth.allowedEmailDomains ?? [],
    'socket auth.allowedEmailDomains',
    (d) => DOMAIN_PATTERN.test(d),
    'a domain name',
  );
  const allowedEmailAddresses = checkList(
    auth.allowedEmailAddresses ?? [],
    'socket auth.allowedEmailAddresses',
    (a) => EMAIL_PATTERN.test(a),
    'an e-mail address',
  );
  return freezeSocketAuth({ cloudauth: auth.cloudauth, allowedEmailDomains, allowedEmailAddresses });
}

export function freezeSocketAuth(auth: SocketAuth): SocketAuth {
  return Object.freeze({
    cloudauth: auth.cloudauth,
    allowedEmailDomains: Object.freeze([...auth.allowedEmailDomains]),
    allowedEmailAddresses: Object.freeze([...auth.allowedEmailAddresses]),
  });
}

/** The stored form. */
export function serializeSocketAuth(auth: SocketAuth): string {
  return JSON.stringify({
    cloudauth: auth.cloudauth,
    allowedEmailDomains: auth.allowedEmailDomains,
    allowedEmailAddresses: auth.allowedEmailAddresses,
  });
}

/** What a damaged auth column reads as: sign-in required and nobody listed (fail closed). */
const damagedSocketAuth: SocketAuth = freezeSocketAuth({ cloudauth: true, allowedEmailDomains: [], allowedEmailAddresses: [] });

/** Reads the stored JSON; anything unreadable fails closed rather than opening the socket. */
export function parseSocketAuth(text: string): SocketAuth {
  try {
    return normalizeSocketAuth(JSON.parse(text));
  } catch {
    return damagedSocketAuth;
  }
}

export const defaultSocketAuth: SocketAuth = freezeSocketAuth(noSocketAuth);
