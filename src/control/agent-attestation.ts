// Server side of agent attestation: one verifier per method behind one interface, each turning
// the agent's evidence into a verdict (who it is across attestations, its verified attributes).
// Join tokens are one-time secrets; JWTs are checked with jose against the trusted issuer's
// JWKS (alg allow-list, exact iss, aud, exp required, bounded skew). Host facts are the
// agent's own word: kept apart as self-asserted unless the admin said to trust them.
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { PosternError } from '../errors.js';
import { hashToken } from '../identity/index.js';
import { AGENT_TOKEN_PREFIX } from '../api-client/index.js';
import type { AttestBody, HostFacts } from '../api-client/index.js';
import type { AgentAttestationMethod, AgentIssuerRecord, Store } from '../store/index.js';

export interface AttestationVerdict {
  readonly method: AgentAttestationMethod;
  /** Stable across attestations of the same party (see AgentRecord.attestationKey). */
  readonly attestationKey: string;
  readonly name: string;
  readonly attributes: Record<string, string>;
  readonly trustFacts: boolean;
  /** Runs once the agent record exists (a join token is consumed here); a failure undoes the agent. */
  readonly bind?: (agentId: string) => Promise<void>;
}

export interface AttestationVerifier<M extends AttestBody['method']> {
  readonly method: M;
  verify(evidence: Extract<AttestBody, { method: M }>, at: Date): Promise<AttestationVerdict>;
}

/** The secret of `pat1.<secret>.<pin>` (or a bare secret). */
export function agentTokenSecret(token: string): string {
  return token.startsWith(`${AGENT_TOKEN_PREFIX}.`) ? token.split('.')[1] ?? '' : token;
}

export function joinTokenVerifier(store: Store): AttestationVerifier<'join_token'> {
  return {
    method: 'join_token',
    async verify(evidence, at) {
      const tokenHash = hashToken(agentTokenSecret(evidence.token));
      const token = await store.agents.tokens.findByHash(tokenHash);
      if (!token) throw new PosternError('token_invalid', 'agent join token is not valid');
      if (token.usedAt !== null) throw new PosternError('token_used', `agent join token was already used (at ${token.usedAt}); a join token attests once: create a new one with \`postern agent token create\`, or attest with a JWT`);
      if (Date.parse(token.expiresAt) <= at.getTime()) throw new PosternError('token_expired', `agent join token expired at ${token.expiresAt}`);
      return {
        method: 'join_token', attestationKey: `token:${token.id}`, name: token.agentName, attributes: { ...token.attributes }, trustFacts: token.trustFacts,
        bind: async (agentId) => void (await store.agents.tokens.consume(tokenHash, agentId, at.toISOString())),
      };
    },
  };
}

export interface JwtVerifierOptions {
  /** The key set of an issuer; default: its JWKS URL, fetched and cached by jose. */
  readonly keys?: (issuer: AgentIssuerRecord) => JWTVerifyGetKey;
}

/** A claim at a dotted path, as a string when it is a scalar. */
export function claimAt(payload: JWTPayload, path: string): string | undefined {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
}

/** Why jose refused a token, in one line; classified by jose's error codes, never by message text. */
function refusal(err: unknown, issuer: AgentIssuerRecord): PosternError {
  const say = (code: 'token_invalid' | 'token_expired', detail: string) => new PosternError(code, `JWT from issuer "${issuer.name}" refused: ${detail}`, { cause: err });
  if (err instanceof joseErrors.JWTExpired) return say('token_expired', 'it has expired (exp)');
  if (err instanceof joseErrors.JWTClaimValidationFailed) return say('token_invalid', `claim "${err.claim}" ${err.reason === 'missing' ? 'is missing' : 'does not match'}${err.claim === 'iss' ? ` (expected ${issuer.issuer})` : err.claim === 'aud' ? ` (expected ${issuer.audience})` : ''}`);
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return say('token_invalid', `its algorithm is not one of ${issuer.algorithms.join(', ')}`);
  if (err instanceof joseErrors.JWKSNoMatchingKey) return say('token_invalid', 'no key of the issuer\'s JWKS matches its kid');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return say('token_invalid', 'its signature does not verify');
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JOSEError && err.code === 'ERR_JWKS_INVALID') return say('token_invalid', `the issuer's JWKS at ${issuer.jwksUrl} could not be read`);
  if (err instanceof joseErrors.JOSEError) return say('token_invalid', `it is not a valid JWT (${err.code})`);
  if (err instanceof TypeError || err instanceof Error) return say('token_invalid', `the issuer's JWKS at ${issuer.jwksUrl} could not be read (${err.message})`);
  return say('token_invalid', 'it could not be verified');
}

export function jwtVerifier(store: Store, options: JwtVerifierOptions = {}): AttestationVerifier<'jwt'> {
  // One remote key set per issuer record (a re-created issuer gets a new id, so a fresh set).
  const remote = new Map<string, JWTVerifyGetKey>();
  const keysOf = options.keys ?? ((issuer: AgentIssuerRecord) => {
    let keys = remote.get(issuer.id);
    if (!keys) remote.set(issuer.id, (keys = createRemoteJWKSet(new URL(issuer.jwksUrl), { timeoutDuration: 5_000, cooldownDuration: 30_000 })));
    return keys;
  });
  return {
    method: 'jwt',
    async verify(evidence, at) {
      const issuer = await store.agents.issuers.get(evidence.issuer);
      if (!issuer) throw new PosternError('token_invalid', `no trusted JWT issuer is named "${evidence.issuer}" (\`postern agent issuer ls\`)`);
      return verifyIssuerJwt(evidence.token, issuer, keysOf(issuer), at);
    },
  };
}

/** Verifies one JWT against one issuer: the pure-ish core of JWT attestation (the key set may fetch). */
export async function verifyIssuerJwt(token: string, issuer: AgentIssuerRecord, keys: JWTVerifyGetKey, at: Date): Promise<AttestationVerdict> {
  // An empty allow-list must refuse everything; jose would read [] as "any algorithm of the key".
  if (issuer.algorithms.length === 0) throw new PosternError('token_invalid', `JWT issuer "${issuer.name}" allows no algorithms`);
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keys, {
      issuer: issuer.issuer, audience: issuer.audience, algorithms: [...issuer.algorithms], clockTolerance: issuer.maxSkewSeconds,
      requiredClaims: ['exp', 'sub'], currentDate: at,
    }));
  } catch (err) {
    throw refusal(err, issuer);
  }
  const attributes: Record<string, string> = { 'jwt.issuer': issuer.name, 'jwt.sub': payload.sub! };
  for (const [attribute, claim] of Object.entries(issuer.claims)) {
    const value = claimAt(payload, claim);
    if (value !== undefined) attributes[attribute] = value;
  }
  return { method: 'jwt', attestationKey: `jwt:${issuer.id}:${payload.sub!}`, name: payload.sub!, attributes, trustFacts: issuer.trustFacts };
}

/** Host facts as attribute pairs, `host.<fact>`. */
export function factAttributes(facts: HostFacts | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(facts ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string').map(([k, v]) => [`host.${k}`, v]));
}
