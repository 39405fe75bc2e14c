// The control plane's HTTP API under /api/v1: sockets, connectors and their enrollment,
// live tunnels, the CA, and the OpenAPI document. Errors answer as problem+json.
import http from 'node:http';
import Fastify, { LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { z } from 'zod';
import { noSocketAuth, carriesTcp, socketNameSchema } from '../store/index.js';
import type { ConnectorRecord, SocketAuth, SocketRecord, Store } from '../store/index.js';
import { caPin } from '../ca/index.js';
import type { CertificateAuthority, KeyCipher, SshCertificateAuthority } from '../ca/index.js';
import type { TunnelHub } from '../tunnel/index.js';
import { createRouteTable, parseWith } from './routes.js';
import type { AuthMode } from './routes.js';
import { PosternError, isPosternError } from '../errors.js';
import { bearerToken, generateSecret, hashToken, readSessionCookie } from '../identity/index.js';
import type { SigningKeys } from '../identity/index.js';
import { registerDashboard } from './dashboard.js';
import { registerAuthRoutes } from './auth-routes.js';
import { registerOidcRoutes } from './oidc-routes.js';
import { registerIdentityProviderApi } from './idp-api.js';
import { registerSamlRoutes } from './saml-routes.js';
import { registerIdentityApi } from './identity-api.js';
import { registerInviteRoutes } from './invite-routes.js';
import type { SessionService } from './sessions.js';
import { browserPrincipal, cliPrincipal, isCliToken, requireScope, scopesAllow, setPrincipal } from './principal.js';
import { requireCsrfForChange } from './csrf.js';
import { DEFAULT_ADMIN_GROUP, adminRequired } from './roles.js';
import { registerCliLogin } from './device-routes.js';
import { actorOf, registerPolicyApi } from './policy-api.js';
import { registerAuditApi } from './audit-api.js';
import { registerRecordingApi } from './recording-api.js';
import { registerPortalApi } from './portal-api.js';
import { registerLiveApi } from './live-api.js';
import type { NewAuditEvent, GeoLookup } from '../reporting/index.js';
import { boundConnectors, nextBinding } from './binding-api.js';
import { connectorList, createSocketBody, createdJoinTokenView, joinTokenBody as tokenBody, joinTokenList, listPageQuery, pageOf, socketList, socketView, storePage, updateSocketBody } from './inventory-types.js';
import { useResolvedClientIp, withClientIp } from './client-ip.js';
import { registerSshHostCaApi } from './ssh-host-ca-api.js';
import type { ControlHandler } from './client-ip.js';
import { DEFAULT_AGENT_CERT_LIFETIME_MS, registerAgentApi } from './agent-api.js';
import { registerServiceApi } from './service-api.js';
import { registerMeshApi } from './mesh-api.js';
import type { RevokedAgentIds } from './mesh-api.js';

export interface ApiOptions {
  store: Store;
  ca: CertificateAuthority;
  hub?: TunnelHub;
  logger: Logger;
  /** Public URL of a socket, e.g. https://grafana.localhost:8443/ */
  socketUrl: (name: string) => string;
  connectorCertLifetimeMs: number;
  now?: () => Date;
  version: string;
  sessions: SessionService;
  signingKeys: () => SigningKeys;
  /** Origin of a socket host: `https://<name>.<domain>[:port]`. */
  socketOrigin: (name: string) => string;
  onSessionRevoked?: (sessionId: string) => void;
  /** HMAC key of invitation links. */
  inviteKey: Buffer;
  sshCa: SshCertificateAuthority;
  /** Certifies the host keys ssh sockets present (GET /api/v1/ssh/host-ca). */
  sshHostCa: SshCertificateAuthority;
  /** `https://<domain>[:port]` */
  controlOrigin: string;
  /** Seals identity-provider secrets and sign-in transactions (the store's master-key cipher). */
  cipher: KeyCipher;
  /** The audit recorder (admin changes, kills) and a way to wait until it has written. */
  audit: (event: NewAuditEvent) => void;
  flushAudit: () => Promise<void>;
  geo?: GeoLookup;
  /** Prometheus text for /metrics. */
  metrics?: () => string;
  /** Resolves once this node's snapshot has caught up with the store. */
  caughtUp?: () => Promise<void>;
  /** People in this group are admins with their own sign-in (default `admins`). */
  adminGroup?: string;
  /** The built dashboard (index.html and assets/); default: dist/ui beside dist/src. */
  webRoot?: string;
  /** Agent identities: SPIFFE trust domain (default: the server's domain) and certificate lifetime (default 1 h). */
  agents?: { trustDomain?: string; certLifetimeMs?: number };
  /** The agents' mesh view: this node's revoked agents and the change-feed revision it has delivered. */
  mesh: { revokedAgents: RevokedAgentIds; revision: () => number };
}

/** The upstream a socket names must be one its connector could dial: http(s):// for HTTP sockets, tcp:// for tls and ssh ones. */
function checkUpstream(type: string, upstream: string | null | undefined): void {
  if (upstream === null || upstream === undefined) return;
  const schemes = carriesTcp(type) ? ['tcp:'] : ['http:', 'https:'];
  let protocol: string;
  try {
    protocol = new URL(upstream).protocol;
  } catch {
    throw new PosternError('bad_request', `upstream "${upstream}" is not a URL such as ${carriesTcp(type) ? 'tcp://127.0.0.1:22' : 'http://127.0.0.1:3000'}`);
  }
  if (!schemes.includes(protocol)) throw new PosternError('bad_request', `a ${type} socket's upstream must start with ${schemes.map((s) => `${s}//`).join(' or ')}, not ${protocol}//`);
}

/** Input recording and a host key pin mean something only where the edge speaks SSH itself. */
function checkSshFields(type: string, body: { record_input?: boolean; upstream_host_key?: string | null }): void {
  if (type === 'ssh') return;
  const set = [body.record_input === true ? 'record_input' : '', typeof body.upstream_host_key === 'string' ? 'upstream_host_key' : ''].filter(Boolean);
  if (set.length > 0) throw new PosternError('bad_request', `${set.join(' and ')} ${set.length === 1 ? 'applies' : 'apply'} to ssh sockets only, not to a ${type} socket`);
}

/** A default database means something only on a postgres socket. */
function checkDatabaseField(type: string, body: { database?: string | null }): void {
  if (type !== 'postgres' && typeof body.database === 'string') throw new PosternError('bad_request', `database applies to postgres sockets only, not to a ${type} socket`);
}

/** The store's patch for the SSH fields the body sets. */
function sshPatch(body: { record_input?: boolean; upstream_host_key?: string | null }): { recordInput?: boolean; upstreamHostKey?: string | null } {
  return {
    ...(body.record_input !== undefined ? { recordInput: body.record_input } : {}),
    ...(body.upstream_host_key !== undefined ? { upstreamHostKey: body.upstream_host_key } : {}),
  };
}

/** Allow-lists imply sign-in; sign-in without lists lets any signed-in user in. */
function authFrom(body: { cloudauth?: boolean; allowed_email_domains?: string[]; allowed_email_addresses?: string[] }, current: SocketAuth = noSocketAuth): SocketAuth | undefined {
  if (body.cloudauth === undefined && body.allowed_email_domains === undefined && body.allowed_email_addresses === undefined) return undefined;
  const allowedEmailDomains = body.allowed_email_domains ?? [...current.allowedEmailDomains];
  const allowedEmailAddresses = body.allowed_email_addresses ?? [...current.allowedEmailAddresses];
  const cloudauth = body.cloudauth ?? (current.cloudauth || allowedEmailDomains.length > 0 || allowedEmailAddresses.length > 0);
  return { cloudauth, allowedEmailDomains, allowedEmailAddresses };
}
const nameParams = z.object({ name: socketNameSchema });
const idParams = z.object({ id: z.string().min(1).max(100) });
const enrollBody = z.object({ token: z.string().min(1).max(200), csr: z.string().min(1).max(20_000), name: z.string().max(200).optional() }).strict();
const renewBody = z.object({ csr: z.string().min(1).max(20_000) }).strict();
const issuedView = z.object({ connectorId: z.string(), name: z.string(), certificate: z.string(), ca: z.string(), notAfter: z.string() });

export async function createApi(options: ApiOptions): Promise<{ app: FastifyInstance; handler: ControlHandler }> {
  const { store, ca, logger } = options;
  const now = options.now ?? (() => new Date());
  const adminGroup = options.adminGroup ?? DEFAULT_ADMIN_GROUP;
  let handler!: http.RequestListener;
  const app = Fastify({
    loggerInstance: logger.child({ component: 'api' }) as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
    serverFactory: (h) => {
      handler = h;
      return http.createServer();
    },
  });
  useResolvedClientIp(app);

  app.setErrorHandler((err, request, reply) => {
    const problem = isPosternError(err)
      ? { status: err.httpStatus, code: err.code, detail: err.message }
      : (err as { statusCode?: number }).statusCode && (err as { statusCode: number }).statusCode < 500
        ? { status: (err as { statusCode: number }).statusCode, code: 'bad_request', detail: (err as Error).message }
        : { status: 500, code: 'internal', detail: 'internal error (see the server log)' };
    if (problem.status >= 500) request.log.error({ err }, 'API request failed');
    else request.log.info({ code: problem.code, url: request.url }, problem.detail);
    void reply.code(problem.status).type('application/problem+json').send({
      ...(isPosternError(err) ? err.problem : undefined),
      type: `https://postern.dev/errors/${problem.code}`, title: problem.detail, status: problem.status, detail: problem.detail, code: problem.code,
    });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).type('application/problem+json').send({ type: 'https://postern.dev/errors/not_found', title: 'Not found', status: 404, detail: `no route ${request.method} ${request.url.split('?')[0]}`, code: 'not_found' });
  });

  const authenticate = async (request: FastifyRequest, mode: AuthMode): Promise<void> => {
    if (mode === 'public') return;
    if (mode === 'connector') {
      connectorFromCertificate(request);
      return;
    }
    const token = bearerToken(request.headers.authorization);
    const cookie = token ? undefined : readSessionCookie(request.headers);
    if (cookie) {
      // The dashboard: a person's browser on the control host; its changes need the CSRF header.
      const principal = await browserPrincipal(options.sessions, store, cookie, now(), adminGroup);
      requireCsrfForChange(request, options.controlOrigin);
      if (mode !== 'user' && !scopesAllow(principal.scopes, mode)) throw adminRequired(principal.user, adminGroup);
      setPrincipal(request, principal);
      return;
    }
    if (!token) throw new PosternError('unauthenticated', 'missing bearer token: pass --token or set POSTERN_TOKEN');
    if (isCliToken(token)) {
      // A person's CLI sign-in: admin routes only for members of the admin group, checked now.
      const principal = await cliPrincipal(options.sessions, store, token, now(), adminGroup);
      if (mode !== 'user' && !scopesAllow(principal.scopes, mode)) throw adminRequired(principal.user, adminGroup);
      setPrincipal(request, principal);
      return;
    }
    const record = await store.apiTokens.findByHash(hashToken(token));
    if (!record || record.revokedAt) throw new PosternError('unauthenticated', 'the token is not valid (unknown or revoked)');
    if (mode !== 'user') requireScope(record, mode);
    setPrincipal(request, { kind: 'token', token: record });
  };

  const connectorFromCertificate = (request: FastifyRequest): string => {
    const socket = request.raw.socket as TLSSocket;
    if (!socket.authorized) throw new PosternError('certificate_invalid', 'a valid connector certificate is required');
    const id = socket.getPeerCertificate().subject?.CN;
    if (typeof id !== 'string') throw new PosternError('certificate_invalid', 'the certificate names no connector');
    return id;
  };

  const present = (record: SocketRecord, connectors: readonly ConnectorRecord[]) => ({
    ...record,
    url: options.socketUrl(record.name),
    online: options.hub?.isOnline(record.name) ?? false,
    connectors: boundConnectors(record, connectors),
  });
  /** Resolves `connectors` / `add_connectors` / `remove_connectors` against the stored connectors. */
  const bindingPatch = async (current: readonly string[], body: Parameters<typeof nextBinding>[1]) => {
    const connectors = nextBinding(current, body, await store.connectors.list());
    return connectors === undefined ? {} : { connectors };
  };

  /** The connector's identity is its id: CN and a SPIFFE-style URI SAN; whatever the CSR asked for is ignored. */
  const issueConnectorCertificate = async (connector: { id: string; name: string }, csrPem: string) => {
    const issued = await ca.signCsr({ csrPem, commonName: connector.id, uris: [`spiffe://postern/connector/${connector.id}`], lifetimeMs: options.connectorCertLifetimeMs, usage: 'client' });
    await store.connectors.recordCertificate(connector.id, issued.serial, issued.notAfter.toISOString());
    return { connectorId: connector.id, name: connector.name, certificate: issued.certPem, ca: ca.certificatePem, notAfter: issued.notAfter.toISOString() };
  };

  const routes = createRouteTable(app, authenticate, ({ request, entity, route, before, after }) => {
    const actor = actorOf(request);
    const verb = route.startsWith('POST') ? 'created' : route.startsWith('DELETE') ? 'deleted' : 'updated';
    const touched = [after, before].map((r) => r as { name?: unknown; email?: unknown; id?: unknown } | null | undefined).find((r) => r);
    const which = touched ? String(touched.name ?? touched.email ?? touched.id ?? '') : '';
    options.audit({ type: 'admin.change', actor, clientIp: request.ip, reason: `${entity.replace('_', ' ')}${which ? ` ${which}` : ''} ${verb} by ${actor}`, details: { entity, route, before, after } });
  });

  await registerDashboard(app, routes, {
    store, sessions: options.sessions, inviteKey: options.inviteKey, adminGroup, audit: options.audit, version: options.version, now,
    ...(options.webRoot !== undefined ? { webRoot: options.webRoot } : {}),
  });
  routes.add({ method: 'GET', url: '/api/v1/health', summary: 'Liveness and the store revision', auth: 'public',
    response: z.object({ status: z.literal('ok'), revision: z.number() }),
    handler: async () => ({ status: 'ok' as const, revision: await store.currentRevision() }) });
  routes.add({ method: 'GET', url: '/api/v1/ca', summary: 'The CA certificate clients and connectors trust', auth: 'public',
    response: z.object({ certificate: z.string(), pin: z.string() }),
    handler: async () => ({ certificate: ca.certificatePem, pin: caPin(ca.certificatePem) }) });
  routes.add({ method: 'GET', url: '/api/v1/openapi.json', summary: 'This document', auth: 'public',
    handler: async () => routes.openApi({ title: 'Postern API', version: options.version }) });

  routes.add({ method: 'GET', url: '/api/v1/sockets', summary: 'List sockets by name (?after=<name>&limit= for a page; `next` names the following one)', auth: 'sockets:read',
    response: socketList,
    handler: async ({ request }) => {
      const query = parseWith(listPageQuery, request.query, 'query');
      const connectors = await store.connectors.list();
      const page = pageOf(await store.sockets.list(storePage(query)), query, (s) => s.name);
      return { sockets: page.rows.map((socket) => present(socket, connectors)), ...(page.next !== undefined ? { next: page.next } : {}) };
    } });
  routes.add({ method: 'POST', url: '/api/v1/sockets', summary: 'Create a socket', auth: 'sockets:write', change: { entity: 'socket' }, body: createSocketBody, response: socketView, status: 201,
    handler: async ({ body }) => {
      const { cloudauth: _c, allowed_email_domains: _d, allowed_email_addresses: _a, connectors: _b, raw_paths: rawPaths, record_input: _r, upstream_host_key: _k, ...rest } = body;
      checkUpstream(body.type, body.upstream);
      checkSshFields(body.type, body);
      checkDatabaseField(body.type, body);
      const auth = authFrom(body);
      const binding = await bindingPatch([], { connectors: body.connectors });
      return present(await store.sockets.create({ ...rest, ...binding, ...sshPatch(body), upstream: rest.upstream ?? null, ...(auth ? { auth } : {}), ...(rawPaths !== undefined ? { rawPaths } : {}) }), await store.connectors.list());
    } });
  routes.add({ method: 'GET', url: '/api/v1/sockets/:name', summary: 'Show a socket', auth: 'sockets:read', params: nameParams, response: socketView,
    handler: async ({ params }) => {
      const record = await store.sockets.get(params.name);
      if (!record) throw new PosternError('not_found', `socket "${params.name}" does not exist`);
      return present(record, await store.connectors.list());
    } });
  routes.add({ method: 'PATCH', url: '/api/v1/sockets/:name', summary: 'Update a socket', auth: 'sockets:write', change: { entity: 'socket', current: (p) => store.sockets.get(p.name) }, params: nameParams, body: updateSocketBody, response: socketView,
    handler: async ({ params, body }) => {
      const { cloudauth: _c, allowed_email_domains: _d, allowed_email_addresses: _a, connectors: _b, add_connectors: _ba, remove_connectors: _br, raw_paths: rawPaths, record_input: _r, upstream_host_key: _k, ...rest } = body;
      const current = await store.sockets.get(params.name);
      if (!current) throw new PosternError('not_found', `socket "${params.name}" does not exist`);
      checkUpstream(body.type ?? current.type, body.upstream === undefined ? (body.type ? current.upstream : undefined) : body.upstream);
      checkSshFields(body.type ?? current.type, body);
      checkDatabaseField(body.type ?? current.type, body);
      const auth = authFrom(body, current.auth);
      const binding = await bindingPatch(current.connectors, body);
      return present(await store.sockets.update(params.name, { ...rest, ...binding, ...sshPatch(body), ...(auth ? { auth } : {}), ...(rawPaths !== undefined ? { rawPaths } : {}) }), await store.connectors.list());
    } });
  routes.add({ method: 'DELETE', url: '/api/v1/sockets/:name', summary: 'Delete a socket', auth: 'sockets:write', change: { entity: 'socket', current: (p) => store.sockets.get(p.name) }, params: nameParams,
    handler: async ({ params }) => {
      await store.sockets.delete(params.name);
      return undefined;
    } });

  routes.add({ method: 'GET', url: '/api/v1/connectors', summary: 'List connectors and their live tunnels (?after=<id>&limit= for a page in id order; `next` names the following one)', auth: 'connectors:read',
    response: connectorList,
    handler: async ({ request }) => {
      const query = parseWith(listPageQuery, request.query, 'query');
      const tunnels = options.hub?.list() ?? [];
      const page = pageOf(await store.connectors.list(storePage(query)), query, (c) => c.id);
      return { connectors: page.rows.map((c) => ({ ...c, tunnels: tunnels.filter((t) => t.connectorId === c.id) })), ...(page.next !== undefined ? { next: page.next } : {}) };
    } });
  routes.add({ method: 'DELETE', url: '/api/v1/connectors/:id', summary: 'Revoke a connector and cut its tunnels', auth: 'connectors:write', change: { entity: 'connector', current: (p) => store.connectors.get(p.id) }, params: idParams,
    handler: async ({ params }) => {
      if (!(await store.connectors.get(params.id))) throw new PosternError('not_found', `connector "${params.id}" does not exist`);
      await store.connectors.revoke(params.id, now().toISOString());
      options.hub?.disconnectConnector(params.id);
      return undefined;
    } });
  routes.add({ method: 'POST', url: '/api/v1/connectors/tokens', summary: 'Create a one-time join token', auth: 'connectors:write', change: { entity: 'join_token' }, body: tokenBody, status: 201,
    response: createdJoinTokenView,
    handler: async ({ body }) => {
      for (const socket of body.sockets ?? []) {
        if (!(await store.sockets.get(socket))) throw new PosternError('not_found', `socket "${socket}" does not exist (create it first: a join token binds existing sockets or a tag selector)`);
      }
      const secret = generateSecret();
      const expiresAt = new Date(now().getTime() + body.ttl_seconds * 1000).toISOString();
      const name = body.name ?? `connector-${secret.slice(0, 6).toLowerCase()}`;
      const record = await store.joinTokens.create({ tokenHash: hashToken(secret), connectorName: name, expiresAt, sockets: body.sockets ?? [], socketTags: body.tags ?? null });
      return { id: record.id, token: `pjt1.${secret}.${caPin(ca.certificatePem)}`, name, expiresAt, sockets: [...record.sockets], socketTags: record.socketTags };
    } });
  routes.add({ method: 'GET', url: '/api/v1/connectors/tokens', summary: 'List join tokens (never their secrets)', auth: 'connectors:read', response: joinTokenList,
    handler: async () => ({ tokens: (await store.joinTokens.list()).map(({ tokenHash: _hash, ...rest }) => rest) }) });
  routes.add({ method: 'POST', url: '/api/v1/connectors/enroll', summary: 'Exchange a join token and a CSR for a connector certificate', auth: 'public',
    body: enrollBody, response: issuedView, status: 201,
    handler: async ({ body }) => {
      const secret = body.token.startsWith('pjt1.') ? body.token.split('.')[1] ?? '' : body.token;
      const tokenHash = hashToken(secret);
      const token = (await store.joinTokens.list()).find((t) => t.tokenHash === tokenHash);
      if (!token) throw new PosternError('token_invalid', 'join token is not valid');
      const connector = await store.connectors.create({ name: token.connectorName });
      try {
        await store.joinTokens.consume(tokenHash, connector.id, now().toISOString());
      } catch (err) {
        await store.connectors.delete(connector.id);
        throw err;
      }
      const issued = await issueConnectorCertificate(connector, body.csr);
      logger.info({ connector: connector.id, name: connector.name }, 'connector enrolled');
      return issued;
    } });
  routes.add({ method: 'POST', url: '/api/v1/connectors/renew', summary: 'Renew a connector certificate (mutual TLS with the current one)', auth: 'connector',
    body: renewBody, response: issuedView,
    handler: async ({ body, request }) => {
      const id = connectorFromCertificate(request);
      const connector = await store.connectors.get(id);
      if (!connector || connector.revokedAt) throw new PosternError('certificate_invalid', 'this connector is revoked or unknown');
      return issueConnectorCertificate(connector, body.csr);
    } });
  registerAuthRoutes(app, { store, sessions: options.sessions, socketOrigin: options.socketOrigin, now });
  registerOidcRoutes(app, { store, sessions: options.sessions, cipher: options.cipher, controlOrigin: options.controlOrigin, socketOrigin: options.socketOrigin, now });
  registerIdentityProviderApi(routes, { store, cipher: options.cipher, controlOrigin: options.controlOrigin, now });
  registerSamlRoutes(app, { store, sessions: options.sessions, cipher: options.cipher, socketOrigin: options.socketOrigin, controlOrigin: options.controlOrigin, now });
  registerIdentityApi(app, routes, {
    store, ca, sshCa: options.sshCa, signingKeys: options.signingKeys, now, inviteKey: options.inviteKey, controlOrigin: options.controlOrigin,
    ...(options.geo ? { geo: options.geo } : {}),
    ...(options.onSessionRevoked ? { onSessionRevoked: options.onSessionRevoked } : {}),
  });
  registerInviteRoutes(app, { store, inviteKey: options.inviteKey, now });
  registerCliLogin(app, routes, { store, sessions: options.sessions, controlOrigin: options.controlOrigin, now, ...(options.onSessionRevoked ? { onSessionRevoked: options.onSessionRevoked } : {}) });
  // Prometheus metrics, for a scraper's token with metrics:read (outside /api/v1: not part of the API document).
  app.get('/metrics', async (request, reply) => {
    await authenticate(request, 'metrics:read');
    return reply.type('text/plain; version=0.0.4').send(options.metrics?.() ?? '');
  });
  registerPolicyApi(routes, { store, audit: options.audit, now, ...(options.geo ? { geo: options.geo } : {}), ...(options.caughtUp ? { caughtUp: options.caughtUp } : {}) });
  registerAuditApi(routes, { store, audit: options.audit, flushAudit: options.flushAudit, now });
  registerRecordingApi(routes, { store, now });
  registerPortalApi(routes, { store, now, socketUrl: options.socketUrl, audit: options.audit, ...(options.geo ? { geo: options.geo } : {}), ...(options.onSessionRevoked ? { onSessionRevoked: options.onSessionRevoked } : {}) });
  registerLiveApi(routes, { store, audit: options.audit, flushAudit: options.flushAudit, logger, now, ...(options.hub ? { hub: options.hub } : {}), ...(options.onSessionRevoked ? { onSessionRevoked: options.onSessionRevoked } : {}) });
  registerAgentApi(routes, { store, ca, logger, now, trustDomain: options.agents?.trustDomain ?? new URL(options.controlOrigin).hostname, ...(options.agents?.certLifetimeMs !== undefined ? { certLifetimeMs: options.agents.certLifetimeMs } : {}) });
  registerServiceApi(routes, { store, ca, cipher: options.cipher, logger, now, trustDomain: options.agents?.trustDomain ?? new URL(options.controlOrigin).hostname, certLifetimeMs: options.agents?.certLifetimeMs ?? DEFAULT_AGENT_CERT_LIFETIME_MS });
  registerMeshApi(routes, {
    store, ca, cipher: options.cipher, trustDomain: options.agents?.trustDomain ?? new URL(options.controlOrigin).hostname, signingKeys: options.signingKeys, issuer: options.controlOrigin,
    revokedAgents: options.mesh.revokedAgents, revision: options.mesh.revision, audit: options.audit,
  });
  registerSshHostCaApi(routes, { sshHostCa: options.sshHostCa, domain: new URL(options.controlOrigin).hostname });
  routes.add({ method: 'GET', url: '/api/v1/tunnels', summary: 'Live tunnel connections on this node', auth: 'connectors:read',
    handler: async () => ({ tunnels: options.hub?.list() ?? [] }) });

  await app.ready();
  return { app, handler: withClientIp(handler) };
}
