// Serves tunnel streams by dialing the upstream this connector's config names for the socket
// (the allow-list): HTTP requests through a keep-alive agent, TCP streams as raw byte pipes.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { constants as h2 } from 'node:http2';
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Logger } from 'pino';
import type { ConnectorSocket } from './config.js';
import { header } from '../tunnel/protocol.js';
import type { StreamHandler } from '../tunnel/connector-side.js';
import { stripHopByHop } from '../edge/headers.js';
import type { ErrorCode } from '../errors.js';

interface Route {
  readonly socket: ConnectorSocket;
  readonly url: URL;
  readonly agent?: http.Agent;
}

export function createUpstreamHandler(sockets: readonly ConnectorSocket[], logger: Logger): StreamHandler {
  const routes = new Map<string, Route>();
  for (const socket of sockets) {
    const url = new URL(socket.upstream);
    const agent = url.protocol === 'https:'
      ? new https.Agent({ keepAlive: true, rejectUnauthorized: socket.upstream_tls_verify })
      : url.protocol === 'http:' ? new http.Agent({ keepAlive: true }) : undefined;
    routes.set(socket.name, { socket, url, ...(agent ? { agent } : {}) });
  }
  return (stream, headers) => {
    const name = String(headers[header.socket] ?? '');
    const route = routes.get(name);
    if (!route) return fail(stream, 404, 'socket_not_found', `this connector does not serve socket "${name}"`);
    if (headers[header.kind] === 'tcp') return pipeTcp(route, stream, logger);
    if (!route.agent) return fail(stream, 400, 'bad_request', `socket "${name}" carries TCP, not HTTP`);
    return proxyHttp(route, stream, headers, logger);
  };
}

function fail(stream: ServerHttp2Stream, status: number, code: ErrorCode, message: string): void {
  if (stream.destroyed || stream.closed) return;
  if (stream.headersSent) {
    stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  stream.respond({ ':status': status, [header.error]: code, 'content-type': 'text/plain; charset=utf-8' });
  stream.end(message);
}

function proxyHttp(route: Route, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, logger: Logger): void {
  const { url, agent } = route;
  const outgoing: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (key.startsWith(':') || key.startsWith('postern-') || value === undefined) continue;
    outgoing[key] = value;
  }
  const authority = headers[':authority'];
  if (typeof authority === 'string' && !outgoing.host) outgoing.host = authority;
  const basePath = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  const request = (url.protocol === 'https:' ? https : http).request({
    agent,
    host: url.hostname,
    port: url.port || (url.protocol === 'https:' ? 443 : 80),
    method: String(headers[':method']),
    path: basePath + String(headers[':path'] ?? '/'),
    headers: outgoing,
    servername: url.hostname,
  });
  let responseDone = false;
  request.on('socket', (socket) => socket.setNoDelay(true));
  request.on('response', (response) => {
    if (stream.destroyed) return response.destroy();
    response.once('end', () => {
      responseDone = true;
    });
    const out: OutgoingHttpHeaders = { ':status': response.statusCode ?? 502 };
    Object.assign(out, stripHopByHop(response.headers));
    stream.respond(out);
    response.pipe(stream);
    response.on('error', () => stream.close(h2.NGHTTP2_INTERNAL_ERROR));
    response.on('aborted', () => stream.close(h2.NGHTTP2_INTERNAL_ERROR));
  });
  request.on('error', (err: NodeJS.ErrnoException) => {
    logger.debug({ err, socket: route.socket.name }, 'upstream request failed');
    fail(stream, 502, 'upstream_unreachable', `upstream ${url.host} ${describeSocketError(err)}`);
  });
  // Only a stream that ended early (user went away) aborts the upstream request; a finished
  // one leaves the keep-alive connection to the agent.
  stream.on('close', () => {
    if (!responseDone) request.destroy();
  });
  stream.pipe(request);
}

function pipeTcp(route: Route, stream: ServerHttp2Stream, logger: Logger): void {
  const { url } = route;
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  const upstream = url.protocol === 'https:'
    ? tls.connect({ host: url.hostname, port, servername: url.hostname, rejectUnauthorized: route.socket.upstream_tls_verify })
    : net.connect({ host: url.hostname, port, allowHalfOpen: true });
  upstream.setNoDelay(true);
  const ready = url.protocol === 'https:' ? 'secureConnect' : 'connect';
  upstream.once(ready, () => {
    if (stream.destroyed) return upstream.destroy();
    stream.respond({ ':status': 200 });
    stream.pipe(upstream);
    upstream.pipe(stream);
  });
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    logger.debug({ err, socket: route.socket.name }, 'upstream connection failed');
    if (!stream.headersSent) fail(stream, 502, 'upstream_unreachable', `upstream ${url.host} ${describeSocketError(err)}`);
    else stream.close(h2.NGHTTP2_CONNECT_ERROR);
  });
  // A reset from the edge (user went away) resets the upstream too; a clean end half-closes it.
  stream.on('aborted', () => upstream.destroy());
  stream.on('close', () => {
    if (stream.rstCode !== undefined && stream.rstCode !== h2.NGHTTP2_NO_ERROR) upstream.destroy();
  });
  upstream.on('close', () => {
    if (!stream.destroyed && !stream.writableEnded) stream.end();
  });
}

function describeSocketError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED': return 'refused the connection';
    case 'ENOTFOUND': return 'host name does not resolve';
    case 'ETIMEDOUT': return 'timed out';
    case 'ECONNRESET': return 'reset the connection';
    default: return `failed: ${err.code ?? err.message}`;
  }
}
