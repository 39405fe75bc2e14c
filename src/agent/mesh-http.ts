// L7 of the agents' mesh: identity per request. The sending agent is an HTTP proxy on the
// dependency's loopback listener that adds the calling service's JWT-SVID (audience: the
// destination's SPIFFE id) to every request and sends it over mutual TLS, keep-alive. The
// receiving agent runs HTTP over the mesh's TLS connections to its http services: it strips
// what only Postern may set, requires the JWT-SVID and checks that it names the same service as
// the mutual-TLS peer, verifies the person's assertion the caller relays (if any), decides per
// method and canonical path, and forwards an allowed request with the caller's identity headers
// (the person's exactly as the edge sets them for a socket upstream, the service's in
// X-Postern-Service and X-Postern-Svid). Upgrades (WebSocket) are not carried.
import http, { STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { PosternError, errorMessage, isPosternError } from '../errors.js';
import { headerKey, upstreamRequestHeaders } from '../identity/index.js';
import { canonicalTarget, decidingRule } from '../policy/index.js';
import type { Decision, RequestContext } from '../policy/index.js';
import { stripHopByHop } from '../tunnel/index.js';
import { MESH_ALPN, SERVICE_HEADER, SVID_HEADER, checkDestinationSvid, flowBase, meshServerName, observedEvent, serviceContext } from './mesh-core.js';
import type { FlowBase, MeshService, OpenFlow, ServiceName } from './mesh-core.js';
import type { AssertedUser, FlowLog, MeshAuthority, VerifiedService } from './mesh-types.js';
import type { AgentService, ServiceSvid } from './services.js';
import { serviceKey } from './services.js';
import type { JwtSvid } from '../api-client/index.js';

const ASSERTION_HEADER = 'x-postern-jwt-assertion';
const MESH_HEADERS: ReadonlySet<string> = new Set([SVID_HEADER, SERVICE_HEADER]);

/** What the mesh needs of the agent's service identities (ServiceIdentities is one). */
export interface MeshIdentities {
  readonly services: readonly AgentService[];
  svid(key: string): ServiceSvid | undefined;
  jwt(key: string, audience: string): Promise<JwtSvid>;
  on(event: 'svid', listener: (svid: ServiceSvid) => void): this;
  off(event: 'svid', listener: (svid: ServiceSvid) => void): this;
}

/** Headers minus hop-by-hop ones and minus the mesh's own (whatever their spelling): only agents set those. */
function withoutMeshHeaders(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(stripHopByHop(headers))) {
    if (!MESH_HEADERS.has(headerKey(key))) out[key] = value;
  }
  return out;
}

/** The sending agent's request headers: the caller's own X-Postern-Svid out, ours in; the person's assertion travels on. */
export function senderHeaders(headers: IncomingHttpHeaders, jwtSvid: string): Record<string, string | string[]> {
  return { ...withoutMeshHeaders(headers), ...(headers.host === undefined ? {} : { host: headers.host }), [SVID_HEADER]: jwtSvid };
}

/** The headers the service behind the receiving agent gets: nothing a client may not set, the verified identities added. */
export function receiverHeaders(headers: IncomingHttpHeaders, facts: { clientIp: string; caller: VerifiedService; jwtSvid: string; user?: AssertedUser; assertion?: string }): Record<string, string | string[]> {
  const identity = facts.user && facts.assertion !== undefined ? { userId: facts.user.id, email: facts.user.email, groups: facts.user.groups, assertion: facts.assertion } : undefined;
  const out = upstreamRequestHeaders(withoutMeshHeaders(headers), { clientIp: facts.clientIp, host: headers.host ?? '', proto: 'https' }, identity);
  if (headers.host !== undefined) out.host = headers.host;
  out[SERVICE_HEADER] = facts.caller.spiffeId;
  out[SVID_HEADER] = facts.jwtSvid;
  return out;
}

