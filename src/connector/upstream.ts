// Serves tunnel streams by dialing the upstream this connector's config names for the socket
// (the allow-list): HTTP requests through a keep-alive agent, TCP streams as raw byte pipes,
// upgrades as a request whose connection turns raw only when the upstream answers 101.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { ConnectorSocket } from './config.js';
import { servePostgres } from './postgres.js';
import { ResetCode, header, stripHopByHop } from '../tunnel/index.js';
import type { MuxHeaders, MuxStream, StreamHandler } from '../tunnel/index.js';
import type { ErrorCode } from '../errors.js';

interface Route {
  readonly socket: ConnectorSocket;
  readonly url: URL;
  readonly agent?: http.Agent;
}

/** `connector` is this connector's name, for the messages a person's client shows. */
export function createUpstreamHandler(sockets: readonly ConnectorSocket[], logger: Logger, connector: string): StreamHandler {
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
    if (headers[header.kind] === 'tcp') return route.socket.type === 'postgres' ? servePostgres(route.socket, route.url, stream, logger, connector) : pipeTcp(route, stream, logger);
    if (!route.agent) return fail(stream, 400, 'bad_request', `socket "${name}" carries TCP, not HTTP`);
    if (headers[header.kind] === 'upgrade') return proxyUpgrade(route, stream, headers, logger);
    return proxyHttp(route, stream, headers, logger);
  };
}

function fail(stream: MuxStream, status: number, code: ErrorCode, message: string): void {
  if (stream.destroyed) return;
  if (stream.headersSent) return stream.reset(ResetCode.internal);
  stream.respond({ ':status': String(status), [header.error]: code, 'content-type': 'text/plain; charset=utf-8' });
  stream.end(message);
}

/** The upstream request for a stream's head; `agent: false` gives an upgrade a connection of its own. */
function upstreamRequest(route: Route, headers: MuxHeaders, agent: http.Agent | false, stream: MuxStream, logger: Logger, extra: Record<string, string> = {}): http.ClientRequest {
  const { url } = route;
  const outgoing: Record<string, string | string[]> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (key.startsWith(':') || key.startsWith('postern-')) continue;
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
    headers: { ...outgoing, ...extra },
    servername: url.hostname,
    ...(url.protocol === 'https:' ? { rejectUnauthorized: route.socket.upstream_tls_verify } : {}),
  });
  request.on('socket', (socket) => socket.setNoDelay(true));
  request.on('error', (err: NodeJS.ErrnoException) => {
    logger.debug({ err, socket: route.socket.name }, 'upstream request failed');
    fail(stream, 502, 'upstream_unreachable', `upstream ${url.host} ${describeSocketError(err)}`);
  });
  return request;
}

/** The upstream's response head for the tunnel: hop-by-hop and Postern's own headers out. */
function responseHeaders(response: http.IncomingMessage, extra: MuxHeaders = {}): MuxHeaders {
  const out: MuxHeaders = { ':status': String(response.statusCode ?? 502) };
  for (const [key, value] of Object.entries(stripHopByHop(response.headers))) {
    if (!key.startsWith('postern-')) out[key] = value;
  }
  return { ...out, ...extra };
}

/** Relays an ordinary response: head, then body. */
function relayResponse(stream: MuxStream, response: http.IncomingMessage): void {
  if (stream.destroyed) return void response.destroy();
  stream.respond(responseHeaders(response));
  response.pipe(stream);
  response.on('error', () => stream.reset(ResetCode.internal));
  response.on('aborted', () => stream.reset(ResetCode.internal));
}

function proxyHttp(route: Route, stream: MuxStream, headers: MuxHeaders, logger: Logger): void {
  const request = upstreamRequest(route, headers, route.agent!, stream, logger);
  let responseDone = false;
  request.on('response', (response) => {
    response.once('end', () => {
      responseDone = true;
    });
    relayResponse(stream, response);
  });
  // Only a stream that ended early (user went away) aborts the upstream request; a finished
  // one leaves the keep-alive connection to the agent.
  stream.on('close', () => {
    if (!responseDone) request.destroy();
  });
  if (headers[header.body] !== 'confirmed') return void stream.pipe(request);
  // The upstream sees the head now, not with the first body byte (it may answer early, or time a stalled body out itself).
  request.flushHeaders();
  // The body is whole only with the edge's trailer; an end without it breaks the request off.
  let complete = false;
  stream.once('trailers', (trailers: MuxHeaders) => {
    complete = trailers[header.body] === 'complete';
  });
  stream.pipe(request, { end: false });
  stream.once('end', () => (complete ? request.end() : request.destroy()));
}

/**
 * The head goes up as a request with its own connection. On 101 the stream turns raw (the
 * upstream's bytes after its head first); any other answer is relayed as an ordinary response.
 */
function proxyUpgrade(route: Route, stream: MuxStream, headers: MuxHeaders, logger: Logger): void {
  const protocol = String(headers[header.upgrade] ?? '');
  const request = upstreamRequest(route, headers, false, stream, logger, { connection: 'Upgrade', upgrade: protocol });
  request.on('response', (response) => relayResponse(stream, response));
  request.on('upgrade', (response, upstream, head) => {
    if (stream.destroyed) return upstream.destroy();
    // The switch travels as 200 with the protocol in postern-upgrade: the edge writes the 101 itself.
    stream.respond(responseHeaders(response, { ':status': '200', [header.upgrade]: String(response.headers.upgrade ?? protocol) }));
    if (head.length > 0) stream.write(head);
    joinUpstream(stream, upstream);
  });
  stream.on('close', () => {
    if (!stream.headersSent) request.destroy();
  });
  request.end();
}

function pipeTcp(route: Route, stream: MuxStream, logger: Logger): void {
  const { url } = route;
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  const upstream = url.protocol === 'https:'
    ? tls.connect({ host: url.hostname, port, servername: url.hostname, rejectUnauthorized: route.socket.upstream_tls_verify })
    : net.connect({ host: url.hostname, port, allowHalfOpen: true });
  upstream.setNoDelay(true);
  const ready = url.protocol === 'https:' ? 'secureConnect' : 'connect';
  upstream.once(ready, () => {
    if (stream.destroyed) return upstream.destroy();
    stream.respond({ ':status': '200' });
    joinUpstream(stream, upstream);
  });
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    logger.debug({ err, socket: route.socket.name }, 'upstream connection failed');
    if (!stream.headersSent) fail(stream, 502, 'upstream_unreachable', `upstream ${url.host} ${describeSocketError(err)}`);
    else stream.reset(ResetCode.connect);
  });
}

/** Raw bytes both ways. A reset from the edge (user went away) resets the upstream too; a clean end half-closes it. */
function joinUpstream(stream: MuxStream, upstream: Duplex): void {
  stream.pipe(upstream);
  upstream.pipe(stream);
  upstream.on('error', () => {
    if (!stream.destroyed) stream.reset(ResetCode.connect);
  });
  stream.on('close', () => {
    if (stream.resetCode !== undefined) upstream.destroy();
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
