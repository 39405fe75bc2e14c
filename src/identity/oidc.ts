// Sign-in through an external provider: any OpenID Connect issuer (openid-client v6: discovery,
// authorization code + PKCE, state and nonce checked, ID token validated), the presets `google`
// and `microsoft` (Entra ID, one tenant only), and GitHub (plain OAuth2: the email comes only from
// GET /user/emails, verified and primary). Each ends in a PosternIdentity via mapClaims.
import * as client from 'openid-client';
import { PosternError, errorMessage } from '../errors.js';
import { mapClaims } from './claims.js';
import type { ClaimMapping, PosternIdentity } from './claims.js';
import { checkIssuerUrl, loopbackOnlyFetch } from './issuer-url.js';

export type OidcPreset = 'google' | 'microsoft';

/** The plain (non-secret) settings of an `oidc` provider, as kept in its record's config. */
export interface OidcConfig {
  issuer: string;
  client_id: string;
  preset?: OidcPreset;
  /** Entra ID tenant: its GUID or a verified domain; required with the `microsoft` preset. */
  tenant?: string;
  /** Every scope to request (openid is always added); default: openid email profile, and groups with a groups claim. */
  scopes?: string[];
  email_claim?: string;
  groups_claim?: string;
  group_map?: Record<string, string | string[]>;
  keep_unmapped_groups?: boolean;
  /** A provider on this machine over plain http (loopback issuers only; see issuer-url.ts). */
  allow_insecure_issuer?: boolean;
}

/** The plain settings of a `github` provider. */
export interface GithubConfig {
  client_id: string;
  /** Take groups from the user's organisations (`org`) and teams (`org/team`); needs `read:org`. */
  groups_from_orgs?: boolean;
  /** When given, only these organisations (and their teams) become groups. */
  orgs?: string[];
  group_map?: Record<string, string | string[]>;
  keep_unmapped_groups?: boolean;
  /** For GitHub Enterprise Server; defaults to github.com. */
  web_base?: string;
  api_base?: string;
}

export const presetIssuers = {
  google: () => 'https://accounts.google.com',
  microsoft: (tenant: string) => `https://login.microsoftonline.com/${encodeURIComponent(tenant)}/v2.0`,
} as const;

/** What a sign-in carries from start to callback (kept sealed in a short-lived cookie). */
export interface AuthTransaction {
  state: string;
  nonce: string;
  codeVerifier: string;
}

export function newTransaction(): AuthTransaction {
  return { state: client.randomState(), nonce: client.randomNonce(), codeVerifier: client.randomPKCECodeVerifier() };
}

export interface SignInClient {
  /** The provider's authorization URL to send the browser to. */
  authorizationUrl(redirectUri: string, tx: AuthTransaction): Promise<URL>;
  /** Validates the callback (state, code, nonce, ID token) and returns who signed in. */
  finish(callbackUrl: URL, tx: AuthTransaction): Promise<PosternIdentity>;
}

function mappingOf(config: { group_map?: Record<string, string | string[]>; keep_unmapped_groups?: boolean }, groupsClaim?: string, emailClaim?: string): ClaimMapping {
  return {
    requireVerifiedEmail: true,
    ...(emailClaim ? { emailClaim } : {}),
    ...(groupsClaim ? { groupsClaim } : {}),
    ...(config.group_map ? { groupMap: config.group_map } : {}),
    ...(config.keep_unmapped_groups !== undefined ? { keepUnmappedGroups: config.keep_unmapped_groups } : {}),
  };
}

/** Turns provider errors (error=access_denied, bad state, bad ID token…) into one-line reasons. */
function signInError(err: unknown): PosternError {
  if (err instanceof PosternError) return err;
  if (err instanceof client.AuthorizationResponseError) {
    return new PosternError('identity_invalid', `the identity provider refused the sign-in: ${err.error}${err.error_description ? ` (${err.error_description})` : ''}`, { cause: err });
  }
  if (err instanceof client.ResponseBodyError) {
    return new PosternError('identity_invalid', `the identity provider rejected the code: ${err.error}${err.error_description ? ` (${err.error_description})` : ''}`, { cause: err });
  }
  const code = (err as { code?: unknown }).code;
  // openid-client wraps the precise reason ("unexpected \"state\" response parameter value", a bad nonce…) in the cause.
  const cause = (err as { cause?: unknown }).cause;
  const detail = cause instanceof Error && cause.message ? `${errorMessage(err)}: ${cause.message}` : errorMessage(err);
  return new PosternError('identity_invalid', `sign-in could not be verified: ${detail}${typeof code === 'string' ? ` [${code}]` : ''}`, { cause: err });
}

/**
 * The scopes of an authorization request. A groups claim usually comes only with the `groups`
 * scope, so it is asked for by default — not for the presets: Google and Entra ID refuse scopes
 * they do not know (Entra ID sends groups as configured in the app registration).
 */
export function requestedScopes(config: Pick<OidcConfig, 'scopes' | 'groups_claim' | 'preset'>): string[] {
  const wanted = config.scopes ?? ['email', 'profile', ...(config.groups_claim && !config.preset ? ['groups'] : [])];
  return [...new Set(['openid', ...wanted])];
}

