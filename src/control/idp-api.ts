// API for sign-in sources under /api/v1/identity-providers (list/create/show/update/delete),
// and the idempotent apply of the server config file's `identity_providers:` list. The client
// secret is write-only: sealed with the KeyCipher, never returned.
import { z } from 'zod';
import type { IdentityProviderKind, IdentityProviderRecord, Store } from '../store/index.js';
import type { KeyCipher } from '../ca/index.js';
import type { RouteTable } from './routes.js';
import { parseWith } from './routes.js';
import { PosternError, isPosternError } from '../errors.js';
import { normalizeOidcConfig, parseSamlConfig, emailDomainsSchema } from '../identity/index.js';
import { redirectUriFor, secretContext } from './oidc-routes.js';
import { createProviderBody as createBody, providerList, providerName, providerView, updateProviderBody as updateBody } from './inventory-types.js';

export interface IdentityProviderApiOptions {
  store: Store;
  cipher: KeyCipher;
  controlOrigin: string;
  now?: () => Date;
}

const groupMap = z.record(z.string().min(1).max(256), z.union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).max(50)]));
const claimName = z.string().min(1).max(200);

export const oidcConfigSchema = z.object({
  issuer: z.string().url().max(2048).optional(),
  client_id: z.string().min(1).max(500),
  preset: z.enum(['google', 'microsoft']).optional(),
  tenant: z.string().regex(/^[A-Za-z0-9.-]{1,100}$/, 'must be a tenant id or domain').optional(),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,100}$/)).max(20).optional(),
  email_claim: claimName.optional(),
  groups_claim: claimName.optional(),
  group_map: groupMap.optional(),
  keep_unmapped_groups: z.boolean().optional(),
  /** The provider is authoritative for these domains: its addresses there count as verified. */
  trusted_email_domains: emailDomainsSchema.optional(),
  /** The only email domains of the users it may sign in (and create). */
  allowed_email_domains: emailDomainsSchema.optional(),
  /** Plain http to a provider on this machine (loopback issuers only). */
  allow_insecure_issuer: z.boolean().optional(),
}).strict();

export const githubConfigSchema = z.object({
  client_id: z.string().min(1).max(500),
  groups_from_orgs: z.boolean().optional(),
  orgs: z.array(z.string().min(1).max(100)).max(100).optional(),
  group_map: groupMap.optional(),
  keep_unmapped_groups: z.boolean().optional(),
  /** GitHub's addresses are verified already; this only narrows whom it may sign in. */
  allowed_email_domains: emailDomainsSchema.optional(),
  web_base: z.string().url().optional(),
  api_base: z.string().url().optional(),
}).strict().refine((c) => !c.groups_from_orgs || (c.orgs?.length ?? 0) > 0, {
  // Anyone can create a GitHub organisation named like a group (even the admin group).
  path: ['orgs'],
  message: 'groups from organisations need --orgs naming the organisations whose membership counts (anyone can create an organisation called "admins")',
});

/** Checks a provider's plain settings for its kind; SAML settings are left to the SAML module. */
export function checkProviderConfig(kind: IdentityProviderKind, config: unknown): Record<string, unknown> {
  if (kind === 'oidc') {
    const parsed = parseWith(oidcConfigSchema, config, 'config');
    normalizeOidcConfig(parsed);
    return parsed;
  }
  if (kind === 'github') return parseWith(githubConfigSchema, config, 'config');
  if (kind === 'saml') parseSamlConfig(config);
  return parseWith(z.record(z.string(), z.unknown()), config, 'config');
}

const nameParams = z.object({ name: providerName });

export function presentProvider(record: IdentityProviderRecord, controlOrigin: string): z.infer<typeof providerView> {
  return {
    id: record.id, name: record.name, kind: record.kind, displayName: record.displayName, config: { ...record.config },
    hasSecret: record.sealedSecret !== null, disabled: record.disabledAt !== null,
    redirectUri: record.kind === 'saml' ? `${controlOrigin}/auth/saml/${record.name}/acs` : redirectUriFor(controlOrigin, record.name),
    createdAt: record.createdAt, updatedAt: record.updatedAt,
  };
}

export function sealProviderSecret(cipher: KeyCipher, name: string, secret: string): string {
  return cipher.encrypt(Buffer.from(secret, 'utf8'), secretContext(name));
}

