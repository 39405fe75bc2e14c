// JWT-SVIDs: short-lived ES256 tokens naming a service (`sub` = its SPIFFE id) for one required
// audience, with the service's labels and the agent that asked as signed claims. Signed by a
// control-plane key of its own (never the user assertion key, so neither kind of token can be
// passed off as the other) and verified against the trust bundle's JWKS.
import { SignJWT, createLocalJWKSet, errors as joseErrors, importJWK, jwtVerify } from 'jose';
import type { CryptoKey, JSONWebKeySet, JWK } from 'jose';
import { PosternError } from '../errors.js';
import { parseServiceSpiffeId } from './svid.js';

const ALG = 'ES256';
/** The longest a JWT-SVID lives: a bearer token, so it must run out soon. */
export const JWT_SVID_MAX_TTL_SECONDS = 300;
const TYP = 'JWT';

export interface JwtSvidClaims {
  readonly spiffeId: string;
  readonly audience: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly agentId: string;
}

export class JwtSvidSigner {
  private constructor(private readonly kid: string, private readonly key: CryptoKey, private readonly publicJwk: JWK) {}

  /** `privateJwk`: an ES256 private JWK with its kid (identity's generateSigningKey makes one). */
  static async load(kid: string, privateJwk: JWK): Promise<JwtSvidSigner> {
    const key = (await importJWK({ ...privateJwk, alg: ALG }, ALG)) as CryptoKey;
    const { kty, crv, x, y } = privateJwk;
    return new JwtSvidSigner(kid, key, { kty, crv, x, y, kid, alg: ALG, use: 'sig' } as JWK);
  }

  jwks(): JSONWebKeySet {
    return { keys: [{ ...this.publicJwk }] };
  }

  async sign(claims: JwtSvidClaims, issuedAt: number, ttlSeconds: number): Promise<string> {
    if (ttlSeconds > JWT_SVID_MAX_TTL_SECONDS) throw new PosternError('bad_request', `a JWT-SVID lives at most ${JWT_SVID_MAX_TTL_SECONDS} s`);
    return new SignJWT({ labels: { ...claims.labels }, agent: claims.agentId })
      .setProtectedHeader({ alg: ALG, kid: this.kid, typ: TYP })
      .setSubject(claims.spiffeId)
      .setAudience(claims.audience)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + ttlSeconds)
      .sign(this.key);
  }
}

export interface JwtSvidVerifyOptions {
  readonly jwks: JSONWebKeySet;
  readonly audience: string;
  readonly trustDomain: string;
  /** Seconds since the epoch. */
  readonly now: number;
  readonly isAgentRevoked: (agentId: string) => boolean;
}

export interface VerifiedJwtSvid {
  readonly spiffeId: string;
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly agentId: string;
  readonly expiresAt: number;
}

/** One key set per trust bundle object: importing its keys for every token would cost more than verifying it. */
const keySets = new WeakMap<JwtSvidVerifyOptions['jwks'], ReturnType<typeof createLocalJWKSet>>();
function keySetOf(jwks: JwtSvidVerifyOptions['jwks']): ReturnType<typeof createLocalJWKSet> {
  let keys = keySets.get(jwks);
  if (!keys) keySets.set(jwks, (keys = createLocalJWKSet(jwks)));
  return keys;
}

/** Verifies a JWT-SVID; refusals are PosternError token_expired or token_invalid, classified by jose's error types. */
export async function verifyJwtSvid(token: string, options: JwtSvidVerifyOptions): Promise<VerifiedJwtSvid> {
  let payload;
  try {
    ({ payload } = await jwtVerify(token, keySetOf(options.jwks), {
      algorithms: [ALG], audience: options.audience, typ: TYP, requiredClaims: ['sub', 'exp', 'aud'], currentDate: new Date(options.now * 1000),
    }));
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw new PosternError('token_expired', 'JWT-SVID has expired', { cause: err });
    if (err instanceof joseErrors.JWTClaimValidationFailed) throw new PosternError('token_invalid', `JWT-SVID claim "${err.claim}" ${err.reason === 'missing' ? 'is missing' : 'does not match'}`, { cause: err });
    throw new PosternError('token_invalid', 'JWT-SVID does not verify against the trust bundle', { cause: err });
  }
  if (payload.exp! - (payload.iat ?? payload.exp!) > JWT_SVID_MAX_TTL_SECONDS) throw new PosternError('token_invalid', `JWT-SVID lives longer than ${JWT_SVID_MAX_TTL_SECONDS} s`);
  const service = parseServiceSpiffeId(payload.sub!, options.trustDomain);
  if (!service) throw new PosternError('token_invalid', `JWT-SVID subject ${payload.sub} is not a service of spiffe://${options.trustDomain}`);
  const agentId = typeof payload.agent === 'string' ? payload.agent : undefined;
  if (!agentId) throw new PosternError('token_invalid', 'JWT-SVID names no agent');
  if (options.isAgentRevoked(agentId)) throw new PosternError('token_invalid', `JWT-SVID of ${payload.sub}: agent ${agentId} is revoked`);
  const rawLabels = typeof payload.labels === 'object' && payload.labels !== null ? payload.labels as Record<string, unknown> : {};
  const labels = Object.fromEntries(Object.entries(rawLabels).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return { spiffeId: payload.sub!, ...service, labels, agentId, expiresAt: payload.exp! };
}