export class OidcClient implements SignInClient {
  #configuration: Promise<client.Configuration> | undefined;

  constructor(
    private readonly config: OidcConfig,
    private readonly clientSecret: string | undefined,
    private readonly fetchImpl?: typeof fetch,
  ) {}

  /** Discovery once per client object; a failed discovery is retried on the next sign-in. */
  private configuration(): Promise<client.Configuration> {
    this.#configuration ??= (async () => {
      const issuer = checkIssuerUrl(this.config.issuer, this.config.allow_insecure_issuer === true);
      const options: client.DiscoveryRequestOptions = {};
      if (issuer.protocol === 'http:') {
        options.execute = [client.allowInsecureRequests];
        options[client.customFetch] = loopbackOnlyFetch(this.fetchImpl ?? fetch) as never;
      } else if (this.fetchImpl) options[client.customFetch] = this.fetchImpl as never;
      try {
        return await client.discovery(issuer, this.config.client_id, this.clientSecret, undefined, options);
      } catch (err) {
        throw new PosternError('identity_invalid', `cannot reach the identity provider at ${this.config.issuer}: ${errorMessage(err)}`, { cause: err, retryable: true });
      }
    })();
    this.#configuration.catch(() => {
      this.#configuration = undefined;
    });
    return this.#configuration;
  }

  async authorizationUrl(redirectUri: string, tx: AuthTransaction): Promise<URL> {
    const configuration = await this.configuration();
    return client.buildAuthorizationUrl(configuration, {
      redirect_uri: redirectUri,
      scope: requestedScopes(this.config).join(' '),
      state: tx.state,
      nonce: tx.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(tx.codeVerifier),
      code_challenge_method: 'S256',
    });
  }

  async finish(callbackUrl: URL, tx: AuthTransaction): Promise<PosternIdentity> {
    const configuration = await this.configuration();
    let claims: Record<string, unknown>;
    try {
      const tokens = await client.authorizationCodeGrant(configuration, callbackUrl, {
        pkceCodeVerifier: tx.codeVerifier,
        expectedState: tx.state,
        expectedNonce: tx.nonce,
        idTokenExpected: true,
      });
      claims = { ...(tokens.claims() ?? {}) };
      const emailClaim = this.config.email_claim ?? 'email';
      const wanted = [emailClaim, ...(this.config.groups_claim ? [this.config.groups_claim] : [])];
      // Some providers put email or groups only in UserInfo: fill what the ID token lacks.
      if (wanted.some((name) => claims[name] === undefined) && configuration.serverMetadata().userinfo_endpoint && typeof claims.sub === 'string') {
        const info = await client.fetchUserInfo(configuration, tokens.access_token, claims.sub);
        for (const [key, value] of Object.entries(info)) if (claims[key] === undefined) claims[key] = value;
      }
    } catch (err) {
      throw signInError(err);
    }
    return mapClaims(claims, mappingOf(this.config, this.config.groups_claim, this.config.email_claim));
  }
}

export class GithubClient implements SignInClient {
  private readonly web: string;
  private readonly api: string;
  private readonly fetch: typeof fetch;

  constructor(
    private readonly config: GithubConfig,
    private readonly clientSecret: string | undefined,
    fetchImpl?: typeof fetch,
  ) {
    this.web = (config.web_base ?? 'https://github.com').replace(/\/$/, '');
    this.api = (config.api_base ?? 'https://api.github.com').replace(/\/$/, '');
    this.fetch = fetchImpl ?? fetch;
  }

  async authorizationUrl(redirectUri: string, tx: AuthTransaction): Promise<URL> {
    const url = new URL(`${this.web}/login/oauth/authorize`);
    url.searchParams.set('client_id', this.config.client_id);
    url.searchParams.set('redirect_uri', redirectUri);
    url.searchParams.set('scope', this.config.groups_from_orgs ? 'read:user user:email read:org' : 'read:user user:email');
    url.searchParams.set('state', tx.state);
    url.searchParams.set('code_challenge', await client.calculatePKCECodeChallenge(tx.codeVerifier));
    url.searchParams.set('code_challenge_method', 'S256');
    url.searchParams.set('allow_signup', 'false');
    return url;
  }