export function registerIdentityProviderApi(routes: RouteTable, options: IdentityProviderApiOptions): void {
  const { store, cipher, controlOrigin } = options;
  const now = options.now ?? (() => new Date());
  const find = async (name: string) => {
    const record = await store.identityProviders.get(name);
    if (!record) throw new PosternError('not_found', `identity provider "${name}" does not exist`);
    return record;
  };

  routes.add({ method: 'GET', url: '/api/v1/identity-providers', summary: 'List sign-in providers (never their secrets)', auth: 'admin',
    response: providerList,
    handler: async () => ({ providers: (await store.identityProviders.list()).map((p) => presentProvider(p, controlOrigin)) }) });
  routes.add({ method: 'POST', url: '/api/v1/identity-providers', summary: 'Add a sign-in provider (OIDC, GitHub, SAML); the secret is write-only', auth: 'admin', change: { entity: 'identity_provider' },
    body: createBody, response: providerView, status: 201,
    handler: async ({ body }) => {
      const config = checkProviderConfig(body.kind, body.config);
      let record = await store.identityProviders.create({
        name: body.name, kind: body.kind, config,
        ...(body.display_name ? { displayName: body.display_name } : {}),
        ...(body.client_secret ? { sealedSecret: sealProviderSecret(cipher, body.name, body.client_secret) } : {}),
      });
      if (body.disabled) record = await store.identityProviders.update(record.name, { disabledAt: now().toISOString() });
      return presentProvider(record, controlOrigin);
    } });
  routes.add({ method: 'GET', url: '/api/v1/identity-providers/:name', summary: 'Show a sign-in provider', auth: 'admin', params: nameParams, response: providerView,
    handler: async ({ params }) => presentProvider(await find(params.name), controlOrigin) });
  routes.add({ method: 'PATCH', url: '/api/v1/identity-providers/:name', summary: 'Change a sign-in provider: settings (merged), secret, disabled', auth: 'admin', change: { entity: 'identity_provider', current: (p) => store.identityProviders.get(p.name) },
    params: nameParams, body: updateBody, response: providerView,
    handler: async ({ params, body }) => {
      const current = await find(params.name);
      let config: Record<string, unknown> | undefined;
      if (body.config !== undefined) {
        const merged: Record<string, unknown> = { ...current.config };
        for (const [key, value] of Object.entries(body.config)) {
          if (value === null) delete merged[key];
          else merged[key] = value;
        }
        config = checkProviderConfig(current.kind, merged);
      }
      return presentProvider(await store.identityProviders.update(params.name, {
        ...(body.display_name !== undefined ? { displayName: body.display_name } : {}),
        ...(config ? { config } : {}),
        ...(body.client_secret !== undefined ? { sealedSecret: body.client_secret === null ? null : sealProviderSecret(cipher, params.name, body.client_secret) } : {}),
        ...(body.disabled !== undefined ? { disabledAt: body.disabled ? now().toISOString() : null } : {}),
      }), controlOrigin);
    } });
  routes.add({ method: 'DELETE', url: '/api/v1/identity-providers/:name', summary: 'Remove a sign-in provider (existing sessions stay until revoked)', auth: 'admin', change: { entity: 'identity_provider', current: (p) => store.identityProviders.get(p.name) }, params: nameParams,
    handler: async ({ params }) => {
      await store.identityProviders.delete(params.name);
      return undefined;
    } });
}

/** One entry of the server config file's `identity_providers:` list. */
export interface ConfiguredProvider {
  name: string;
  kind: IdentityProviderKind;
  displayName?: string;
  config: Record<string, unknown>;
  clientSecret?: string;
  disabled?: boolean;
}

/**
 * Makes the store match the config file's providers: creates missing ones, updates those that
 * differ, leaves equal ones alone (no change recorded). Providers not in the file are kept.
 */
export async function applyConfiguredProviders(store: Store, cipher: KeyCipher, providers: readonly ConfiguredProvider[], now: () => Date = () => new Date()): Promise<{ created: string[]; updated: string[] }> {
  const created: string[] = [];
  const updated: string[] = [];
  for (const wanted of providers) {
    let config: Record<string, unknown>;
    try {
      config = checkProviderConfig(wanted.kind, wanted.config);
    } catch (err) {
      throw new PosternError('config_invalid', `identity_providers: ${wanted.name}: ${isPosternError(err) ? err.message : String(err)}`, { cause: err });
    }
    const current = await store.identityProviders.get(wanted.name);
    if (!current) {
      const create = store.identityProviders.create({
        name: wanted.name, kind: wanted.kind, config,
        ...(wanted.displayName ? { displayName: wanted.displayName } : {}),
        ...(wanted.clientSecret ? { sealedSecret: sealProviderSecret(cipher, wanted.name, wanted.clientSecret) } : {}),
      });
      // Another control node starting from the same file may win the race; then there is nothing to do.
      if (await create.then(() => false, (err: unknown) => { if (isPosternError(err, 'conflict')) return true; throw err; })) continue;
      if (wanted.disabled) await store.identityProviders.update(wanted.name, { disabledAt: now().toISOString() });
      created.push(wanted.name);
      continue;
    }
    if (current.kind !== wanted.kind) throw new PosternError('config_invalid', `identity_providers: ${wanted.name} is of kind ${current.kind} in the store, not ${wanted.kind}; remove it first`);
    const currentSecret = current.sealedSecret ? safeOpen(cipher, current) : undefined;
    const patch = {
      ...(wanted.displayName !== undefined && wanted.displayName !== current.displayName ? { displayName: wanted.displayName } : {}),
      ...(JSON.stringify(config) !== JSON.stringify(current.config) ? { config } : {}),
      ...(wanted.clientSecret !== undefined && wanted.clientSecret !== currentSecret ? { sealedSecret: sealProviderSecret(cipher, wanted.name, wanted.clientSecret) } : {}),
      ...(wanted.disabled !== undefined && wanted.disabled !== (current.disabledAt !== null) ? { disabledAt: wanted.disabled ? now().toISOString() : null } : {}),
    };
    if (Object.keys(patch).length > 0) {
      await store.identityProviders.update(wanted.name, patch);
      updated.push(wanted.name);
    }
  }
  return { created, updated };
}

function safeOpen(cipher: KeyCipher, record: IdentityProviderRecord): string | undefined {
  try {
    return cipher.decrypt(record.sealedSecret!, secretContext(record.name)).toString('utf8');
  } catch {
    return undefined;
  }
}
