// HTTP upgrades: on the control host the connectors' WebSocket tunnel and the control plane's own; on an HTTP socket a
// WebSocket, decided like a request and then kept as a live connection that is re-decided on
// every change and cut when it no longer passes.
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { canonicalTarget } from '../policy/index.js';
import { LEGACY_TUNNEL_WEBSOCKET_PATH, TUNNEL_WEBSOCKET_PATH } from '../tunnel/index.js';
import { newConnectionId, requestPath } from './access.js';
import { sendRawProblem } from './error-page.js';
import { decideHttp, refusedTarget, upstreamIdentity } from './http-gate.js';
import type { HttpContext } from './http-gate.js';
import type { LiveRegistry, Verdict } from './live-registry.js';
import { routeHost } from './routing.js';
import { SIGN_OUT_PATH, isSignOutPath } from './sign-out.js';

export interface UpgradeOptions extends HttpContext {
  live: LiveRegistry;
  /** A connector's tunnel over a WebSocket, asked for on the control host. */
  tunnelUpgrade: (req: http.IncomingMessage, client: Duplex, head: Buffer) => void;
  /** The earlier protocol's WebSocket tunnel: refused with the reason. */
  legacyTunnelUpgrade: (client: Duplex) => void;
  /** Any other upgrade on the control host (the dashboard's web terminal); without it, 404. */
  controlUpgrade?: (req: http.IncomingMessage, client: Duplex, head: Buffer, clientIp: string) => void;
}

export class UpgradeHandler {
  constructor(private readonly options: UpgradeOptions) {}

  handle(req: http.IncomingMessage, client: Duplex, head: Buffer): void {
    const { options } = this;
    client.on('error', () => client.destroy());
    const route = routeHost(req.headers.host, options.domain);
    if (route.kind === 'control') {
      const path = req.url?.split('?')[0];
      if (path === TUNNEL_WEBSOCKET_PATH) return options.tunnelUpgrade(req, client, head);
      if (path === LEGACY_TUNNEL_WEBSOCKET_PATH) return options.legacyTunnelUpgrade(client);
      if (options.controlUpgrade) return options.controlUpgrade(req, client, head, options.clientIp(req));
      return sendRawProblem(client, { status: 404, code: 'not_found', detail: 'no upgrade here' });
    }
    const record = route.kind === 'socket' ? options.view().socket(route.name) : undefined;
    if (!record || record.type === 'tls' || record.type === 'ssh') return sendRawProblem(client, { status: 404, code: 'socket_not_found', detail: 'no such HTTP socket' });
    const target = canonicalTarget(req.url ?? '', { rawPaths: record.rawPaths });
    if (!target.ok) return sendRawProblem(client, refusedTarget(options, req, record, target));
    req.url = target.target;
    if (isSignOutPath(target.path)) return sendRawProblem(client, { status: 400, code: 'bad_request', detail: `${SIGN_OUT_PATH} is Postern's sign-out page: it takes no upgrade` });
    if (!record.auth.cloudauth) return options.proxy.handleUpgrade(req, client, head, record);
    const identity = options.identity;
    if (!identity) return sendRawProblem(client, { status: 503, code: 'internal', detail: 'sign-in is not configured on this edge' });
    const who = identity.gate.authorize(req, record);
    if ('status' in who) return sendRawProblem(client, who);
    const access = decideHttp(options, req, record, who);
    const base = { actor: who.user.email, socket: record.name, clientIp: access.clientIp, country: access.country ?? '', sessionId: who.session.id, rule: access.rule };
    if (access.decision.effect === 'deny') {
      options.audit({ type: 'access.denied', ...base, decision: 'deny', reason: access.detail, details: { protocol: 'websocket', path: requestPath(req.url) } });
      return sendRawProblem(client, { status: 403, code: 'forbidden', detail: access.detail });
    }
    const id = newConnectionId();
    const started = options.now();
    const decide = (): Verdict => {
      const current = options.view().socket(record.name);
      const again = current ? identity.gate.authorize(req, current) : { detail: `socket "${record.name}" no longer exists` };
      if ('detail' in again) return { keep: false, reason: again.detail };
      const next = decideHttp(options, req, current!, again);
      return next.decision.effect === 'deny'
        ? { keep: false, reason: next.detail, rule: next.rule }
        : { keep: true, rule: next.rule, ...(next.decision.recheckAt ? { recheckAt: next.decision.recheckAt } : {}) };
    };
    upstreamIdentity(identity, who, record).then(
      (upstream) => options.proxy.handleUpgrade(req, client, head, record, upstream, {
        answered: (status) => {
          options.audit({ type: 'http.request', ...base, at: started.toISOString(), decision: 'allow', reason: access.detail, details: { method: req.method ?? 'GET', path: requestPath(req.url), status, upgrade: 'refused by the upstream' } });
        },
        opened: (counters) => {
          options.audit({ type: 'connection.open', ...base, connectionId: id, decision: 'allow', details: { protocol: 'websocket', path: requestPath(req.url) } });
          options.live.add({ id, protocol: 'websocket', socket: record.name, userId: who.user.id, email: who.user.email, sessionId: who.session.id, clientIp: access.clientIp, country: access.country ?? '', startedAt: started, counters, decide, close: () => client.destroy() }, access.decision.recheckAt);
        },
        closed: () => options.live.closed(id, 'closed'),
      }),
      () => client.destroy(),
    );
  }
}
