// SAML 2.0 service provider (@node-saml/node-saml) built from an identity provider record's
// config: SP metadata, redirect-binding AuthnRequests, and validation of POSTed responses
// (signed assertions required, audience, recipient, time window, InResponseTo), then the
// attributes mapped to a Postern identity. The request id travels in a signed state cookie
// (see sealSamlState), so no node keeps per-login state and any control node can finish a login.
import { X509Certificate, createHmac, createPrivateKey, randomBytes, timingSafeEqual } from 'node:crypto';
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import type { CacheProvider, Profile, SamlConfig } from '@node-saml/node-saml';
import { z } from 'zod';
import { PosternError } from '../errors.js';
import { mapClaims } from './claims.js';
import type { PosternIdentity } from './claims.js';
import { emailDomainsSchema } from './account-link.js';

/** Provider names appear in URLs (/auth/saml/<name>/acs). */
export const SAML_PROVIDER_NAME = /^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$/i;

const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const DEFAULT_CLOCK_SKEW_MS = 30_000;
/** Longest an assertion is taken after its IssueInstant, whatever its NotOnOrAfter says. */
const MAX_ASSERTION_AGE_MS = 10 * 60_000;

const httpUrl = z.string().max(2048).refine((value) => {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}, 'must be an http(s) URL');

const configSchema = z.object({
  /** The IdP's single sign-on URL (HTTP-Redirect binding). */
  entry_point: httpUrl,
  /** The IdP's signing certificate(s), PEM or bare base64; several during a rotation. */
  idp_cert: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(10)]),
  /** When set, the assertion's Issuer must be exactly this. */
  idp_issuer: z.string().min(1).max(1024).optional(),
  email_attribute: z.string().min(1).max(1024).optional(),
  groups_attribute: z.string().min(1).max(1024).optional(),
  name_attribute: z.string().min(1).max(1024).optional(),
  group_map: z.record(z.string(), z.union([z.string(), z.array(z.string())])).optional(),
  keep_unmapped_groups: z.boolean().optional(),
  /** Also require the signature on the whole Response (the assertion's is always required). */
  want_response_signed: z.boolean().optional(),
  force_authn: z.boolean().optional(),
  /** NameIDPolicy format asked for; null asks for none. Default: emailAddress. */
  identifier_format: z.string().min(1).max(1024).nullable().optional(),
  clock_skew_seconds: z.number().int().min(0).max(300).optional(),
  /** The SP's certificate; with the SP private key (the provider's sealed secret) requests are signed and encrypted assertions accepted. */
  sp_cert: z.string().min(1).max(20_000).optional(),
  /** SAML has no email_verified: an existing user is matched by email only in these domains. */
  trusted_email_domains: emailDomainsSchema.optional(),
  allowed_email_domains: emailDomainsSchema.optional(),
});

export type SamlProviderConfigInput = z.input<typeof configSchema>;

export interface SamlProviderSettings {
  readonly entryPoint: string;
  readonly idpCerts: readonly string[];
  readonly idpIssuer: string | undefined;
  readonly emailAttribute: string;
  readonly groupsAttribute: string | undefined;
  readonly nameAttribute: string | undefined;
  readonly groupMap: Readonly<Record<string, string | readonly string[]>> | undefined;
  readonly keepUnmappedGroups: boolean;
  readonly wantResponseSigned: boolean;
  readonly forceAuthn: boolean;
  readonly identifierFormat: string | null;
  readonly clockSkewMs: number;
  readonly spCert: string | undefined;
}

/** The SP's own key pair: signs AuthnRequests, decrypts EncryptedAssertions, published in the metadata. */
export interface SpKey {
  readonly privateKeyPem: string;
  readonly certPem: string;
}

/** The SP's own URLs for one provider: entity id (= metadata URL) and assertion consumer service. */
export interface SamlServiceProvider {
  readonly entityId: string;
  readonly acsUrl: string;
}

export function samlServiceProvider(controlOrigin: string, providerName: string): SamlServiceProvider {
  const base = `${controlOrigin.replace(/\/+$/, '')}/auth/saml/${encodeURIComponent(providerName)}`;
  return { entityId: `${base}/metadata`, acsUrl: `${base}/acs` };
}

