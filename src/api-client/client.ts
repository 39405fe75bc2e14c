// A small client for Postern's API, shared by the CLI and the connector: JSON over HTTPS,
// trusting only the CA it is given, bearer or mTLS auth, problem+json errors as PosternError.
import https from 'node:https';
import tls from 'node:tls';
import { isIP } from 'node:net';
import type { ClientRequestArgs, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { proxyConnect } from '../tunnel/index.js';
import { caPin } from '../ca/index.js';
import { PosternError, errorMessage, isPosternError } from '../errors.js';
import type { ErrorCode } from '../errors.js';

export interface ApiClientOptions {
  server: string;
  caPem?: string;
  token?: string;
  /**
   * Sent instead, once, when the server refuses `token` with `admin_required` (a person's
   * sign-in on an admin route): the refusal comes before the route runs, so nothing happened yet.
   */
  adminFallbackToken?: string;
  clientCert?: { certPem: string; keyPem: string };
  /** Reach the server through this HTTP proxy (CONNECT), as connectors on web-only networks do. */
  proxy?: URL;
  timeoutMs?: number;
}

type CreateConnection = (options: ClientRequestArgs, done: (err: Error | null, socket: Duplex) => void) => undefined;

/** A `createConnection` for https.request that goes through a CONNECT proxy, then TLS. */
function viaProxy(proxy: URL, timeoutMs: number): CreateConnection {
  return (options, done) => {
    const tlsOptions = options as ClientRequestArgs & tls.ConnectionOptions;
    const host = String(options.hostname ?? options.host ?? 'localhost');
    proxyConnect(proxy, { host, port: Number(options.port ?? 443) }, timeoutMs).then((raw) => {
      const secure = tls.connect({
        socket: raw,
        servername: isIP(host) ? undefined : host,
        ca: tlsOptions.ca,
        cert: tlsOptions.cert,
        key: tlsOptions.key,
        rejectUnauthorized: tlsOptions.rejectUnauthorized ?? true,
      });
      secure.once('secureConnect', () => done(null, secure));
      secure.once('error', (err) => done(err, secure));
    }, (err: Error) => done(err, undefined as unknown as Duplex));
    return undefined;
  };
}

interface Problem {
  title?: string;
  detail?: string;
  code?: ErrorCode;
}

export class ApiClient {
  private readonly base: URL;

  constructor(private readonly options: ApiClientOptions) {
    try {
      this.base = new URL(options.server);
    } catch {
      throw new PosternError('config_invalid', `server "${options.server}" is not a URL`);
    }
    if (this.base.protocol !== 'https:') throw new PosternError('config_invalid', `server "${options.server}" must be an https:// URL`);
  }

  get serverUrl(): URL {
    return this.base;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body ?? {});
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  /** GETs a streamed body (an asciicast file…) and resolves with it once the server answered 2xx; read it at your pace. */
  openStream(path: string, accept: string): Promise<IncomingMessage> {
    const url = new URL(path, this.base);
    const headers: Record<string, string> = { accept };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method: 'GET', headers, ...(this.options.caPem ? { ca: this.options.caPem } : {}) }, (res) => {
        if ((res.statusCode ?? 500) < 400) return resolve(res);
        rejectWithProblem(res, url, reject);
      });
      req.on('error', (err) => reject(new PosternError('store_unavailable', `cannot reach ${url.origin}: ${describe(err)}`, { cause: err, retryable: true })));
      req.end();
    });
  }

  /** GETs a JSON-lines stream and hands each non-empty line over; resolves when the server ends it. */
  streamLines(path: string, onLine: (line: string) => void): Promise<void> {
    return this.withFallback((token) => this.streamOnce(path, onLine, token));
  }

  request<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.withFallback((token) => this.requestOnce<T>(method, path, body, token));
  }

  private async withFallback<T>(send: (token: string | undefined) => Promise<T>): Promise<T> {
    const fallback = this.options.adminFallbackToken;
    try {
      return await send(this.options.token);
    } catch (err) {
      if (!fallback || fallback === this.options.token || !isPosternError(err, 'admin_required')) throw err;
      return send(fallback);
    }
  }

  private streamOnce(path: string, onLine: (line: string) => void, token: string | undefined): Promise<void> {
    const url = new URL(path, this.base);
    const headers: Record<string, string> = { accept: 'application/x-ndjson' };
    if (token) headers.authorization = `Bearer ${token}`;
    return new Promise<void>((resolve, reject) => {
      const req = https.request(url, { method: 'GET', headers, ...(this.options.caPem ? { ca: this.options.caPem } : {}) }, (res) => {
        if ((res.statusCode ?? 500) >= 400) return rejectWithProblem(res, url, reject);
        let pending = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          pending += chunk;
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          for (const line of lines) if (line.trim() !== '') onLine(line);
        });
        res.on('end', () => resolve());
        res.on('error', reject);
      });
      req.on('error', (err) => reject(new PosternError('store_unavailable', `cannot reach ${url.origin}: ${describe(err)}`, { cause: err, retryable: true })));
      req.end();
    });
  }

  /** A conditional GET: undefined when the server answers 304 to `etag` (If-None-Match), else the body and its ETag. */
  async getIfChanged<T>(path: string, etag: string | undefined): Promise<{ body: T; etag: string | undefined } | undefined> {
    const answer = await this.exchange('GET', path, undefined, this.options.token, etag === undefined ? {} : { 'if-none-match': etag });
    if (answer.status === 304) return undefined;
    return { body: answer.json as T, etag: typeof answer.headers.etag === 'string' ? answer.headers.etag : undefined };
  }

  private async requestOnce<T>(method: string, path: string, body: unknown, token: string | undefined): Promise<T> {
    const answer = await this.exchange(method, path, body, token, {});
    return (answer.status === 204 ? undefined : answer.json) as T;
  }

  /** One request; an error status rejects with the problem's code and detail. */
  private exchange(method: string, path: string, body: unknown, token: string | undefined, extraHeaders: Record<string, string>): Promise<{ status: number; headers: IncomingMessage['headers']; json: unknown }> {
    const url = new URL(path, this.base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders };
    if (payload) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    return new Promise((resolve, reject) => {
      const req = https.request(url, {
        method,
        headers,
        ...(this.options.proxy ? { createConnection: viaProxy(this.options.proxy, this.options.timeoutMs ?? 15_000) } : {}),
        ...(this.options.caPem ? { ca: this.options.caPem } : {}),
        ...(this.options.clientCert ? { cert: this.options.clientCert.certPem, key: this.options.clientCert.keyPem } : {}),
        timeout: this.options.timeoutMs ?? 15_000,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const json = parseJson(text);
          if ((res.statusCode ?? 500) >= 400) {
            const problem = (json ?? {}) as Problem;
            return reject(new PosternError(problem.code ?? 'internal', problem.detail ?? problem.title ?? `HTTP ${res.statusCode} from ${url.host}`));
          }
          resolve({ status: res.statusCode ?? 500, headers: res.headers, json });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (err) => reject(new PosternError('store_unavailable', `cannot reach ${url.origin}: ${describe(err)}`, { cause: err, retryable: true })));
      req.end(payload);
    });
  }
}

