// API for people: users (local accounts), their sign-in sessions, and the keys upstreams use
// to verify identity assertions (/.well-known/jwks.json).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { principalOf } from './principal.js';
import { z } from 'zod';
import type { Store, UserRecord } from '../store/index.js';
import type { RouteTable } from './routes.js';
import { parseWith } from './routes.js';
import { createUserBody, inviteView, listPageQuery, pageOf, sshUserCaView, storePage, updateUserBody, userList, userView } from './inventory-types.js';
import { PosternError } from '../errors.js';
import { checkPasswordPolicy, hashPassword, createInviteToken, passwordStamp, SESSION_URI_PREFIX } from '../identity/index.js';
import type { SigningKeys } from '../identity/index.js';
import type { CertificateAuthority, SshCertificateAuthority } from '../ca/index.js';
import { allowedSshLogins, compileWithSocketPolicies, requestContext } from '../policy/index.js';
import { canonicalIp } from '../reporting/index.js';
import type { GeoLookup } from '../reporting/index.js';

const sshCertificateBody = z.object({
  /** The user's public key, authorized_keys form (ed25519 or ecdsa). */
  public_key: z.string().min(1).max(4096),
  email: z.string().email(),
  /** Login users on the target hosts, besides the email and `postern`. */
  logins: z.array(z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}$/i)).max(32).default([]),
  ttl_seconds: z.number().int().min(60).max(24 * 3600).default(3600),
}).strict();

const certificateBody = z.object({
  csr: z.string().min(1).max(20_000),
  /** The user the certificate speaks for (CN and email SAN). */
  email: z.string().email(),
  ttl_seconds: z.number().int().min(60).max(24 * 3600).default(4 * 3600),
}).strict();

export interface IdentityApiOptions {
  store: Store;
  ca: CertificateAuthority;
  sshCa: SshCertificateAuthority;
  signingKeys: () => SigningKeys;
  /** Called when a session is revoked or a user changes, so caches forget it at once. */
  onSessionRevoked?: (sessionId: string) => void;
  now?: () => Date;
  inviteKey: Buffer;
  controlOrigin: string;
  geo?: GeoLookup;
}

const INVITE_TTL_SECONDS = 7 * 24 * 3600;

const idParams = z.object({ id: z.string().min(1).max(100) });

/** A provider's (issuer, subject) the user signs in as; `email` is what it claimed when linked. */
const userDetailView = userView.extend({
  identities: z.array(z.object({ provider: z.string(), issuer: z.string(), subject: z.string(), email: z.string(), linkedAt: z.string() })),
});

/** What an sshd needs to trust Postern's user certificates (principals per login in a file). */
export function sshdConfigLines(): string[] {
  return [
    'TrustedUserCAKeys /etc/ssh/postern_user_ca.pub',
    'AuthorizedPrincipalsFile /etc/ssh/postern_principals/%u',
  ];
}

function present(user: UserRecord): z.infer<typeof userView> {
  return {
    id: user.id, email: user.email, name: user.name, groups: [...user.groups], hasPassword: user.passwordHash !== null,
    disabled: user.disabledAt !== null, createdAt: user.createdAt, updatedAt: user.updatedAt,
  };
}

async function passwordHashFor(password: string | undefined): Promise<string | undefined> {
  if (password === undefined) return undefined;
  checkPasswordPolicy(password);
  return hashPassword(password);
}