/** The one value of a header; undefined when absent, refused when repeated (which copy would be believed?). */
function singleHeader(req: http.IncomingMessage, name: string): string | undefined {
  const values = req.headersDistinct[name];
  if (values === undefined) return undefined;
  if (values.length !== 1) throw new PosternError('bad_request', `${name} is sent ${values.length} times`);
  return values[0];
}

function sendProblem(res: http.ServerResponse, status: number, code: string, detail: string, extra: Record<string, unknown> = {}): void {
  if (res.headersSent) return void res.destroy();
  const body = JSON.stringify({ type: `https://postern.dev/errors/${code}`, title: STATUS_CODES[status] ?? 'Error', status, detail, code, ...extra }) + '\n';
  res.writeHead(status, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', 'postern-error': code }).end(body);
}

function problemOf(err: unknown): { status: number; code: string; detail: string } {
  if (isPosternError(err)) return { status: err.httpStatus, code: err.code, detail: err.message };
  return { status: 500, code: 'internal', detail: errorMessage(err) };
}

/** A refusal of a token names the header it came in. */
async function verifiedFrom<T>(header: string, verify: Promise<T>): Promise<T> {
  try {
    return await verify;
  } catch (err) {
    if (isPosternError(err)) throw new PosternError(err.code, `${header}: ${err.message}`, { cause: err });
    throw err;
  }
}

export interface MeshHttpSenderOptions {
  readonly destination: ServiceName & { readonly spiffeId: string };
  readonly address: { readonly host: string; readonly port: number };
  readonly identities: MeshIdentities;
  readonly authority: MeshAuthority;
  /** The declared service that opened the connection; rejects (forbidden) when it is none. */
  readonly callerOf: (socket: net.Socket) => Promise<AgentService>;
  /** Records the refusal of a local caller (once per connection). */
  readonly refuse: (socket: net.Socket, err: unknown) => void;
  readonly logger: Logger;
}

/** The sending side of one http dependency: `server` listens on its loopback address. */
export class MeshHttpSender {
  readonly server: http.Server;
  readonly #callers = new WeakMap<net.Socket, Promise<AgentService>>();
  /** One keep-alive agent per client certificate: a rotated SVID gets a new one, the old one's idle connections are closed. */
  #agent: { key: string; agent: https.Agent } | undefined;

  constructor(private readonly options: MeshHttpSenderOptions) {
    this.server = http.createServer((req, res) => void this.#handle(req, res));
  }

  stop(): void {
    this.server.closeAllConnections();
    this.#agent?.agent.destroy();
  }

  /** Looked up once per connection (a keep-alive client is the same process throughout). */
  #caller(socket: net.Socket): Promise<AgentService> {
    let caller = this.#callers.get(socket);
    if (!caller) {
      caller = this.options.callerOf(socket);
      caller.catch((err: unknown) => this.options.refuse(socket, err));
      this.#callers.set(socket, caller);
    }
    return caller;
  }

  #agentFor(svid: ServiceSvid): https.Agent {
    const { authority, destination } = this.options;
    const ca = authority.caPems();
    const key = `${svid.certPem}\n${ca.join('')}`;
    if (this.#agent?.key === key) return this.#agent.agent;
    const retired = this.#agent?.agent;
    if (retired) {
      for (const sockets of Object.values(retired.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
      retired.on('free', (socket: net.Socket) => socket.destroy());
    }
    const agent = new https.Agent({
      keepAlive: true, cert: svid.certPem, key: svid.keyPem, ca: [...ca], servername: meshServerName(destination), ALPNProtocols: [MESH_ALPN],
      checkServerIdentity: (_host, cert) => checkDestinationSvid(authority, cert, destination.spiffeId),
    });
    this.#agent = { key, agent };
    return agent;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const { identities, destination, address, logger } = this.options;
    let service: AgentService;
    try {
      service = await this.#caller(req.socket);
    } catch (err) {
      res.shouldKeepAlive = false;
      const problem = problemOf(err);
      return sendProblem(res, problem.status, problem.code, problem.detail);
    }
    const key = serviceKey(service);
    const svid = identities.svid(key);
    let jwt: JwtSvid;
    try {
      if (!svid) throw new PosternError('internal', `the SVID of ${key} is not issued yet`, { retryable: true });
      jwt = await identities.jwt(key, destination.spiffeId);
    } catch (err) {
      logger.warn({ service: key, destination: destination.spiffeId, err: errorMessage(err) }, 'mesh: no JWT-SVID for a call');
      return sendProblem(res, 503, 'internal', `no identity for ${key} to call ${destination.spiffeId} with: ${errorMessage(err)}`);
    }
    const upstream = https.request({
      agent: this.#agentFor(svid), host: address.host, port: address.port, method: req.method, path: req.url, headers: senderHeaders(req.headers, jwt.token),
    });
    upstream.once('socket', (socket) => socket.setNoDelay(true));
    upstream.on('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, stripHopByHop(answer.headers));
      answer.pipe(res);
    });
    upstream.on('error', (err) => {
      logger.info({ service: key, destination: destination.spiffeId, err: errorMessage(err) }, 'mesh: call failed');
      sendProblem(res, 502, 'upstream_unreachable', `${destination.spiffeId} at ${address.host}:${address.port}: ${errorMessage(err)}`);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }
}

interface InboundConnection {
  readonly destination: MeshService;
  readonly port: number;
  /** The mutual-TLS peer, verified at the handshake. */
  readonly peer: VerifiedService;
  readonly clientIp: string;
}

interface Admitted {
  readonly caller: VerifiedService;
  readonly jwtSvid: string;
  readonly user?: AssertedUser;
  readonly assertion?: string;
  readonly target: string;
  readonly path: string;
  readonly context: RequestContext;
  readonly decision: Decision;
}

export interface MeshHttpReceiverOptions {
  readonly authority: MeshAuthority;
  readonly flowLog: FlowLog;
  readonly logger: Logger;
  readonly clock: Clock;
  /** This agent's id, for the events. */
  readonly agentId: () => string;
  /** Where live connections are kept so a revocation of the caller's agent cuts them. */
  readonly flows: Set<OpenFlow>;
}

/** The receiving side of every http service of this agent: HTTP over the mesh's verified TLS connections. */
export class MeshHttpReceiver {
  readonly #server: http.Server;
  readonly #connections = new WeakMap<net.Socket, InboundConnection>();

  constructor(private readonly options: MeshHttpReceiverOptions) {
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
  }

  /** Serves HTTP on a TLS connection whose peer is `peer`, for the service `destination` on 127.0.0.1:`port`. */
  accept(socket: tls.TLSSocket, connection: InboundConnection): void {
    const { authority, flows, logger } = this.options;
    this.#connections.set(socket, connection);
    const { peer } = connection;
    const flow: OpenFlow = {
      recheck: () => (authority.isAgentRevoked(peer.agentId) ? `agent ${peer.agentId} of ${peer.spiffeId} is revoked` : undefined),
      close: (reason) => {
        logger.info({ caller: peer.spiffeId, service: connection.destination.spiffeId, reason }, 'mesh: http connection cut');
        socket.destroy();
      },
    };
    flows.add(flow);
    socket.once('close', () => flows.delete(flow));
    this.#server.emit('connection', socket);
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const connection = this.#connections.get(req.socket);
    if (!connection) return void res.destroy();
    const started = this.options.clock.now();
    const base = flowBase(connection.destination, this.options.agentId(), connection.peer, connection.clientIp, 'http');
    let admitted: Admitted;
    try {
      admitted = await this.#admit(req, connection);
    } catch (err) {
      const problem = problemOf(err);
      this.#log(req, res, base, started, { decision: 'deny', rule: '', reason: problem.detail, path: req.url ?? '' });
      return sendProblem(res, problem.status, problem.code, problem.detail);
    }
    const { decision } = admitted;
    const reason = decision.effect === 'deny' ? this.options.authority.denialDetail(admitted.context, decision) : decision.summary;
    const request = { ...base, details: { ...base.details, method: req.method ?? 'GET', path: admitted.path } };
    const observed = observedEvent(decision, request, reason);
    if (observed) this.options.flowLog.record(observed);
    const fields = { decision: decision.effect, rule: decidingRule(decision), reason, path: admitted.path, ...(admitted.user ? { onBehalfOf: admitted.user.email } : {}) };
    this.#log(req, res, base, started, fields);
    if (decision.effect === 'deny') return sendProblem(res, 403, 'forbidden', reason, { rule: fields.rule });
    this.#forward(req, res, connection, admitted);
  }

  async #admit(req: http.IncomingMessage, connection: InboundConnection): Promise<Admitted> {
    const { authority, clock } = this.options;
    const { peer, destination } = connection;
    if (authority.isAgentRevoked(peer.agentId)) throw new PosternError('forbidden', `agent ${peer.agentId} of ${peer.spiffeId} is revoked`);
    const jwtSvid = singleHeader(req, SVID_HEADER);
    if (jwtSvid === undefined) throw new PosternError('unauthenticated', `the request carries no ${SVID_HEADER}: services call through their agent`);
    const caller = await verifiedFrom(SVID_HEADER, authority.verifyJwtSvid(jwtSvid, destination.spiffeId));
    if (caller.spiffeId !== peer.spiffeId) throw new PosternError('forbidden', `the JWT-SVID names ${caller.spiffeId}, but the connection is ${peer.spiffeId}`);
    const assertion = singleHeader(req, ASSERTION_HEADER);
    const user = assertion === undefined ? undefined : await verifiedFrom(ASSERTION_HEADER, authority.verifyUserAssertion(assertion));
    const target = canonicalTarget(req.url ?? '/');
    if (!target.ok) throw new PosternError(target.code, target.reason);
    const method = (req.method ?? 'GET').toUpperCase();
    const context = serviceContext(destination, caller, {
      clientIp: connection.clientIp, at: new Date(clock.now()), action: { protocol: 'http', method, path: target.path }, ...(user ? { user } : {}),
    });
    return { caller, jwtSvid, ...(user ? { user, assertion: assertion! } : {}), target: target.target, path: target.path, context, decision: authority.decide(context) };
  }

  #forward(req: http.IncomingMessage, res: http.ServerResponse, connection: InboundConnection, admitted: Admitted): void {
    const headers = receiverHeaders(req.headers, { clientIp: connection.clientIp, caller: admitted.caller, jwtSvid: admitted.jwtSvid, ...(admitted.user ? { user: admitted.user, assertion: admitted.assertion! } : {}) });
    const upstream = http.request({ host: '127.0.0.1', port: connection.port, method: req.method, path: admitted.target, headers });
    upstream.once('socket', (socket) => socket.setNoDelay(true));
    upstream.on('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, stripHopByHop(answer.headers));
      answer.pipe(res);
    });
    upstream.on('error', (err) => {
      this.options.logger.info({ service: connection.destination.spiffeId, port: connection.port, err: errorMessage(err) }, 'mesh: service unreachable');
      sendProblem(res, 502, 'upstream_unreachable', `${connection.destination.spiffeId} does not answer on port ${connection.port}`);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  /** One `http.request` event per request, written when it ends. */
  #log(req: http.IncomingMessage, res: http.ServerResponse, base: FlowBase, started: number, fields: { decision: 'allow' | 'deny'; rule: string; reason: string; path: string; onBehalfOf?: string }): void {
    const { flowLog, clock } = this.options;
    const { decision, rule, reason, ...rest } = fields;
    res.once('close', () => {
      flowLog.record({
        ...base, type: 'http.request', at: new Date(started).toISOString(), decision, rule, reason,
        details: { ...base.details, method: req.method ?? 'GET', ...rest, status: res.statusCode, durationMs: clock.now() - started },
      });
    });
  }
}