  async finish(callbackUrl: URL, tx: AuthTransaction): Promise<PosternIdentity> {
    const params = callbackUrl.searchParams;
    if (params.get('error')) throw new PosternError('identity_invalid', `GitHub refused the sign-in: ${params.get('error')}${params.get('error_description') ? ` (${params.get('error_description')})` : ''}`);
    if (params.get('state') !== tx.state) throw new PosternError('identity_invalid', 'the state parameter does not match this sign-in');
    const code = params.get('code');
    if (!code) throw new PosternError('identity_invalid', 'GitHub sent no authorization code');
    const redirectUri = `${callbackUrl.origin}${callbackUrl.pathname}`;
    const tokenResponse = await this.call(`${this.web}/login/oauth/access_token`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: this.config.client_id, client_secret: this.clientSecret ?? '', code, redirect_uri: redirectUri, code_verifier: tx.codeVerifier }).toString(),
    }) as { access_token?: unknown; error?: unknown; error_description?: unknown };
    if (typeof tokenResponse.access_token !== 'string') {
      throw new PosternError('identity_invalid', `GitHub rejected the code: ${String(tokenResponse.error ?? 'no access token')}${tokenResponse.error_description ? ` (${String(tokenResponse.error_description)})` : ''}`);
    }
    const auth = { accept: 'application/vnd.github+json', authorization: `Bearer ${tokenResponse.access_token}`, 'x-github-api-version': '2022-11-28' };
    const user = await this.call(`${this.api}/user`, { headers: auth }) as { id?: unknown; login?: unknown; name?: unknown };
    const emails = await this.call(`${this.api}/user/emails`, { headers: auth });
    const primary = Array.isArray(emails)
      ? (emails as { email?: unknown; verified?: unknown; primary?: unknown }[]).find((e) => e.verified === true && e.primary === true && typeof e.email === 'string')
      : undefined;
    if (!primary) throw new PosternError('identity_invalid', 'your GitHub account has no verified primary email address');
    const groups: string[] = [];
    if (this.config.groups_from_orgs) {
      const allowed = this.config.orgs?.map((o) => o.toLowerCase());
      const keep = (org: string) => allowed === undefined || allowed.includes(org.toLowerCase());
      const orgs = await this.call(`${this.api}/user/orgs?per_page=100`, { headers: auth });
      for (const org of Array.isArray(orgs) ? orgs as { login?: unknown }[] : []) {
        if (typeof org.login === 'string' && keep(org.login)) groups.push(org.login);
      }
      const teams = await this.call(`${this.api}/user/teams?per_page=100`, { headers: auth });
      for (const team of Array.isArray(teams) ? teams as { slug?: unknown; organization?: { login?: unknown } }[] : []) {
        const org = team.organization?.login;
        if (typeof org === 'string' && typeof team.slug === 'string' && keep(org)) groups.push(`${org}/${team.slug}`);
      }
    }
    const claims = {
      iss: this.web,
      sub: typeof user.id === 'number' || typeof user.id === 'string' ? String(user.id) : undefined,
      name: typeof user.name === 'string' && user.name ? user.name : typeof user.login === 'string' ? user.login : undefined,
      email: primary.email,
      email_verified: true,
      groups,
    };
    return mapClaims(claims, mappingOf(this.config, 'groups'));
  }

  private async call(url: string, init: RequestInit): Promise<unknown> {
    let response: Response;
    try {
      response = await this.fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
    } catch (err) {
      throw new PosternError('identity_invalid', `cannot reach GitHub (${new URL(url).host}): ${errorMessage(err)}`, { cause: err, retryable: true });
    }
    if (!response.ok) throw new PosternError('identity_invalid', `GitHub answered ${response.status} to ${new URL(url).pathname}`);
    try {
      return await response.json();
    } catch (err) {
      throw new PosternError('identity_invalid', `GitHub sent an unreadable answer to ${new URL(url).pathname}`, { cause: err });
    }
  }
}

/**
 * Entra ID tenants that are not one organisation: any account of any tenant (or any personal
 * Microsoft account) signs in through them, with whatever email its own admin gave it ("nOAuth").
 * The last is the personal-accounts tenant's id.
 */
const MULTI_TENANT = new Set(['common', 'organizations', 'consumers', '{tenantid}', '9188040d-6c67-4c5b-b112-36a304b66dad']);
const ENTRA_HOST = 'login.microsoftonline.com';

/** The tenant of a `microsoft` preset; throws config_invalid for none or a multi-tenant endpoint. */
function entraTenant(tenant: string | undefined): string {
  if (!tenant) throw new PosternError('config_invalid', 'the microsoft preset needs a tenant: your Entra ID tenant id or domain (--tenant)');
  if (MULTI_TENANT.has(tenant.toLowerCase())) {
    throw new PosternError('config_invalid', `tenant "${tenant}" lets accounts of any tenant sign in; give your own Entra ID tenant id or domain`);
  }
  return tenant;
}

/** Fills a preset's issuer; throws config_invalid on settings that cannot work. */
export function normalizeOidcConfig(config: Partial<OidcConfig>): OidcConfig {
  const issuer = config.preset === 'google' ? presetIssuers.google()
    : config.preset === 'microsoft' ? presetIssuers.microsoft(entraTenant(config.tenant))
      : config.issuer;
  if (!issuer) throw new PosternError('config_invalid', 'an OIDC provider needs an issuer URL (or a preset)');
  const url = checkIssuerUrl(issuer, config.allow_insecure_issuer === true);
  // The same endpoints spelled as a plain issuer URL.
  if (url.hostname === ENTRA_HOST) entraTenant((url.pathname.split('/')[1] ?? '').replace(/%7B/gi, '{').replace(/%7D/gi, '}'));
  if (!config.client_id) throw new PosternError('config_invalid', 'an OIDC provider needs a client id');
  return { ...config, issuer, client_id: config.client_id } as OidcConfig;
}
