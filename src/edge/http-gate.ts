// The HTTP gate: every request on the public port is routed by Host, its target made canonical,
// then either served by the control plane, refused, or (sign-in sockets) checked for identity,
// decided against the policies, logged, and proxied. Deciding and logging helpers are shared
// with WebSocket upgrades (upgrade.ts), which pass the same gate.
import http from 'node:http';
import type { Logger } from 'pino';
import type { SocketRecord } from '../store/index.js';
import { canonicalTarget, decidingRule, denialDetail, evaluate, requestContext } from '../policy/index.js';
import type { CanonicalTarget } from '../policy/index.js';
import type { NewAuditEvent, GeoLookup } from '../reporting/index.js';
import { observedEvents, requestPath } from './access.js';
import { sendProblem, sendRawProblem } from './error-page.js';
import type { EdgeProblem } from './error-page.js';
import type { UpstreamIdentity } from './forwarding.js';
import type { Authorizer } from './authorize.js';
import { isAuthorizePath } from './forwarded-request.js';
import type { HttpSocketProxy } from './http-proxy.js';
import type { Identity } from './identity-gate.js';
import { routeHost } from './routing.js';
import { SIGN_OUT_PATH, isSignOutPath } from './sign-out.js';
import type { EdgeIdentity, EdgeView } from './view.js';

export interface EdgeHttpLimits {
  /** Time to receive a request's head. */
  headerTimeoutMs: number;
  /** A request body that sends nothing for this long is cut. */
  bodyIdleTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** Open upstream streams one client address may hold on public sockets. */
  maxStreamsPerClient: number;
}

export const DEFAULT_HTTP_LIMITS: EdgeHttpLimits = Object.freeze({ headerTimeoutMs: 30_000, bodyIdleTimeoutMs: 30_000, keepAliveTimeoutMs: 65_000, maxStreamsPerClient: 256 });

/** What deciding an HTTP request needs; requests and upgrades share it. */
export interface HttpContext {
  domain: string;
  view: () => EdgeView;
  logger: Logger;
  audit: (event: NewAuditEvent) => void;
  /** Sign-in for cloudauth sockets; without it such sockets answer 503. */
  identity?: EdgeIdentity;
  geo?: GeoLookup;
  now: () => Date;
  proxy: HttpSocketProxy;
  /** The believed client address (trusted proxies resolved). */
  clientIp: (req: http.IncomingMessage) => string;
}

export interface HttpGateOptions extends HttpContext {
  limits: EdgeHttpLimits;
  /** Serves the control plane's host, told the resolved client address; absent on an edge-only node. */
  controlHandler?: (req: http.IncomingMessage, res: http.ServerResponse, clientIp: string) => void;
  /** `/_postern/authz/<socket>` for other proxies, on the control host or (Envoy keeps the original Host) a host not served here. */
  authorize?: Authorizer;
}

export type HttpAccess = ReturnType<typeof decideHttp>;

/** One HTTP request (or WebSocket upgrade) decided against the current policies. */
export function decideHttp(context: HttpContext, req: http.IncomingMessage, record: SocketRecord, identity: Identity) {
  return decideRequest(context, { clientIp: context.clientIp(req), method: req.method ?? 'GET', path: requestPath(req.url) }, record, identity);
}

/** The same decision from the request's facts alone (the authorize endpoint reads them from another proxy's headers). */
export function decideRequest(context: Pick<HttpContext, 'geo' | 'view' | 'now'>, facts: { clientIp: string; method: string; path: string }, record: SocketRecord, identity: Identity) {
  const { clientIp, method, path } = facts;
  const country = context.geo?.country(clientIp);
  const policies = context.view().policies();
  const request = requestContext({ socket: record, user: identity.user, clientIp, country, at: context.now(), action: { protocol: 'http', method, path } });
  const decision = evaluate(request, policies);
  const detail = decision.effect === 'deny' ? denialDetail(request, policies, decision) : decision.summary;
  return { clientIp, country, decision, detail, rule: decidingRule(decision) };
}

/** A request target the edge will not forward: refused before any decision, and logged. */
export function refusedTarget(context: HttpContext, req: http.IncomingMessage, record: SocketRecord, refusal: Extract<CanonicalTarget, { ok: false }>): EdgeProblem {
  context.logger.info({ socket: record.name, clientIp: context.clientIp(req), method: req.method, code: refusal.code }, `request refused: ${refusal.reason}`);
  return { status: 400, code: refusal.code, detail: `${refusal.reason}${refusal.code === 'path_ambiguous' ? ' (a socket created with --raw-paths passes such paths as sent)' : ''}` };
}

/** The identity headers and signed assertion the upstream receives for a signed-in user. */
export async function upstreamIdentity(identity: EdgeIdentity, who: Identity, record: SocketRecord): Promise<UpstreamIdentity> {
  const assertion = await identity.assertion(who, record);
  return { userId: who.user.id, email: who.user.email, groups: who.user.groups, assertion };
}

export class HttpGate {
  /** Never listens: the front door hands it TLS sockets. */
  readonly server: http.Server;