/** Reads an error answer's problem+json and rejects with its code and detail. */
function rejectWithProblem(res: IncomingMessage, url: URL, reject: (err: PosternError) => void): void {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => (text += chunk));
  res.on('end', () => {
    const problem = (parseJson(text) ?? {}) as Problem;
    reject(new PosternError(problem.code ?? 'internal', problem.detail ?? `HTTP ${res.statusCode} from ${url.host}`));
  });
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 200) };
  }
}

function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED') return 'connection refused (is `postern server` running?)';
  if (code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || code === 'DEPTH_ZERO_SELF_SIGNED_CERT') {
    return 'the server certificate is not signed by the expected Postern CA (pass --ca-file)';
  }
  return errorMessage(err);
}

/**
 * Fetches the CA from an untrusted connection and accepts it only if it matches the pin,
 * so a join token alone is enough to trust the right server (no CA file to copy around).
 */
export async function fetchPinnedCa(server: string, pin: string, proxy?: URL): Promise<string> {
  const url = new URL('/api/v1/ca', server);
  const text = await new Promise<string>((resolve, reject) => {
    const req = https.get(url, {
      rejectUnauthorized: false,
      timeout: 15_000,
      ...(proxy ? { createConnection: viaProxy(proxy, 15_000) } : {}),
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk.length + body.length > 1_000_000 ? '' : chunk));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(new PosternError('store_unavailable', `cannot reach ${url.origin}: ${describe(err)}`, { cause: err, retryable: true })));
  });
  let caPem: string;
  try {
    caPem = (JSON.parse(text) as { certificate: string }).certificate;
    if (caPin(caPem) === pin) return caPem;
  } catch {
    throw new PosternError('certificate_invalid', `${url.origin} did not return a CA certificate`);
  }
  throw new PosternError('certificate_invalid', `the CA of ${url.origin} does not match the join token's pin: wrong server, or someone in between`);
}