/** PEM blocks (or one bare base64 body) → PEM certificates; throws when one does not parse. */
function readCertificates(input: string | readonly string[]): string[] {
  const pems: string[] = [];
  for (const item of typeof input === 'string' ? [input] : input) {
    const blocks = item.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
    if (blocks) pems.push(...blocks);
    else {
      const body = item.replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]+=*$/.test(body)) throw new PosternError('config_invalid', 'SAML idp_cert must be a PEM certificate or its base64 body');
      pems.push(`-----BEGIN CERTIFICATE-----\n${body.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----`);
    }
  }
  for (const pem of pems) {
    try {
      new X509Certificate(pem);
    } catch (cause) {
      throw new PosternError('config_invalid', 'SAML idp_cert does not hold a valid X.509 certificate', { cause });
    }
  }
  if (pems.length === 0) throw new PosternError('config_invalid', 'SAML idp_cert holds no certificate');
  return pems;
}

/** Validates a provider record's `config`; PosternError('config_invalid') says which field is wrong. */
export function parseSamlConfig(config: unknown): SamlProviderSettings {
  const parsed = configSchema.safeParse(config);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new PosternError('config_invalid', `SAML provider config: ${issue.path.join('.') || '(root)'} ${issue.message}`);
  }
  const c = parsed.data;
  return {
    entryPoint: c.entry_point,
    idpCerts: readCertificates(c.idp_cert),
    idpIssuer: c.idp_issuer,
    emailAttribute: c.email_attribute ?? 'email',
    groupsAttribute: c.groups_attribute,
    nameAttribute: c.name_attribute,
    groupMap: c.group_map,
    keepUnmappedGroups: c.keep_unmapped_groups ?? false,
    wantResponseSigned: c.want_response_signed ?? false,
    forceAuthn: c.force_authn ?? false,
    identifierFormat: c.identifier_format === undefined ? NAMEID_EMAIL : c.identifier_format,
    clockSkewMs: c.clock_skew_seconds === undefined ? DEFAULT_CLOCK_SKEW_MS : c.clock_skew_seconds * 1000,
    spCert: c.sp_cert === undefined ? undefined : onlyOne(readCertificates(c.sp_cert)),
  };
}

function onlyOne(pems: string[]): string {
  if (pems.length !== 1) throw new PosternError('config_invalid', 'SAML sp_cert must hold exactly one certificate');
  return pems[0]!;
}

/** The SP key pair from the settings' sp_cert and the unsealed private key; undefined when neither is set. */
export function samlSpKey(settings: SamlProviderSettings, privateKeyPem: string | undefined): SpKey | undefined {
  if (privateKeyPem === undefined && settings.spCert === undefined) return undefined;
  if (privateKeyPem === undefined || settings.spCert === undefined) {
    throw new PosternError('config_invalid', 'a SAML SP key needs both sp_cert (config) and the private key (the provider secret)');
  }
  let matches = false;
  try {
    const key = createPrivateKey(privateKeyPem);
    matches = new X509Certificate(settings.spCert).checkPrivateKey(key);
  } catch (cause) {
    throw new PosternError('config_invalid', 'the SAML SP private key is not a valid PEM private key', { cause });
  }
  if (!matches) throw new PosternError('config_invalid', 'the SAML SP private key does not match sp_cert');
  return { privateKeyPem, certPem: settings.spCert };
}

/** A cache that knows exactly one request id: the one the state cookie carried. */
function expectOnly(requestId: string | undefined, issuedAt: Date): CacheProvider {
  return {
    saveAsync: async () => null,
    getAsync: async (key) => (requestId !== undefined && key === requestId ? issuedAt.toISOString() : null),
    removeAsync: async () => null,
  };
}

function buildSaml(settings: SamlProviderSettings, sp: SamlServiceProvider, spKey: SpKey | undefined, extra: Partial<SamlConfig> = {}): SAML {
  return new SAML({
    ...(spKey ? { privateKey: spKey.privateKeyPem, publicCert: spKey.certPem, decryptionPvk: spKey.privateKeyPem } : {}),
    entryPoint: settings.entryPoint,
    idpCert: [...settings.idpCerts],
    issuer: sp.entityId,
    audience: sp.entityId,
    callbackUrl: sp.acsUrl,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: settings.wantResponseSigned,
    acceptedClockSkewMs: settings.clockSkewMs,
    maxAssertionAgeMs: MAX_ASSERTION_AGE_MS,
    validateInResponseTo: ValidateInResponseTo.always,
    requestIdExpirationPeriodMs: 15 * 60_000,
    identifierFormat: settings.identifierFormat,
    forceAuthn: settings.forceAuthn,
    disableRequestedAuthnContext: true,
    signatureAlgorithm: 'sha256',
    ...extra,
  });
}

