// The API's payloads for sockets, connectors and their join tokens, users and sign-in providers,
// as zod schemas (the routes validate with them and the OpenAPI document shows them) and their
// TypeScript types, which the dashboard imports with `import type`. Nothing here but zod and
// other zod-only modules: the web build reads this file.
import { z } from 'zod';
import { SOCKET_TYPES } from '../store/socket-types.js';
import { socketNameSchema } from '../store/names.js';

/** `?after=<last key of the previous page>&limit=`; without either a list answers in full, as it always did. */
export const listPageQuery = z.object({
  after: z.string().min(1).max(320).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
export type ListPageQuery = z.infer<typeof listPageQuery>;

export const socketType = z.enum(SOCKET_TYPES);
export const socketTags = z.record(z.string().regex(/^[a-z0-9_.-]{1,63}$/i), z.string().max(255));
const emailDomain = z.string().regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?\.[a-z]{2,}$/i, 'must be a domain such as corp.example').transform((d) => d.toLowerCase());
const authFields = {
  /** Require sign-in (the mysocket "cloudauth" switch). */
  cloudauth: z.boolean().optional(),
  allowed_email_domains: z.array(emailDomain).max(100).optional(),
  allowed_email_addresses: z.array(z.string().email().transform((e) => e.toLowerCase())).max(1000).optional(),
};
const sshFields = {
  /** SSH sockets: recordings keep the user's input too. */
  record_input: z.boolean().optional(),
  /** SSH sockets: pin the upstream sshd's host key (`ssh-ed25519 AAAA…`), or null to forget the pin (the next connection pins again). */
  upstream_host_key: z.string().max(16 * 1024).nullable().optional(),
};
/** postgres sockets: the database a session opens when the client names none (null clears it). */
const databaseField = { database: z.string().min(1).max(63).nullable().optional() };
const connectorRefs = z.array(z.string().min(1).max(200)).max(1000);

/** `connectors` replaces the list; `add_connectors` / `remove_connectors` edit it (not together with `connectors`). */
export const bindingFields = {
  connectors: connectorRefs.optional(),
  add_connectors: connectorRefs.optional(),
  remove_connectors: connectorRefs.optional(),
};

export const boundConnectorView = z.object({ id: z.string(), name: z.string(), binding: z.enum(['direct', 'tags']) });

export const createSocketBody = z.object({
  name: socketNameSchema,
  type: socketType.default('http'),
  upstream: z.string().max(2048).nullable().optional(),
  description: z.string().max(1000).optional(),
  tags: socketTags.optional(),
  /** HTTP sockets: pass ambiguous paths (encoded `/`, `\\`, `;`) as sent instead of refusing them. */
  raw_paths: z.boolean().optional(),
  connectors: bindingFields.connectors,
  ...sshFields,
  ...databaseField,
  ...authFields,
}).strict();
export const updateSocketBody = z.object({
  type: socketType.optional(),
  upstream: z.string().max(2048).nullable().optional(),
  description: z.string().max(1000).optional(),
  tags: socketTags.optional(),
  raw_paths: z.boolean().optional(),
  ...bindingFields,
  ...sshFields,
  ...databaseField,
  ...authFields,
}).strict();
export const socketView = z.object({
  id: z.string(), name: z.string(), type: socketType, upstream: z.string().nullable(), description: z.string(),
  auth: z.object({ cloudauth: z.boolean(), allowedEmailDomains: z.array(z.string()), allowedEmailAddresses: z.array(z.string()) }),
  tags: z.record(z.string(), z.string()), rawPaths: z.boolean(), url: z.string(), online: z.boolean(), createdAt: z.string(), updatedAt: z.string(),
  recordInput: z.boolean(), upstreamHostKey: z.string().nullable(),
  /** postgres sockets: the database a session opens when the client names none. */
  database: z.string().nullable(),
  /** The connectors that may serve it (named by it, or by a tag selector matching its tags). */
  connectors: z.array(boundConnectorView),
});
/** `next` is the `after` of the following page; absent on the last one. */
export const socketList = z.object({ sockets: z.array(socketView), next: z.string().optional() });

export const sshUserCaView = z.object({ publicKey: z.string(), sshdConfig: z.array(z.string()) });
export const sshHostCaView = z.object({ public_key: z.string(), known_hosts: z.string() });

export const joinTokenBody = z.object({
  name: z.string().regex(/^[a-zA-Z0-9_.-]{1,63}$/, 'must be 1-63 letters, digits, "_", "." or "-"').optional(),
  ttl_seconds: z.number().int().min(60).max(30 * 24 * 3600).default(3600),
  /** Sockets the enrolled connector is bound to (each must exist). */
  sockets: z.array(socketNameSchema).max(1000).optional(),
  /** Also every socket, now or later, whose tags include all of these. */
  tags: socketTags.refine((t) => Object.keys(t).length > 0, 'must name at least one tag').optional(),
}).strict();
/** The one answer that holds the token's secret. */
export const createdJoinTokenView = z.object({ id: z.string(), token: z.string(), name: z.string(), expiresAt: z.string(), sockets: z.array(z.string()), socketTags: z.record(z.string(), z.string()).nullable() });
export const joinTokenView = z.object({
  id: z.string(), connectorName: z.string(), expiresAt: z.string(), usedAt: z.string().nullable(), connectorId: z.string().nullable(),
  sockets: z.array(z.string()), socketTags: z.record(z.string(), z.string()).nullable(), createdAt: z.string(),
});
export const joinTokenList = z.object({ tokens: z.array(joinTokenView) });

export const tunnelView = z.object({
  id: z.string(), connectorId: z.string(), connectorName: z.string(), remoteAddress: z.string(), transport: z.enum(['tls', 'websocket']),
  sockets: z.array(z.string()), activeStreams: z.number(), draining: z.boolean(), connectedAt: z.string(),
});
export const connectorView = z.object({
  id: z.string(), name: z.string(), certSerial: z.string().nullable(), certNotAfter: z.string().nullable(), lastSeenAt: z.string().nullable(),
  revokedAt: z.string().nullable(), socketTags: z.record(z.string(), z.string()).nullable(), createdAt: z.string(),
  /** Its live tunnels on this node. */
  tunnels: z.array(tunnelView),
});
export const connectorList = z.object({ connectors: z.array(connectorView), next: z.string().optional() });

const userGroups = z.array(z.string().min(1).max(200)).max(500);
export const createUserBody = z.object({
  email: z.string().email().max(320),
  name: z.string().max(200).optional(),
  groups: userGroups.optional(),
  password: z.string().optional(),
}).strict();
export const updateUserBody = z.object({
  name: z.string().max(200).optional(),
  groups: userGroups.optional(),
  disabled: z.boolean().optional(),
  password: z.string().optional(),
}).strict();
export const userView = z.object({
  id: z.string(), email: z.string(), name: z.string(), groups: z.array(z.string()), hasPassword: z.boolean(),
  disabled: z.boolean(), createdAt: z.string(), updatedAt: z.string(),
});
export const userList = z.object({ users: z.array(userView), next: z.string().optional() });
export const inviteView = z.object({ url: z.string(), expiresAt: z.string() });

export const providerName = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be 1-63 lower-case letters, digits or dashes');
export const providerKind = z.enum(['oidc', 'github', 'saml']);
export const createProviderBody = z.object({
  name: providerName,
  kind: providerKind,
  display_name: z.string().max(200).optional(),
  config: z.record(z.string(), z.unknown()).default({}),
  client_secret: z.string().min(1).max(10_000).optional(),
  disabled: z.boolean().optional(),
}).strict();
export const updateProviderBody = z.object({
  display_name: z.string().max(200).optional(),
  /** Merged into the current settings; a null value removes a key. */
  config: z.record(z.string(), z.unknown()).optional(),
  client_secret: z.string().min(1).max(10_000).nullable().optional(),
  disabled: z.boolean().optional(),
}).strict();
export const providerView = z.object({
  id: z.string(), name: z.string(), kind: providerKind, displayName: z.string(), config: z.record(z.string(), z.unknown()),
  hasSecret: z.boolean(), disabled: z.boolean(), redirectUri: z.string(), createdAt: z.string(), updatedAt: z.string(),
});
export const providerList = z.object({ providers: z.array(providerView) });

export type SocketType = z.infer<typeof socketType>;
export type CreateSocketBody = z.input<typeof createSocketBody>;
export type UpdateSocketBody = z.input<typeof updateSocketBody>;
export type SocketView = z.infer<typeof socketView>;
export type SocketList = z.infer<typeof socketList>;
export type SshUserCaView = z.infer<typeof sshUserCaView>;
export type SshHostCaView = z.infer<typeof sshHostCaView>;
export type JoinTokenBody = z.input<typeof joinTokenBody>;
export type CreatedJoinTokenView = z.infer<typeof createdJoinTokenView>;
export type JoinTokenView = z.infer<typeof joinTokenView>;
export type JoinTokenList = z.infer<typeof joinTokenList>;
export type ConnectorView = z.infer<typeof connectorView>;
export type ConnectorList = z.infer<typeof connectorList>;
export type CreateUserBody = z.input<typeof createUserBody>;
export type UpdateUserBody = z.input<typeof updateUserBody>;
export type UserView = z.infer<typeof userView>;
export type UserList = z.infer<typeof userList>;
export type InviteView = z.infer<typeof inviteView>;
export type ProviderKind = z.infer<typeof providerKind>;
export type CreateProviderBody = z.input<typeof createProviderBody>;
export type UpdateProviderBody = z.input<typeof updateProviderBody>;
export type ProviderView = z.infer<typeof providerView>;
export type ProviderList = z.infer<typeof providerList>;

const DEFAULT_PAGE_SIZE = 100;

/** The store page a query asks for, one row longer than shown (so the answer knows whether another follows); undefined = the whole list. */
export function storePage(query: ListPageQuery): { after?: string; limit: number } | undefined {
  if (query.after === undefined && query.limit === undefined) return undefined;
  return { ...(query.after !== undefined ? { after: query.after } : {}), limit: (query.limit ?? DEFAULT_PAGE_SIZE) + 1 };
}

/** The rows to show and, when more follow, the `after` of the next page. */
export function pageOf<T>(rows: readonly T[], query: ListPageQuery, key: (row: T) => string): { rows: T[]; next?: string } {
  const page = storePage(query);
  if (page === undefined || rows.length < page.limit) return { rows: [...rows] };
  const shown = rows.slice(0, page.limit - 1);
  return { rows: shown, next: key(shown.at(-1)!) };
}
