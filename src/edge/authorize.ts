// The authorization endpoint for other proxies: nginx `auth_request`, Traefik `forwardAuth` and
// Envoy `ext_authz` (HTTP) ask `/_postern/authz/<socket>` whether a request may pass. It is the
// edge's own decision, not a twin: the original target made canonical by the same function, the
// same identity (the socket host's cookie through the IdentityGate, or the control host's cookie,
// a CLI token, a Postern assertion), the same policies from the in-memory snapshot, the same
// identity headers, the same `http.request` log line. A service may ask through its JWT-SVID
// for the socket's origin; it is decided by the stored policies alone, since a socket's sign-in
// settings speak of people. Only a trusted proxy may ask; no upstream is dialed, and nothing is
// written to the store beyond the batched request log.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import type { SessionRecord, SocketRecord, UserRecord } from '../store/index.js';
import { verifyJwtSvid } from '../ca/index.js';
import { canonicalTarget, decidingRule, denialDetail, evaluate, socketNamespace } from '../policy/index.js';
import type { PolicySet, RequestContext } from '../policy/index.js';
import { bearerToken, hashSessionSecret, hashToken, readSessionCookie } from '../identity/index.js';
import type { SigningKeys } from '../identity/index.js';
import type { CompiledCidrs } from '../reporting/index.js';
import { canonicalIp, normalizeIp } from '../reporting/index.js';
import { errorMessage } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { observedEvents } from './access.js';
import { identityHeaders } from './forwarding.js';
import { AUTHORIZE_PREFIX, parseForwardedRequest } from './forwarded-request.js';
import type { ForwardedRequest } from './forwarded-request.js';
import { decideRequest, upstreamIdentity } from './http-gate.js';
import type { HttpContext } from './http-gate.js';
import type { Identity } from './identity-gate.js';
import type { EdgeIdentity } from './view.js';

export { AUTHORIZE_PREFIX, isAuthorizePath } from './forwarded-request.js';

/** Sessions by their secret (control-host cookies, CLI tokens) and by id (assertions), from the snapshot. */
export interface AuthorizeView {
  sessionBySecret(hash: string): SessionRecord | undefined;
  session(id: string): SessionRecord | undefined;
  user(id: string): UserRecord | undefined;
}

/** What the runtime gives the endpoint beyond the edge's HTTP context. */
export interface AuthorizeSettings {
  sessions: () => AuthorizeView;
  /** The assertion keys, read per request so a rotation takes effect at once. */
  signingKeys: () => SigningKeys;
  /** `iss` of Postern's assertions (the control plane's origin). */
  issuer: string;
  /** `https://<domain>[:port]`, where /auth/login lives. */
  controlOrigin: string;
  /** An assertion's audience: the socket host's origin. */
  socketOrigin: (name: string) => string;
  /** Services' JWT-SVIDs (`Authorization: Bearer`, `aud` = the socket host's origin); without it only people are read. */
  services?: ServiceCredentialSettings;
}

export interface ServiceCredentialSettings {
  readonly trustDomain: string;
  /** The JWT-SVID keys (the trust bundle's JWKS). */
  readonly jwks: () => JSONWebKeySet;
  /** RevokedAgents.has: a revoked agent's services are refused here within a feed poll. */
  readonly isAgentRevoked: (agentId: string) => boolean;
  /** The stored policies without the sockets' sign-in allow-lists ("any signed-in user" means a person). */
  readonly policies: () => PolicySet;
}

export interface AuthorizeOptions extends AuthorizeSettings, Pick<HttpContext, 'view' | 'geo' | 'now' | 'logger' | 'audit'> {
  identity: EdgeIdentity;
  /** The peer that asks (a PROXY protocol header from a trusted balancer resolved, X-Forwarded-For not). */
  peerIp: (req: IncomingMessage) => string;
  /** The believed client address (X-Forwarded-For walked through trusted proxies). */
  clientIp: (req: IncomingMessage) => string;
  trustedProxies: CompiledCidrs | undefined;
}

