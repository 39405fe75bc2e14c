// Public face of identity: bearer tokens, local passwords, invites, login throttling, browser session
// cookies, safe redirects and login handoff, OIDC and GitHub sign-in, SAML, provider claims, account
// linking, upstream identity assertions and the identity headers upstreams receive.
export { generateApiToken, generateSecret, hashToken, sameHash, bearerToken } from './tokens.js';
export {
  DEFAULT_SCRYPT_PARAMS,
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  checkPasswordPolicy,
  hashPassword,
  needsRehash,
  verifyPassword,
} from './passwords.js';
export type { HashPasswordOptions, ScryptParams } from './passwords.js';
export { createInviteToken, passwordStamp, verifyInviteToken } from './invites.js';
export type { InviteClaims } from './invites.js';
export { LoginRateLimiter, SignInThrottle, loginRateLimitKey, rateLimitedError } from './rate-limit.js';
export type { LoginRateLimiterOptions, RateLimitResult, SignInAttempt, SignInGate, SignInThrottleOptions } from './rate-limit.js';
export { PKCE_CHALLENGE_SHAPE, PKCE_VERIFIER_SHAPE, newPkceVerifier, pkceCheckCode, pkceMatches, s256Challenge } from './pkce.js';
export { AssertionCache, SigningKeys, generateSigningKey } from './assertion.js';
export type { AssertionCacheOptions, AssertionSubject, SigningKeyMaterial } from './assertion.js';
export { IDENTITY_HEADERS, headerKey, identityHeaders, isPosternCookie, isReservedHeader, upstreamRequestHeaders, withoutPosternCookies } from './upstream-headers.js';
export type { ForwardingFacts, UpstreamIdentity } from './upstream-headers.js';
export {
  SESSION_COOKIE_NAME,
  clearSessionCookie,
  createSessionSecret,
  hashSessionSecret,
  parseCookies,
  readSessionCookie,
  serializeSessionCookie,
} from './session-cookie.js';
export type { CookieLimits, SessionSecret } from './session-cookie.js';
export { CONTROL_RETURN_PATHS, RETURN_TO_MAX_LENGTH, controlReturnTo, isDashboardPath, createHandoffCode, hashHandoffCode, safeReturnTo } from './redirects.js';
export type { HandoffCode, ReturnToOptions } from './redirects.js';
export { SESSION_URI_PREFIX, claimAt, mapClaims } from './claims.js';
export type { ClaimMapping, PosternIdentity } from './claims.js';
export { accountLinkSettings, decideAccountLink, emailDomain, emailDomainsSchema } from './account-link.js';
export type { AccountCandidate, AccountLinkDecision, AccountLinkInput, AccountLinkRefusal, AccountLinkSettings } from './account-link.js';
export {
  SAML_PROVIDER_NAME, SAML_STATE_COOKIE_PREFIX, isRelayState, newRelayState, newSamlRequestId, openSamlState, parseSamlConfig,
  samlAuthorizeUrl, samlLinkIssuer, samlMetadata, samlServiceProvider, samlSpKey, sealSamlState, validateSamlResponse,
} from './saml.js';
export type { SamlLogin, SamlProviderConfigInput, SamlProviderSettings, SamlServiceProvider, SamlState, SpKey } from './saml.js';
export { GithubClient, OidcClient, newTransaction, normalizeOidcConfig } from './oidc.js';
export type { AuthTransaction, GithubConfig, OidcConfig, SignInClient } from './oidc.js';