  constructor(private readonly options: HttpGateOptions) {
    const { limits } = options;
    // A whole request has no deadline (uploads may be large); its head and every pause in its body do.
    this.server = http.createServer({
      requestTimeout: 0,
      headersTimeout: limits.headerTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(30_000, Math.max(250, limits.headerTimeoutMs / 4)),
    });
    // Node only starts the check that enforces headersTimeout on 'listening': without this, a
    // head could take forever.
    this.server.emit('listening');
    this.server.on('request', (req, res) => this.onRequest(req, res));
    this.server.on('clientError', (err, socket) => {
      const timedOut = (err as NodeJS.ErrnoException).code === 'ERR_HTTP_REQUEST_TIMEOUT';
      if (socket.writable) sendRawProblem(socket, timedOut ? { status: 408, code: 'request_timeout', detail: 'the request head did not arrive in time' } : { status: 400, code: 'bad_request', detail: 'the request is not valid HTTP/1.1' });
      options.logger.debug({ err: err.message }, 'malformed HTTP from client');
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const route = routeHost(req.headers.host, this.options.domain);
    if (route.kind !== 'socket' && this.options.authorize && isAuthorizePath(req.url)) return this.authorize(req, res, this.options.authorize);
    if (route.kind === 'control') {
      if (this.options.controlHandler) return this.options.controlHandler(req, res, this.options.clientIp(req));
      return sendProblem(req, res, { status: 404, code: 'not_found', detail: 'this node is an edge; the control plane is served elsewhere' });
    }
    if (route.kind === 'unknown') return sendProblem(req, res, { status: 404, code: 'socket_not_found', detail: `${route.host} is not served here` });
    const record = this.options.view().socket(route.name);
    if (!record || record.type === 'tls' || record.type === 'ssh') return sendProblem(req, res, { status: 404, code: 'socket_not_found', detail: `there is no HTTP socket named "${route.name}"` });
    const target = canonicalTarget(req.url ?? '', { rawPaths: record.rawPaths });
    if (!target.ok) return sendProblem(req, res, refusedTarget(this.options, req, record, target));
    req.url = target.target;
    if (isSignOutPath(target.path)) return this.signOut(req, res, record);
    if (!record.auth.cloudauth) return this.options.proxy.handleRequest(req, res, record);
    this.gated(req, res, record).catch((err: unknown) => {
      this.options.logger.error({ err, socket: record.name }, 'identity check failed');
      sendProblem(req, res, { status: 500, code: 'internal', detail: 'the identity check failed (see the edge log)' });
    });
  }

  private authorize(req: http.IncomingMessage, res: http.ServerResponse, authorizer: Authorizer): void {
    authorizer.handle(req, res).catch((err: unknown) => {
      this.options.logger.error({ err }, 'authorize request failed');
      sendProblem(req, res, { status: 500, code: 'internal', detail: 'the decision failed (see the edge log)' });
    });
  }

  /** The sign-out path is the edge's own on every HTTP socket, signed in or not: never forwarded. */
  private signOut(req: http.IncomingMessage, res: http.ServerResponse, record: SocketRecord): void {
    const identity = this.options.identity;
    if (!identity) return sendProblem(req, res, { status: 404, code: 'not_found', detail: 'sign-in is not configured on this edge' });
    identity.gate.signOut(req, res, record, this.options.clientIp(req)).catch((err: unknown) => {
      this.options.logger.error({ err, socket: record.name }, 'sign-out failed');
      sendProblem(req, res, { status: 500, code: 'internal', detail: 'the sign-out failed (see the edge log); try again' });
    });
  }

  private async gated(req: http.IncomingMessage, res: http.ServerResponse, record: SocketRecord): Promise<void> {
    const identity = this.options.identity;
    if (!identity) return sendProblem(req, res, { status: 503, code: 'internal', detail: 'sign-in is not configured on this edge' });
    const result = await identity.gate.check(req, res, record);
    if (result.kind === 'answered') return;
    const access = decideHttp(this.options, req, record, result.identity);
    this.logRequest(req, res, record, result.identity, access);
    const observed = { actor: result.identity.user.email, socket: record.name, clientIp: access.clientIp, country: access.country ?? '', sessionId: result.identity.session.id, details: { protocol: 'http', method: req.method ?? 'GET', path: requestPath(req.url) } };
    for (const event of observedEvents(access.decision, observed, access.detail)) this.options.audit(event);
    if (access.decision.effect === 'deny') return sendProblem(req, res, { status: 403, code: 'forbidden', detail: access.detail, signOutPath: SIGN_OUT_PATH });
    this.options.proxy.handleRequest(req, res, record, await upstreamIdentity(identity, result.identity, record));
  }

  /** The HTTP request log: one `http.request` event per request on a sign-in socket, written when it ends. */
  private logRequest(req: http.IncomingMessage, res: http.ServerResponse, record: SocketRecord, identity: Identity, access: HttpAccess): void {
    const bytesBefore = req.socket.bytesWritten;
    const started = this.options.now();
    res.once('close', () => {
      this.options.audit({
        type: 'http.request', at: started.toISOString(), actor: identity.user.email, socket: record.name, clientIp: access.clientIp, country: access.country ?? '',
        decision: access.decision.effect, rule: access.rule, reason: access.detail, sessionId: identity.session.id,
        details: { method: req.method ?? 'GET', path: requestPath(req.url), status: res.statusCode, bytes: Math.max(0, req.socket.bytesWritten - bytesBefore), durationMs: this.options.now().getTime() - started.getTime() },
      });
    });
  }
}