/** A workload that presented its JWT-SVID for this socket. */
interface ServiceCaller {
  readonly service: { readonly id: string; readonly labels: Readonly<Record<string, string>> };
}
type Caller = Identity | ServiceCaller;

/** Who a credential names, why it names nobody, or undefined: not this reader's kind of credential. */
type Credential = Caller | { readonly reason: string } | undefined;
type CredentialReader = (req: IncomingMessage, record: SocketRecord) => Credential | Promise<Credential>;

const CLI_TOKEN = /^pst1_[A-Za-z0-9_-]{43}$/;

interface Answer {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly problem?: { readonly code: ErrorCode; readonly detail: string };
}

/** Header values carry only printable ASCII (a reason may quote a user's input). */
function headerText(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 512);
}

export class Authorizer {
  private readonly keySets = new WeakMap<SigningKeys, JWTVerifyGetKey>();
  /** Tried in order; the first that recognises its kind of credential answers. */
  private readonly readers: readonly CredentialReader[] = [
    (req) => this.cliToken(req),
    (req, record) => this.assertion(req, record),
    (req, record) => this.serviceToken(req, record),
    (req, record) => this.sessionCookie(req, record),
  ];

  constructor(private readonly options: AuthorizeOptions) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    send(res, await this.answer(req));
  }

  private async answer(req: IncomingMessage): Promise<Answer> {
    const { options } = this;
    const peer = options.peerIp(req);
    if (!options.trustedProxies?.matches(peer)) {
      options.logger.info({ peer }, 'authorize request from a peer that is not a trusted proxy');
      return { status: 403, problem: { code: 'forbidden', detail: `only a trusted proxy may ask for decisions, and ${peer} is not one (see --trusted-proxies)` } };
    }
    const parsed = parseForwardedRequest(req.url ?? AUTHORIZE_PREFIX, req.method ?? 'GET', req.headersDistinct);
    if (!parsed.ok) return { status: parsed.status, problem: { code: parsed.status === 404 ? 'socket_not_found' : 'bad_request', detail: parsed.detail } };
    const { request } = parsed;
    const record = options.view().socket(request.socket);
    if (!record || (record.type !== 'http' && record.type !== 'https') || !record.auth.cloudauth) {
      return { status: 404, problem: { code: 'socket_not_found', detail: `there is no HTTP socket with sign-in named "${request.socket}"` } };
    }
    // The edge refuses such a target before any decision; here that is a denial the proxy can pass on.
    const target = canonicalTarget(request.rawTarget, { rawPaths: record.rawPaths });
    if (!target.ok) {
      options.logger.info({ socket: record.name, peer, method: request.method, code: target.code }, `authorize: request refused: ${target.reason}`);
      return { status: 403, headers: { 'x-postern-reason': headerText(`${target.code}: ${target.reason}`) }, problem: { code: target.code, detail: target.reason } };
    }
    const who = await this.identify(req, record);
    if ('reason' in who) return this.signInAnswer(req, record, target.target, who.reason);
    const facts = { clientIp: this.originalClientIp(req), method: request.method, path: target.path };
    const access = 'service' in who ? this.decideService(facts, record, who.service) : decideRequest(options, facts, record, who);
    const denied = access.decision.effect === 'deny';
    this.log(request, target.path, record, 'service' in who ? { actor: who.service.id, sessionId: '' } : { actor: who.user.email, sessionId: who.session.id }, access, peer, denied ? 403 : 200);
    const ruleHeader: Record<string, string> = access.rule ? { 'x-postern-rule': headerText(access.rule) } : {};
    if (denied) return { status: 403, headers: { ...ruleHeader, 'x-postern-reason': headerText(access.detail) }, problem: { code: 'forbidden', detail: access.detail } };
    // A service's identity is its JWT-SVID, which travels on to the upstream in Authorization and verifies against the trust bundle.
    if ('service' in who) return { status: 200, headers: ruleHeader };
    return { status: 200, headers: { ...ruleHeader, ...identityHeaders(await upstreamIdentity(options.identity, who, record)) } };
  }

  /** The edge's decision for a service, as decideRequest makes it for a person: same facts, same reasons. */
  private decideService(facts: { clientIp: string; method: string; path: string }, record: SocketRecord, service: ServiceCaller['service']): ReturnType<typeof decideRequest> {
    const { clientIp, method, path } = facts;
    const country = this.options.geo?.country(clientIp);
    const policies = this.options.services!.policies();
    const request: RequestContext = {
      socket: { name: record.name, namespace: socketNamespace(record), tags: record.tags },
      principal: { service }, clientIp, ...(country === undefined ? {} : { country }), at: this.options.now(), action: { protocol: 'http', method, path },
    };
    const decision = evaluate(request, policies);
    const detail = decision.effect === 'deny' ? denialDetail(request, policies, decision) : decision.summary;
    return { clientIp, country, decision, detail, rule: decidingRule(decision) };
  }

  /** The first credential a reader recognises decides; none at all is "not signed in". */
  private async identify(req: IncomingMessage, record: SocketRecord): Promise<Caller | { reason: string }> {
    for (const read of this.readers) {
      const found = await read(req, record);
      if (found) return found;
    }
    return { reason: 'not signed in' };
  }

  /** A person's CLI sign-in (`postern login`): `Authorization: Bearer pst1_…`. */
  private cliToken(req: IncomingMessage): Credential {
    const token = bearerToken(req.headers.authorization);
    if (!token || !CLI_TOKEN.test(token)) return undefined;
    const session = this.options.sessions().sessionBySecret(hashToken(token));
    return session?.kind === 'cli' ? this.live(session) : { reason: 'unknown or revoked CLI sign-in' };
  }

  /** The assertion Postern gave this socket's upstream (`X-Postern-Jwt-Assertion`), as a bearer token; other bearers are the upstream's business. */
  private async assertion(req: IncomingMessage, record: SocketRecord): Promise<Credential> {
    const token = bearerToken(req.headers.authorization);
    if (!token || !this.issuedByUs(token)) return undefined;
    try {
      const { payload } = await jwtVerify(token, this.keySet(), { issuer: this.options.issuer, audience: this.options.socketOrigin(record.name), algorithms: ['ES256'], currentDate: this.options.now() });
      const session = typeof payload.sid === 'string' ? this.options.sessions().session(payload.sid) : undefined;
      if (!session || session.userId !== payload.sub) return { reason: 'the assertion names no live session' };
      return this.live(session);
    } catch {
      return { reason: 'the assertion is not valid for this socket (signature, audience or expiry)' };
    }
  }

  /** A service's JWT-SVID for this socket host (`sub` a SPIFFE id of our trust domain), as a bearer token. */
  private async serviceToken(req: IncomingMessage, record: SocketRecord): Promise<Credential> {
    const services = this.options.services;
    const token = bearerToken(req.headers.authorization);
    if (!services || !token || !this.namesService(token, services.trustDomain)) return undefined;
    try {
      const verified = await verifyJwtSvid(token, {
        jwks: services.jwks(), audience: this.options.socketOrigin(record.name), trustDomain: services.trustDomain,
        now: Math.floor(this.options.now().getTime() / 1000), isAgentRevoked: services.isAgentRevoked,
      });
      return { service: { id: verified.spiffeId, labels: verified.labels } };
    } catch (err) {
      return { reason: `the service token is not valid for this socket: ${errorMessage(err)}` };
    }
  }

  private namesService(token: string, trustDomain: string): boolean {
    try {
      return decodeJwt(token).sub?.startsWith(`spiffe://${trustDomain}/`) === true;
    } catch {
      return false;
    }
  }

  /** The session cookie the proxy passed on: the socket host's own (a grant, via the IdentityGate) or the control host's. */
  private sessionCookie(req: IncomingMessage, record: SocketRecord): Credential {
    const secret = readSessionCookie(req.headers);
    if (!secret) return undefined;
    const session = this.options.sessions().sessionBySecret(hashSessionSecret(secret));
    if (session) return session.kind === 'browser' ? this.live(session) : { reason: 'not a browser sign-in' };
    return this.options.identity.gate.identify(req, record);
  }

  private issuedByUs(token: string): boolean {
    try {
      return decodeJwt(token).iss === this.options.issuer;
    } catch {
      return false;
    }
  }

  private keySet(): JWTVerifyGetKey {
    const keys = this.options.signingKeys();
    let set = this.keySets.get(keys);
    if (!set) this.keySets.set(keys, (set = createLocalJWKSet(keys.jwks())));
    return set;
  }

  private live(session: SessionRecord): Identity | { reason: string } {
    if (session.revokedAt !== null || Date.parse(session.expiresAt) <= this.options.now().getTime()) return { reason: 'session ended' };
    const user = this.options.sessions().user(session.userId);
    if (!user || user.disabledAt) return { reason: 'user disabled or removed' };
    return { session, user };
  }

  /** X-Forwarded-For through trusted proxies, else the X-Real-IP the (trusted) proxy set, else the proxy itself. */
  private originalClientIp(req: IncomingMessage): string {
    if (req.headers['x-forwarded-for'] === undefined) {
      const realIp = normalizeIp(String(req.headers['x-real-ip'] ?? ''));
      if (realIp !== undefined) return realIp;
    }
    return canonicalIp(this.options.clientIp(req));
  }

  /**
   * 401 with the sign-in URL in Location (nginx: `auth_request_set` it and `error_page 401`);
   * with `?redirect=1` on the authorize URL (Traefik, which hands the answer to the browser) a
   * GET or HEAD gets the 302 itself.
   */
  private signInAnswer(req: IncomingMessage, record: SocketRecord, target: string, reason: string): Answer {
    const login = new URL('/auth/login', this.options.controlOrigin);
    login.searchParams.set('socket', record.name);
    login.searchParams.set('return_to', target);
    const own = new URL(req.url ?? '/', 'https://authorize.invalid');
    const method = req.method ?? 'GET';
    const redirect = own.searchParams.get('redirect') === '1' && (method === 'GET' || method === 'HEAD');
    return { status: redirect ? 302 : 401, headers: { location: login.toString() }, problem: { code: 'unauthenticated', detail: `${reason}: sign in at ${login.toString()}` } };
  }

  /** The edge's request log line (and observe mode's events), marked as answered for a proxy. */
  private log(request: ForwardedRequest, path: string, record: SocketRecord, who: { actor: string; sessionId: string }, access: ReturnType<typeof decideRequest>, peer: string, status: number): void {
    const base = { actor: who.actor, socket: record.name, clientIp: access.clientIp, country: access.country ?? '', sessionId: who.sessionId };
    this.options.audit({
      ...base, type: 'http.request', at: this.options.now().toISOString(), decision: access.decision.effect, rule: access.rule, reason: access.detail,
      details: { method: request.method, path, status, bytes: 0, durationMs: 0, via: 'authorize', proxy: peer, ...(request.host ? { host: request.host.slice(0, 253) } : {}) },
    });
    for (const event of observedEvents(access.decision, { ...base, details: { protocol: 'http', method: request.method, path, via: 'authorize' } }, access.detail)) this.options.audit(event);
  }
}

function send(res: ServerResponse, answer: Answer): void {
  const body = answer.problem
    ? `${JSON.stringify({ type: `https://postern.dev/errors/${answer.problem.code}`, title: answer.problem.detail, status: answer.status, detail: answer.problem.detail, code: answer.problem.code })}\n`
    : '';
  res.writeHead(answer.status, {
    ...answer.headers,
    'cache-control': 'no-store',
    'content-length': String(Buffer.byteLength(body)),
    ...(answer.problem ? { 'content-type': 'application/problem+json', 'postern-error': answer.problem.code } : {}),
  });
  res.end(body);
}
