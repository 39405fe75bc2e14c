// The client address of a control-plane request as the edge's front door resolved it (PROXY
// protocol and X-Forwarded-For, believed only from trusted proxies). It is handed over beside the
// request, keyed by the request object, never through a header a client could send; every route
// then reads it as fastify's `request.ip` (sign-in pages, rate limits, audit, sessions).
import type http from 'node:http';
import type { FastifyInstance } from 'fastify';
import { canonicalIp } from '../reporting/index.js';

/** What the edge calls for the control host: the request, its response and the resolved client address. */
export type ControlHandler = (req: http.IncomingMessage, res: http.ServerResponse, clientIp: string) => void;

const resolved = new WeakMap<http.IncomingMessage, string>();

/** Wraps fastify's request listener so each request carries the address the edge resolved. */
export function withClientIp(handler: http.RequestListener): ControlHandler {
  return (req, res, clientIp) => {
    resolved.set(req, clientIp);
    handler(req, res);
  };
}

/** Makes `request.ip` the resolved address on every route (the peer's, canonical, when none was handed over). */
export function useResolvedClientIp(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    // An own property shadows fastify's getter (the socket's peer, i.e. the load balancer).
    Object.defineProperty(request, 'ip', { value: resolved.get(request.raw) ?? canonicalIp(request.ip ?? ''), enumerable: true });
  });
}
