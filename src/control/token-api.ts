// Service tokens for automation (`postern token create|ls|revoke`): API tokens with role
// 'service' and the scopes they were created with, shown once and stored hashed. Only the admin
// token or an admin person may mint or revoke them, so a leaked service token cannot make more of
// itself; the admin token itself is not revocable here.
import { z } from 'zod';
import { API_TOKEN_SCOPES } from '../store/index.js';
import type { ApiTokenRecord, Store } from '../store/index.js';
import type { RouteTable } from './routes.js';
import { PosternError } from '../errors.js';
import { generateApiToken, hashToken } from '../identity/index.js';
import { principalOf } from './principal.js';
import type { FastifyRequest } from 'fastify';

export interface TokenApiOptions {
  store: Store;
  now?: () => Date;
}

const createBody = z.object({
  name: z.string().regex(/^[a-zA-Z0-9_.-]{1,63}$/, 'use 1-63 letters, digits, dots, dashes or underscores'),
  /** Chosen, never defaulted: a token can do only what its creator named. */
  scopes: z.array(z.enum(API_TOKEN_SCOPES)).min(1, `name at least one scope: ${API_TOKEN_SCOPES.join(', ')}`).max(API_TOKEN_SCOPES.length),
}).strict();
const idParams = z.object({ id: z.string().min(1).max(100) });
const tokenView = z.object({ id: z.string(), name: z.string(), role: z.string(), scopes: z.array(z.string()), createdAt: z.string(), lastUsedAt: z.string().nullable(), revokedAt: z.string().nullable() });

function present({ tokenHash: _hidden, ...rest }: ApiTokenRecord): z.infer<typeof tokenView> {
  return { ...rest, scopes: [...rest.scopes] };
}

/** The admin token or an admin person (the route's `admin` scope let them in); never a service token, even one scoped `admin`. */
function requireAdminToken(request: FastifyRequest): void {
  const principal = principalOf(request);
  if (principal.kind === 'token' && principal.token.role !== 'admin') throw new PosternError('forbidden', 'only an admin (the admin token or a member of the admin group) may create or revoke service tokens');
}

export function registerTokenApi(routes: RouteTable, options: TokenApiOptions): void {
  const { store } = options;
  const now = options.now ?? (() => new Date());

  routes.add({ method: 'POST', url: '/api/v1/tokens', summary: 'Create a service token (its secret is shown once)', auth: 'admin', change: { entity: 'api_token' }, body: createBody, status: 201,
    response: tokenView.extend({ token: z.string() }),
    handler: async ({ body, request }) => {
      requireAdminToken(request);
      const token = generateApiToken();
      const record = await store.apiTokens.create({ name: body.name, tokenHash: hashToken(token), role: 'service', scopes: body.scopes });
      request.log.info({ token: record.id, name: record.name, scopes: record.scopes }, 'service token created');
      return { ...present(record), token };
    } });
  routes.add({ method: 'GET', url: '/api/v1/tokens', summary: 'List API tokens (never their secrets)', auth: 'admin',
    response: z.object({ tokens: z.array(tokenView) }),
    handler: async () => ({ tokens: (await store.apiTokens.list()).map(present) }) });
  routes.add({ method: 'DELETE', url: '/api/v1/tokens/:id', summary: 'Revoke a service token', auth: 'admin', change: { entity: 'api_token', current: async (p) => (await store.apiTokens.list()).find((t) => t.id === p.id) }, params: idParams,
    handler: async ({ params, request }) => {
      requireAdminToken(request);
      const record = (await store.apiTokens.list()).find((t) => t.id === params.id);
      if (!record) throw new PosternError('not_found', `token "${params.id}" does not exist`);
      if (record.role !== 'service') throw new PosternError('forbidden', 'the admin token is not revoked through the API (it stays for automation on the server machine)');
      await store.apiTokens.revoke(record.id, now().toISOString());
      request.log.info({ token: record.id }, 'service token revoked');
      return undefined;
    } });
}
