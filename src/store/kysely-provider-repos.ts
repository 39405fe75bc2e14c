// The identity-provider repository of the Kysely store: sign-in sources (OIDC, GitHub, SAML).
// Plain settings are a JSON object; the secret is sealed by the caller and stored as given.
// Every mutation records one ('identity_provider', id, op) change.

import type { Selectable } from 'kysely';
import { PosternError } from '../errors.js';
import { conflict, insertUnique, notFound } from './kysely-repos.js';
import type { RepoContext } from './kysely-repos.js';
import { parseJsonObject, toTimestamp } from './rows.js';
import type { IdentityProvidersTable } from './schema.js';
import type {
  IdentityProviderKind,
  IdentityProviderPatch,
  IdentityProviderRecord,
  IdentityProviderRepo,
  NewIdentityProvider,
} from './types.js';

const kinds: ReadonlySet<string> = new Set<IdentityProviderKind>(['oidc', 'github', 'saml']);
/** A URL path segment: lower-case letters, digits and dashes, 1–63 characters. */
export const IDENTITY_PROVIDER_NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_CONFIG_BYTES = 64 * 1024;

function badRequest(message: string): PosternError {
  return new PosternError('bad_request', message);
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || !IDENTITY_PROVIDER_NAME_PATTERN.test(name)) {
    throw badRequest(`identity provider name "${String(name)}" must be 1-63 lower-case letters, digits or dashes`);
  }
  return name;
}

function checkDisplayName(value: unknown): string {
  if (typeof value !== 'string' || value.length > 200) throw badRequest('identity provider display name must be a string of at most 200 characters');
  return value;
}

function checkConfig(value: unknown): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest('identity provider config must be an object');
  const text = JSON.stringify(value);
  if (text.length > MAX_CONFIG_BYTES) throw badRequest('identity provider config is too large');
  return text;
}

function checkSecret(value: unknown): string | null {
  if (value === null) return null;
  if (typeof value !== 'string' || value === '') throw badRequest('sealedSecret must be a non-empty string or null');
  return value;
}

/** A damaged config reads as empty (the provider then fails to start a sign-in, visibly). */
function parseConfig(text: string): Record<string, unknown> {
  return parseJsonObject(text) ?? {};
}

export function toIdentityProvider(row: Selectable<IdentityProvidersTable>): IdentityProviderRecord {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind as IdentityProviderKind,
    displayName: row.display_name,
    config: parseConfig(row.config),
    sealedSecret: row.sealed_secret,
    disabledAt: row.disabled_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export class KyselyIdentityProviderRepo implements IdentityProviderRepo {
  constructor(private readonly ctx: RepoContext) {}

  list(): Promise<IdentityProviderRecord[]> {
    return this.ctx.read('list identity providers', async (db) =>
      (await db.selectFrom('identity_providers').selectAll().orderBy('name').execute()).map(toIdentityProvider),
    );
  }

  get(name: string): Promise<IdentityProviderRecord | undefined> {
    return this.ctx.read('get identity provider', async (db) => {
      const row = await db.selectFrom('identity_providers').selectAll().where('name', '=', name).executeTakeFirst();
      return row === undefined ? undefined : toIdentityProvider(row);
    });
  }

  async create(input: NewIdentityProvider): Promise<IdentityProviderRecord> {
    const name = checkName(input.name);
    if (!kinds.has(input.kind)) throw badRequest(`identity provider kind "${String(input.kind)}" is not one of oidc, github, saml`);
    const displayName = checkDisplayName(input.displayName ?? name);
    const config = checkConfig(input.config ?? {});
    const sealedSecret = checkSecret(input.sealedSecret ?? null);
    return this.ctx.write('create identity provider', async (tx, record) => {
      const message = `identity provider "${name}" already exists`;
      const taken = await tx.selectFrom('identity_providers').select('id').where('name', '=', name).executeTakeFirst();
      if (taken !== undefined) throw conflict(message);
      const now = this.ctx.now();
      const row = {
        id: this.ctx.newId('idp_'),
        name,
        kind: input.kind,
        display_name: displayName,
        config,
        sealed_secret: sealedSecret,
        disabled_at: null,
        created_at: now,
        updated_at: now,
      };
      await insertUnique(() => tx.insertInto('identity_providers').values(row).execute(), message);
      await record('identity_provider', row.id, 'create');
      return toIdentityProvider(row);
    });
  }

  async update(name: string, patch: IdentityProviderPatch): Promise<IdentityProviderRecord> {
    const set: { display_name?: string; config?: string; sealed_secret?: string | null; disabled_at?: string | null } = {};
    if (patch.displayName !== undefined) set.display_name = checkDisplayName(patch.displayName);
    if (patch.config !== undefined) set.config = checkConfig(patch.config);
    if (patch.sealedSecret !== undefined) set.sealed_secret = checkSecret(patch.sealedSecret);
    if (patch.disabledAt !== undefined) set.disabled_at = patch.disabledAt === null ? null : toTimestamp(patch.disabledAt, 'disabledAt');
    return this.ctx.write('update identity provider', async (tx, record) => {
      const row = await tx.selectFrom('identity_providers').selectAll().where('name', '=', name).executeTakeFirst();
      if (row === undefined) throw notFound(`identity provider "${name}" not found`);
      const next = { ...row, ...set, updated_at: this.ctx.now() };
      await tx.updateTable('identity_providers').set({ ...set, updated_at: next.updated_at }).where('id', '=', row.id).execute();
      await record('identity_provider', row.id, 'update');
      return toIdentityProvider(next);
    });
  }

  delete(name: string): Promise<void> {
    return this.ctx.write('delete identity provider', async (tx, record) => {
      const row = await tx.selectFrom('identity_providers').select('id').where('name', '=', name).executeTakeFirst();
      if (row === undefined) throw notFound(`identity provider "${name}" not found`);
      await tx.deleteFrom('identity_providers').where('id', '=', row.id).execute();
      await record('identity_provider', row.id, 'delete');
    });
  }
}
