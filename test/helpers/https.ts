// Clients for the edge: node:https with Postern's CA and *.localhost pinned to 127.0.0.1, and real curl.
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { execFile } from 'node:child_process';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { baseEnv } from './processes.js';

/** Resolves `localhost` and `*.localhost` to 127.0.0.1 (as curl and browsers do); nothing else. */
export const loopbackLookup = ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
  if (hostname !== 'localhost' && !hostname.endsWith('.localhost')) {
    callback(Object.assign(new Error(`test lookup: ${hostname} is not a *.localhost name`), { code: 'ENOTFOUND' }));
  } else if (options.all) {
    callback(null, [{ address: '127.0.0.1', family: 4 }]);
  } else {
    callback(null, '127.0.0.1', 4);
  }
}) as unknown as LookupFunction;

export interface HttpsOptions {
  port: number;
  ca: string;
  /** `localhost` for the control plane, `<socket>.localhost` for a socket. */
  host?: string;
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer | Readable;
  /** Idle timeout of the request. */
  timeoutMs?: number;
  /** Source address (another loopback address, e.g. 127.0.0.2, to look like another client). */
  localAddress?: string;
  /** Announce this client address in a PROXY protocol v1 header first, as a load balancer does. */
  proxySource?: string;
}

/** A TLS connection that starts with `PROXY TCP4 <source> …` (believed only from a trusted proxy). */
function proxiedConnection(port: number, host: string, ca: string, source: string, localAddress: string | undefined): tls.TLSSocket {
  const raw = net.connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
  raw.write(`PROXY TCP4 ${source} 127.0.0.1 40000 ${port}\r\n`);
  return tls.connect({ socket: raw, servername: host, ca });
}

/** Sends a request (fresh connection, no agent pooling) and resolves with the response head. */
export function httpsRequest(options: HttpsOptions): Promise<IncomingMessage> {
  const { port, ca, host = 'localhost', path = '/', method = 'GET', headers = {}, body, timeoutMs = 30_000, localAddress, proxySource } = options;
  return new Promise((resolve, reject) => {
    const req = https.request({
      host, port, path, method, ca, lookup: loopbackLookup, ...(localAddress ? { localAddress } : {}),
      // No agent with createConnection: node uses it only then (agent: false would make a fresh agent).
      ...(proxySource ? { createConnection: () => proxiedConnection(port, host, ca, proxySource, localAddress) } : { agent: false }),
      headers: { host: `${host}:${port}`, ...headers },
    }, resolve);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} https://${host}:${port}${path}: no activity for ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
    else {
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    }
  });
}

export interface HttpsResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json<T = unknown>(): T;
}

/** Request + whole body. */
export async function httpsFetch(options: HttpsOptions): Promise<HttpsResponse> {
  const res = await httpsRequest(options);
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  const text = body.toString('utf8');
  return { status: res.statusCode ?? 0, headers: res.headers, body, text, json: <T>() => JSON.parse(text) as T };
}

/** Calls the control plane's API with the admin token (or `token: null` for none). */
export function api(server: { port: number; caPem: string; adminToken: string }, path: string, init: { method?: string; body?: unknown; token?: string | null; headers?: Record<string, string> } = {}): Promise<HttpsResponse> {
  const token = init.token === undefined ? server.adminToken : init.token;
  const payload = init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
  return httpsFetch({
    port: server.port, ca: server.caPem, path, method: init.method ?? 'GET',
    headers: {
      accept: 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    ...(payload !== undefined ? { body: payload } : {}),
  });
}

export interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real /usr/bin/curl (silent, errors shown, no proxy from the environment, bounded). */
export function curl(args: readonly string[], options: { caFile?: string; timeoutSeconds?: number } = {}): Promise<CurlResult> {
  const full = ['--silent', '--show-error', '--noproxy', '*', '--max-time', String(options.timeoutSeconds ?? 30),
    ...(options.caFile ? ['--cacert', options.caFile] : []), ...args];
  return new Promise((resolve) => {
    execFile('/usr/bin/curl', full, { env: baseEnv(), maxBuffer: 16 * 1024 * 1024, timeout: ((options.timeoutSeconds ?? 30) + 5) * 1000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Keeps the cookies `res` sets in `jar` (name → value); a cookie set empty or with Max-Age=0 is removed. */
export function takeCookies(jar: Map<string, string>, res: HttpsResponse): HttpsResponse {
  for (const line of ([] as string[]).concat(res.headers['set-cookie'] ?? [])) {
    const [pair] = line.split(';');
    const eq = pair!.indexOf('=');
    const value = pair!.slice(eq + 1);
    if (/Max-Age=0/i.test(line) || value === '') jar.delete(pair!.slice(0, eq));
    else jar.set(pair!.slice(0, eq), value);
  }
  return res;
}

/** The `cookie` header a browser would send with what `jar` holds. */
export function cookieHeader(jar: ReadonlyMap<string, string>): string {
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}