/** The SP metadata XML an IdP administrator imports. */
export function samlMetadata(settings: SamlProviderSettings, sp: SamlServiceProvider, spKey?: SpKey): string {
  return buildSaml(settings, sp, spKey).generateServiceProviderMetadata(spKey?.certPem ?? null, spKey?.certPem ?? null);
}

/** A fresh AuthnRequest ID (an xsd:ID: starts with a letter or `_`). */
export function newSamlRequestId(random: (size: number) => Buffer = randomBytes): string {
  return `_${random(20).toString('hex')}`;
}

/** The IdP URL carrying a deflated AuthnRequest with this ID, and RelayState. */
export async function samlAuthorizeUrl(settings: SamlProviderSettings, sp: SamlServiceProvider, requestId: string, relayState: string, spKey?: SpKey): Promise<string> {
  const saml = buildSaml(settings, sp, spKey, { generateUniqueId: () => requestId, cacheProvider: expectOnly(requestId, new Date()) });
  return saml.getAuthorizeUrlAsync(relayState, undefined, {});
}

export interface SamlLogin {
  readonly identity: PosternIdentity;
  readonly issuer: string;
  readonly nameId: string;
  readonly sessionIndex: string | undefined;
}

type XmlJs = Record<string, unknown> & { $?: Record<string, string>; _?: string };

function firstChild(node: unknown, name: string): XmlJs | undefined {
  const list = (node as Record<string, unknown> | undefined)?.[name];
  return Array.isArray(list) ? (list[0] as XmlJs | undefined) : undefined;
}

/** Bearer confirmations of the (signed) assertion. */
function confirmations(profile: Profile): XmlJs[] {
  const assertion = profile.getAssertion?.()?.Assertion;
  const subject = firstChild(assertion, 'Subject');
  const list = subject?.SubjectConfirmation;
  if (!Array.isArray(list)) return [];
  return (list as XmlJs[]).filter((c) => c.$?.Method === 'urn:oasis:names:tc:SAML:2.0:cm:bearer');
}

const refused = (message: string, cause?: unknown) => new PosternError('identity_invalid', message, cause === undefined ? {} : { cause });

/**
 * Validates a base64 SAMLResponse (HTTP-POST binding) answering the AuthnRequest `requestId`.
 * Throws PosternError('identity_invalid') with the reason when anything is off.
 */
export async function validateSamlResponse(settings: SamlProviderSettings, sp: SamlServiceProvider, samlResponse: string, expected: { requestId: string; issuedAt: Date }, spKey?: SpKey): Promise<SamlLogin> {
  if (typeof samlResponse !== 'string' || samlResponse.length === 0 || !/^[A-Za-z0-9+/=\s]+$/.test(samlResponse)) {
    throw refused('the SAML response is missing or not base64');
  }
  const saml = buildSaml(settings, sp, spKey, { cacheProvider: expectOnly(expected.requestId, expected.issuedAt) });
  let profile: Profile | null;
  try {
    ({ profile } = await saml.validatePostResponseAsync({ SAMLResponse: samlResponse }));
  } catch (cause) {
    throw refused(`the SAML response was refused: ${(cause as Error).message ?? String(cause)}`.slice(0, 300), cause);
  }
  if (!profile) throw refused('the SAML response carries no assertion');
  if (profile.inResponseTo !== expected.requestId) throw refused('the SAML response does not answer this sign-in (InResponseTo)');

  // node-saml leaves these SAML Web SSO profile checks to the caller: the signed assertion's bearer
  // confirmation must name this request and this ACS; the issuer must be the configured IdP.
  const bearer = confirmations(profile).map((c) => firstChild(c, 'SubjectConfirmationData')?.$ ?? {});
  if (!bearer.some((data) => data.InResponseTo === expected.requestId)) {
    throw refused('the signed assertion does not answer this sign-in (SubjectConfirmationData InResponseTo)');
  }
  if (!bearer.some((data) => data.InResponseTo === expected.requestId && data.Recipient === sp.acsUrl)) {
    throw refused(`the signed assertion is meant for another recipient than ${sp.acsUrl}`);
  }
  if (settings.idpIssuer !== undefined && profile.issuer !== settings.idpIssuer) {
    throw refused('the SAML assertion comes from an unexpected issuer');
  }

  const attributes = (profile.attributes ?? {}) as Record<string, unknown>;
  const claims: Record<string, unknown> = { ...attributes, 'saml:NameID': profile.nameID, 'saml:Issuer': profile.issuer };
  let emailClaim = settings.emailAttribute;
  if (!Object.hasOwn(attributes, emailClaim) && profile.nameIDFormat === NAMEID_EMAIL && typeof profile.nameID === 'string') {
    emailClaim = 'saml:NameID';
  }
  const identity = mapClaims(claims, {
    emailClaim,
    nameClaim: settings.nameAttribute ?? 'name',
    subjectClaim: 'saml:NameID',
    issuerClaim: 'saml:Issuer',
    // SAML has no email_verified: only the provider's trusted_email_domains vouch for an address.
    emailVerifiedClaim: null,
    ...(settings.groupsAttribute !== undefined ? { groupsClaim: settings.groupsAttribute } : {}),
    ...(settings.groupMap !== undefined ? { groupMap: settings.groupMap } : {}),
    keepUnmappedGroups: settings.keepUnmappedGroups,
  });
  return { identity, issuer: profile.issuer, nameId: profile.nameID, sessionIndex: profile.sessionIndex };
}