export function registerIdentityApi(app: FastifyInstance, routes: RouteTable, options: IdentityApiOptions): void {
  const { store } = options;
  const now = options.now ?? (() => new Date());
  /** Users are addressed by id or by email. */
  const find = async (idOrEmail: string): Promise<UserRecord> => {
    const user = idOrEmail.includes('@') ? await store.users.findByEmail(idOrEmail) : await store.users.get(idOrEmail);
    if (!user) throw new PosternError('not_found', `user "${idOrEmail}" does not exist`);
    return user;
  };

  app.get('/.well-known/jwks.json', async (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(options.signingKeys().jwks()));

  routes.add({ method: 'GET', url: '/api/v1/users', summary: 'List users by email (?after=<email>&limit= for a page; `next` names the following one)', auth: 'users:read', response: userList,
    handler: async ({ request }) => {
      const query = parseWith(listPageQuery, request.query, 'query');
      const page = pageOf(await store.users.list(storePage(query)), query, (u) => u.email);
      return { users: page.rows.map(present), ...(page.next !== undefined ? { next: page.next } : {}) };
    } });
  routes.add({ method: 'POST', url: '/api/v1/users', summary: 'Create a user (local password optional)', auth: 'users:write', change: { entity: 'user' }, body: createUserBody, response: userView, status: 201,
    handler: async ({ body }) => {
      const passwordHash = await passwordHashFor(body.password);
      return present(await store.users.create({ email: body.email, ...(body.name ? { name: body.name } : {}), ...(body.groups ? { groups: body.groups } : {}), ...(passwordHash ? { passwordHash } : {}) }));
    } });
  routes.add({ method: 'GET', url: '/api/v1/users/:id', summary: 'Show a user (by id or email) with the provider identities it is linked to', auth: 'users:read', params: idParams, response: userDetailView,
    handler: async ({ params }) => {
      const user = await find(params.id);
      const identities = await store.externalIdentities.listForUser(user.id);
      return { ...present(user), identities: identities.map(({ provider, issuer, subject, email, createdAt }) => ({ provider, issuer, subject, email, linkedAt: createdAt })) };
    } });
  routes.add({ method: 'PATCH', url: '/api/v1/users/:id', summary: 'Change a user: name, groups, password, disabled', auth: 'users:write', change: { entity: 'user', current: async (p) => present(await find(p.id)) }, params: idParams, body: updateUserBody, response: userView,
    handler: async ({ params, body }) => {
      const user = await find(params.id);
      const passwordHash = await passwordHashFor(body.password);
      const updated = await store.users.update(user.id, {
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.groups !== undefined ? { groups: body.groups } : {}),
        ...(passwordHash ? { passwordHash } : {}),
        ...(body.disabled !== undefined ? { disabledAt: body.disabled ? now().toISOString() : null } : {}),
      });
      if (body.disabled) {
        for (const session of await store.sessions.list({ userId: user.id })) options.onSessionRevoked?.(session.id);
        await store.sessions.revokeAllForUser(user.id, now().toISOString());
      }
      return present(updated);
    } });
  routes.add({ method: 'DELETE', url: '/api/v1/users/:id', summary: 'Delete a user and end their sessions', auth: 'users:write', change: { entity: 'user', current: async (p) => present(await find(p.id)) }, params: idParams,
    handler: async ({ params }) => {
      const user = await find(params.id);
      for (const session of await store.sessions.list({ userId: user.id })) options.onSessionRevoked?.(session.id);
      await store.users.delete(user.id);
      return undefined;
    } });

  routes.add({ method: 'POST', url: '/api/v1/users/:id/invite', summary: 'A link for the user to set their own password (one use, 7 days)', auth: 'users:write', params: idParams, status: 201,
    response: inviteView,
    handler: async ({ params }) => {
      const user = await find(params.id);
      const expiresAt = Math.floor(now().getTime() / 1000) + INVITE_TTL_SECONDS;
      const token = createInviteToken(options.inviteKey, { userId: user.id, stamp: passwordStamp(user.passwordHash), expiresAt });
      return { url: `${options.controlOrigin}/auth/set-password?token=${token}`, expiresAt: new Date(expiresAt * 1000).toISOString() };
    } });
  routes.add({ method: 'POST', url: '/api/v1/certificates/tls', summary: 'Issue a short-lived TLS client certificate for a user (for `tls` sockets)', auth: 'certs:issue',
    body: certificateBody, status: 201, response: z.object({ certificate: z.string(), ca: z.string(), notAfter: z.string() }),
    handler: async ({ body }) => {
      const user = await find(body.email);
      if (user.disabledAt) throw new PosternError('forbidden', `${user.email} is disabled`);
      const issued = await options.ca.signCsr({ csrPem: body.csr, commonName: user.email, emails: [user.email], lifetimeMs: body.ttl_seconds * 1000, usage: 'client' });
      return { certificate: issued.certPem, ca: options.ca.certificatePem, notAfter: issued.notAfter.toISOString() };
    } });
  /** The signed-in person behind a CLI token or a browser's cookie (API tokens speak for no one). */
  const signedInUser = (request: FastifyRequest): UserRecord => {
    const principal = principalOf(request);
    if (principal.kind === 'token') throw new PosternError('forbidden', 'certificates are issued to people: sign in with `postern login`');
    return principal.user;
  };
  routes.add({ method: 'POST', url: '/api/v1/me/certificates/tls', summary: 'A short-lived TLS client certificate for the signed-in user', auth: 'user',
    body: certificateBody.omit({ email: true }), status: 201, response: z.object({ certificate: z.string(), ca: z.string(), notAfter: z.string() }),
    handler: async ({ body, request }) => {
      const user = signedInUser(request);
      // The sign-in rides in the certificate, so revoking the session cuts certificates already issued.
      const session = (principalOf(request) as { session: { id: string } }).session;
      const issued = await options.ca.signCsr({
        csrPem: body.csr, commonName: user.email, emails: [user.email], uris: [`${SESSION_URI_PREFIX}${session.id}`], lifetimeMs: body.ttl_seconds * 1000, usage: 'client',
      });
      return { certificate: issued.certPem, ca: options.ca.certificatePem, notAfter: issued.notAfter.toISOString() };
    } });
  /** The logins the policies let this user use on a socket, from where they ask and now. */
  const socketLogins = async (user: UserRecord, socketName: string, clientIp: string): Promise<string[]> => {
    const [policies, sockets] = await Promise.all([store.policies.list(), store.sockets.list()]);
    const socket = sockets.find((s) => s.name === socketName);
    if (!socket) throw new PosternError('not_found', `socket "${socketName}" does not exist`);
    const context = requestContext({ socket, user, clientIp, country: options.geo?.country(clientIp), at: now(), action: { protocol: 'ssh' } });
    return allowedSshLogins(context, compileWithSocketPolicies(policies, sockets));
  };
  // Principals: the email, the logins the policies allow on the named socket (if any) and `postern`.
  routes.add({ method: 'POST', url: '/api/v1/me/certificates/ssh', summary: 'Sign the signed-in user\'s SSH key: principals = email, the logins policies allow on `socket`, postern', auth: 'user',
    body: sshCertificateBody.omit({ email: true, logins: true }).extend({ socket: z.string().min(1).max(63).optional() }), status: 201,
    response: z.object({ certificate: z.string(), validBefore: z.string(), principals: z.array(z.string()) }),
    handler: async ({ body, request }) => {
      const user = signedInUser(request);
      const logins = body.socket === undefined ? [] : await socketLogins(user, body.socket, canonicalIp(request.ip));
      const principals = [...new Set([user.email, ...logins, 'postern'])];
      const validBefore = new Date(now().getTime() + body.ttl_seconds * 1000);
      const certificate = options.sshCa.sign({
        publicKey: body.public_key, keyId: user.email, principals, validAfter: new Date(now().getTime() - 5 * 60_000), validBefore,
      });
      return { certificate, validBefore: validBefore.toISOString(), principals };
    } });
  routes.add({ method: 'GET', url: '/api/v1/ssh/ca', summary: 'The SSH user CA and the sshd_config lines that trust it', auth: 'public',
    response: sshUserCaView,
    handler: async () => ({ publicKey: options.sshCa.publicKey(), sshdConfig: sshdConfigLines() }) });
  routes.add({ method: 'POST', url: '/api/v1/certificates/ssh', summary: 'Sign a user\'s SSH key: KeyId = email; principals = email, logins, postern', auth: 'certs:issue',
    body: sshCertificateBody, status: 201, response: z.object({ certificate: z.string(), validBefore: z.string() }),
    handler: async ({ body }) => {
      const user = await find(body.email);
      if (user.disabledAt) throw new PosternError('forbidden', `${user.email} is disabled`);
      const validBefore = new Date(now().getTime() + body.ttl_seconds * 1000);
      const certificate = options.sshCa.sign({
        publicKey: body.public_key, keyId: user.email, principals: [...new Set([user.email, ...body.logins, 'postern'])],
        validAfter: new Date(now().getTime() - 5 * 60_000), validBefore,
      });
      return { certificate, validBefore: validBefore.toISOString() };
    } });
  routes.add({ method: 'GET', url: '/api/v1/sessions', summary: 'List sign-in sessions (optionally of one user)', auth: 'sessions:read',
    handler: async ({ request }) => {
      const filter = (request.query as { user?: string }).user;
      const userId = filter ? (await find(filter)).id : undefined;
      const users = new Map((await store.users.list()).map((u) => [u.id, u]));
      const sessions = await store.sessions.list(userId ? { userId } : {});
      return {
        sessions: sessions.map(({ secretHash: _hidden, ...session }) => ({
          ...session, user: users.get(session.userId)?.email ?? session.userId, active: session.revokedAt === null && Date.parse(session.expiresAt) > now().getTime(),
        })),
      };
    } });
  routes.add({ method: 'DELETE', url: '/api/v1/sessions/:id', summary: 'Revoke a session: its next request goes back to sign-in', auth: 'sessions:write', change: { entity: 'session', current: (p) => store.sessions.get(p.id) }, params: idParams,
    handler: async ({ params }) => {
      await store.sessions.revoke(params.id, now().toISOString());
      options.onSessionRevoked?.(params.id);
      return undefined;
    } });
}
