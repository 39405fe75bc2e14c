// The identity assertion for upstreams (`X-Postern-Jwt-Assertion`): ES256 JWTs signed with the
// current key of a rotating set whose public half is served at `/.well-known/jwks.json`, and a
// cache that signs once per (session, socket) so the edge does no public-key crypto per request.
import { createPrivateKey, createPublicKey, sign, verify, type JsonWebKey } from 'node:crypto';
import {
  SignJWT,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importPKCS8,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
} from 'jose';
import { PosternError, errorMessage } from '../errors.js';

const ALG = 'ES256';

/** A signing key as stored (sealed) by the caller: its id and the private key as JWK or PKCS#8 PEM. */
export interface SigningKeyMaterial {
  readonly kid: string;
  readonly privateKey: JWK | string;
}

interface LoadedKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/** Who an assertion speaks for. */
export interface AssertionSubject {
  readonly sessionId: string;
  readonly userId: string;
  readonly email: string;
  readonly groups: readonly string[];
}

/** A new P-256 key; its kid is the RFC 7638 thumbprint of the public key. */
export async function generateSigningKey(): Promise<SigningKeyMaterial> {
  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, privateKey: { ...jwk, kid, alg: ALG } };
}

async function loadKey(material: SigningKeyMaterial): Promise<LoadedKey> {
  const { kid, privateKey } = material;
  if (typeof kid !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(kid)) {
    throw new PosternError('config_invalid', 'signing key id must be 1-128 printable ASCII characters');
  }
  try {
    // node:crypto parses either form and gives the public half; jose gets the key as PKCS#8.
    const keyObject =
      typeof privateKey === 'string'
        ? createPrivateKey(privateKey)
        : createPrivateKey({ key: privateKey as JsonWebKey, format: 'jwk' });
    if (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new Error('expected an EC P-256 private key');
    }
    const publicKey = createPublicKey(keyObject);
    // A JWK's x and y are taken as given: prove they belong to its d before publishing them.
    const probe = Buffer.from('postern signing key check');
    if (!verify('sha256', probe, publicKey, sign('sha256', probe, keyObject))) {
      throw new Error('its public part does not match its private part');
    }
    const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
    const key = await importPKCS8(keyObject.export({ format: 'pem', type: 'pkcs8' }).toString(), ALG);
    return { kid, privateKey: key, publicJwk: { kty, crv, x, y, kid, alg: ALG, use: 'sig' } };
  } catch (err) {
    throw new PosternError('config_invalid', `signing key ${kid} is not a usable ES256 private key: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

/**
 * The current signing key plus older ones still published so tokens they signed stay
 * verifiable until retired. Immutable: rotate and retire return a new set to swap in.
 */
export class SigningKeys {
  readonly #current: LoadedKey;
  readonly #previous: readonly LoadedKey[];

  private constructor(current: LoadedKey, previous: readonly LoadedKey[]) {
    const kids = [current, ...previous].map((key) => key.kid);
    const duplicate = kids.find((kid, i) => kids.indexOf(kid) !== i);
    if (duplicate !== undefined) throw new PosternError('config_invalid', `signing key id ${duplicate} appears twice`);
    this.#current = current;
    this.#previous = previous;
  }

  static async load(current: SigningKeyMaterial, previous: readonly SigningKeyMaterial[] = []): Promise<SigningKeys> {
    return new SigningKeys(await loadKey(current), await Promise.all(previous.map(loadKey)));
  }

  get currentKid(): string {
    return this.#current.kid;
  }

  /** Ids of all published keys, current first. */
  get kids(): string[] {
    return [this.#current, ...this.#previous].map((key) => key.kid);
  }

  /** `next` signs from now on; the current key stays published as the newest previous one. */
  async rotate(next: SigningKeyMaterial): Promise<SigningKeys> {
    return new SigningKeys(await loadKey(next), [this.#current, ...this.#previous]);
  }

  /** Stops publishing a previous key: tokens it signed no longer verify. */
  retire(kid: string): SigningKeys {
    if (kid === this.#current.kid) throw new PosternError('bad_request', `signing key ${kid} is current: rotate first`);
    if (!this.#previous.some((key) => key.kid === kid)) {
      throw new PosternError('not_found', `signing key ${kid} is not published`);
    }
    return new SigningKeys(
      this.#current,
      this.#previous.filter((key) => key.kid !== kid),
    );
  }

  /** The public JWK Set for `/.well-known/jwks.json`. */
  jwks(): JSONWebKeySet {
    return { keys: [this.#current, ...this.#previous].map((key) => ({ ...key.publicJwk })) };
  }

  /** Signs an assertion with the current key: iss, aud, sub, email, groups, sid, iat, exp. */
  sign(input: { issuer: string; audience: string; subject: AssertionSubject; issuedAt: number; expiresAt: number }): Promise<string> {
    const { subject } = input;
    return new SignJWT({ email: subject.email, groups: [...subject.groups], sid: subject.sessionId })
      .setProtectedHeader({ alg: ALG, kid: this.#current.kid, typ: 'JWT' })
      .setIssuer(input.issuer)
      .setAudience(input.audience)
      .setSubject(subject.userId)
      .setIssuedAt(input.issuedAt)
      .setExpirationTime(input.expiresAt)
      .sign(this.#current.privateKey);
  }
}

export interface AssertionCacheOptions {
  /** `iss`: the control plane's URL. */
  readonly issuer: string;
  /** Read on every lookup, so swapping in a rotated set takes effect at once. */
  readonly keys: () => SigningKeys;
  /** Lifetime of one assertion (default 300 s). */
  readonly lifetimeSeconds?: number;
  /** Sign anew when less than this is left (default 60 s). */
  readonly refreshMarginSeconds?: number;
  /** Assertions kept at most; the least recently used goes first (default 10,000). */
  readonly maxEntries?: number;
  readonly now?: () => Date;
}

interface Entry {
  readonly subject: AssertionSubject;
  readonly kid: string;
  /** Seconds since the epoch. */
  readonly expiresAt: number;
  readonly jwt: Promise<string>;
}

function sameSubject(a: AssertionSubject, b: AssertionSubject): boolean {
  return (
    a.userId === b.userId &&
    a.email === b.email &&
    a.groups.length === b.groups.length &&
    a.groups.every((group, i) => group === b.groups[i])
  );
}

/** One signed assertion per (session, audience), reused until it nears expiry. */
export class AssertionCache {
  readonly #issuer: string;
  readonly #keys: () => SigningKeys;
  readonly #lifetime: number;
  readonly #margin: number;
  readonly #maxEntries: number;
  readonly #now: () => Date;
  /** (session, audience) → entry; Map order = least recently used first. */
  readonly #entries = new Map<string, Entry>();
  readonly #bySession = new Map<string, Set<string>>();

  constructor(options: AssertionCacheOptions) {
    this.#issuer = options.issuer;
    this.#keys = options.keys;
    this.#lifetime = options.lifetimeSeconds ?? 300;
    this.#margin = options.refreshMarginSeconds ?? 60;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#now = options.now ?? (() => new Date());
    if (!Number.isSafeInteger(this.#lifetime) || this.#lifetime < 1) {
      throw new PosternError('config_invalid', 'assertion lifetime must be a positive whole number of seconds');
    }
    if (!Number.isSafeInteger(this.#margin) || this.#margin < 0 || this.#margin >= this.#lifetime) {
      throw new PosternError('config_invalid', 'assertion refresh margin must be whole seconds, below the lifetime');
    }
    if (!Number.isSafeInteger(this.#maxEntries) || this.#maxEntries < 1) {
      throw new PosternError('config_invalid', 'assertion cache size must be a positive integer');
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The assertion for `subject` at `audience`: cached while fresh, signed anew otherwise. */
  get(subject: AssertionSubject, audience: string): Promise<string> {
    const keys = this.#keys();
    const nowSeconds = Math.floor(this.#now().getTime() / 1000);
    const cacheKey = JSON.stringify([subject.sessionId, audience]);
    const cached = this.#entries.get(cacheKey);
    this.#entries.delete(cacheKey);
    if (
      cached !== undefined &&
      cached.kid === keys.currentKid &&
      cached.expiresAt - nowSeconds > this.#margin &&
      sameSubject(cached.subject, subject)
    ) {
      this.#entries.set(cacheKey, cached);
      return cached.jwt;
    }
    const expiresAt = nowSeconds + this.#lifetime;
    const jwt = keys.sign({ issuer: this.#issuer, audience, subject, issuedAt: nowSeconds, expiresAt });
    const entry: Entry = { subject: { ...subject, groups: [...subject.groups] }, kid: keys.currentKid, expiresAt, jwt };
    this.#entries.set(cacheKey, entry);
    this.#index(subject.sessionId).add(cacheKey);
    jwt.catch(() => {
      if (this.#entries.get(cacheKey) === entry) this.#remove(cacheKey);
    });
    this.#evict();
    return jwt;
  }

  /** Drops every assertion of a session (sign-out, revocation, changed identity). */
  forgetSession(sessionId: string): void {
    for (const cacheKey of this.#bySession.get(sessionId) ?? []) this.#entries.delete(cacheKey);
    this.#bySession.delete(sessionId);
  }

  #index(sessionId: string): Set<string> {
    let keys = this.#bySession.get(sessionId);
    if (keys === undefined) {
      keys = new Set();
      this.#bySession.set(sessionId, keys);
    }
    return keys;
  }

  #remove(cacheKey: string): void {
    const entry = this.#entries.get(cacheKey);
    if (entry === undefined) return;
    this.#entries.delete(cacheKey);
    const keys = this.#bySession.get(entry.subject.sessionId);
    keys?.delete(cacheKey);
    if (keys?.size === 0) this.#bySession.delete(entry.subject.sessionId);
  }

  #evict(): void {
    for (const cacheKey of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries) return;
      this.#remove(cacheKey);
    }
  }
}