/**
 * The issuer a SAML login's link is keyed by. The assertion's Issuer is authenticated only when
 * `idp_issuer` pins it; otherwise any IdP whose certificate is configured could name another's
 * entity id, so the link is scoped to this provider record.
 */
export function samlLinkIssuer(settings: SamlProviderSettings, providerId: string, assertedIssuer: string): string {
  return settings.idpIssuer ?? `urn:postern:saml:${providerId}:${assertedIssuer}`;
}

// ---- the state of one sign-in, kept in a signed, short-lived cookie on the control host ----

export interface SamlState {
  /** The RelayState sent to the IdP (names the cookie). */
  readonly relay: string;
  readonly provider: string;
  readonly requestId: string;
  readonly socket?: string;
  readonly returnTo: string;
  /** Unix seconds. */
  readonly issuedAt: number;
  readonly expiresAt: number;
}

const STATE_CONTEXT = 'postern-saml-state:v1.';
const RELAY_SHAPE = /^[A-Za-z0-9_-]{22}$/;

export const SAML_STATE_COOKIE_PREFIX = '__Host-postern_saml_';

export function newRelayState(random: (size: number) => Buffer = randomBytes): string {
  return random(16).toString('base64url');
}

export function isRelayState(value: unknown): value is string {
  return typeof value === 'string' && RELAY_SHAPE.test(value);
}

function mac(key: Buffer, payload: string): Buffer {
  return createHmac('sha256', key).update(STATE_CONTEXT + payload).digest();
}

export function sealSamlState(key: Buffer, state: SamlState): string {
  const payload = Buffer.from(JSON.stringify(state)).toString('base64url');
  return `${payload}.${mac(key, payload).toString('base64url')}`;
}

/** The state a cookie carries, when its MAC, relay, provider and lifetime check out. */
export function openSamlState(key: Buffer, sealed: string | undefined, expect: { relay: string; provider: string; now: Date }): SamlState {
  if (!sealed) throw refused('this sign-in was not started here or has expired (no sign-in cookie); please start again');
  const dot = sealed.indexOf('.');
  const payload = sealed.slice(0, dot);
  const tag = Buffer.from(sealed.slice(dot + 1), 'base64url');
  const want = mac(key, payload);
  if (dot <= 0 || tag.length !== want.length || !timingSafeEqual(tag, want)) throw refused('the sign-in cookie is not valid; please start again');
  let state: SamlState;
  try {
    state = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as SamlState;
  } catch (cause) {
    throw refused('the sign-in cookie is not valid; please start again', cause);
  }
  if (state.relay !== expect.relay || state.provider !== expect.provider) throw refused('the sign-in cookie belongs to another sign-in; please start again');
  if (!(state.expiresAt * 1000 > expect.now.getTime())) throw refused('this sign-in took too long and expired; please start again');
  return state;
}
