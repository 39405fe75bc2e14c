// Local-account passwords: the policy a new password must meet, and scrypt hashes encoded as
// `scrypt$N$r$p$salt$hash` so their cost can be raised later (needsRehash) without a migration.
import { randomBytes as nodeRandomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { PosternError } from '../errors.js';

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** OWASP's minimum for scrypt at 32 MiB of memory per hash (N=2^15, r=8, p=3). */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = Object.freeze({ N: 2 ** 15, r: 8, p: 3 });

export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 1024;

const SALT_BYTES = 16;
const KEY_BYTES = 32;
// Bounds on what a stored hash may ask for, so a corrupt row cannot make a login eat the machine.
const MAX_MEMORY = 256 * 2 ** 20;
const MAX_P = 16;
// Raw input bound in UTF-16 units, generous enough for any password the policy accepts.
const MAX_INPUT_UNITS = 4 * PASSWORD_MAX_LENGTH;

interface ParsedHash {
  readonly params: ScryptParams;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/** NFKC, as NIST SP 800-63B advises: the same password typed on any keyboard hashes alike. */
function normalize(password: string): string {
  return password.normalize('NFKC');
}

/** Throws PosternError('bad_request') saying which rule a new password breaks. */
export function checkPasswordPolicy(password: string): void {
  const chars = [...normalize(password)];
  if (chars.length < PASSWORD_MIN_LENGTH) {
    throw new PosternError(
      'bad_request',
      `password is too short: it must have at least ${PASSWORD_MIN_LENGTH} characters (it has ${chars.length})`,
    );
  }
  if (chars.length > PASSWORD_MAX_LENGTH) {
    throw new PosternError('bad_request', `password is too long: it may have at most ${PASSWORD_MAX_LENGTH} characters`);
  }
  if (new Set(chars).size === 1) {
    throw new PosternError('bad_request', 'password must not be a single character repeated');
  }
}

function validParams({ N, r, p }: ScryptParams): boolean {
  const int = (v: number, max: number): boolean => Number.isSafeInteger(v) && v >= 1 && v <= max;
  const powerOfTwo = N >= 2 && (N & (N - 1)) === 0;
  return int(N, 2 ** 30) && powerOfTwo && int(r, 64) && int(p, MAX_P) && 128 * N * r <= MAX_MEMORY;
}

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const { N, r, p } = params;
  return new Promise((resolve, reject) => {
    scrypt(normalize(password), salt, KEY_BYTES, { N, r, p, maxmem: 128 * N * r + 1024 * r * p + 2 ** 20 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

function parse(encoded: string): ParsedHash | undefined {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N = NaN, r = NaN, p = NaN] = parts.slice(1, 4).map((part) => (/^[1-9][0-9]{0,9}$/.test(part) ? Number(part) : NaN));
  const params = { N, r, p };
  if (!validParams(params)) return undefined;
  const b64url = /^[A-Za-z0-9_-]+$/;
  if (!b64url.test(parts[4]!) || !b64url.test(parts[5]!)) return undefined;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const hash = Buffer.from(parts[5]!, 'base64url');
  if (salt.length < SALT_BYTES || salt.length > 64 || hash.length !== KEY_BYTES) return undefined;
  return { params, salt, hash };
}

export interface HashPasswordOptions {
  readonly params?: ScryptParams;
  readonly randomBytes?: (size: number) => Buffer;
}

/** `scrypt$N$r$p$<salt>$<hash>`, salt and hash in base64url. Does not check the policy. */
export async function hashPassword(password: string, options: HashPasswordOptions = {}): Promise<string> {
  const params = options.params ?? DEFAULT_SCRYPT_PARAMS;
  if (!validParams(params)) throw new PosternError('config_invalid', 'scrypt parameters are out of range');
  if (password.length > MAX_INPUT_UNITS) {
    throw new PosternError('bad_request', `password is too long: it may have at most ${PASSWORD_MAX_LENGTH} characters`);
  }
  const salt = (options.randomBytes ?? nodeRandomBytes)(SALT_BYTES);
  const hash = await derive(password, salt, params);
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

// Verified against when an account has no password (or does not exist), so that answer takes
// as long as a wrong password and does not reveal which accounts exist.
const DUMMY_SALT = Buffer.alloc(SALT_BYTES, 0x5a);

/**
 * True when `password` matches `encoded`, compared in constant time. An absent or malformed
 * `encoded` still costs one hash at the default parameters and returns false.
 */
export async function verifyPassword(password: string, encoded: string | null | undefined): Promise<boolean> {
  const parsed = typeof encoded === 'string' ? parse(encoded) : undefined;
  // Over-long input is hashed as an empty password: same cost, never a match.
  const input = password.length > MAX_INPUT_UNITS ? '' : password;
  const target = parsed ?? { params: DEFAULT_SCRYPT_PARAMS, salt: DUMMY_SALT, hash: Buffer.alloc(KEY_BYTES) };
  const candidate = await derive(input, target.salt, target.params);
  const same = timingSafeEqual(candidate, target.hash);
  return same && parsed !== undefined && input === password;
}

/** True when `encoded` is malformed or uses other parameters than `params`: hash again at next login. */
export function needsRehash(encoded: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): boolean {
  const parsed = parse(encoded);
  if (parsed === undefined) return true;
  const { N, r, p } = parsed.params;
  return N !== params.N || r !== params.r || p !== params.p || parsed.salt.length !== SALT_BYTES;
}
