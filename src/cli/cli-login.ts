// The client side of CLI sign-in: RFC 8628 device flow (poll politely: honour `interval`, add
// 5 s on slow_down, stop at expires_in) and the loopback redirect for `--browser` (PKCE S256:
// the code is redeemed with a verifier only this process knows). Transport, clock and sleep
// come in through options so the polling loop is testable without waiting.
import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { PosternError, errorMessage } from '../errors.js';
import { newPkceVerifier, pkceCheckCode, s256Challenge } from '../identity/index.js';

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  session_id: string;
  email: string;
}

export interface DeviceAuthorization {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

export interface JsonReply {
  status: number;
  body: Record<string, unknown>;
}

/** POSTs JSON; any HTTP status resolves (the caller reads RFC 6749 errors from the body). */
export type PostJson = (path: string, body: Record<string, unknown>) => Promise<JsonReply>;

export function httpsPostJson(server: string, caPem: string | undefined, timeoutMs = 15_000): PostJson {
  return (path, body) => new Promise((resolve, reject) => {
    const url = new URL(path, server);
    const payload = Buffer.from(JSON.stringify(body));
    const req = https.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': String(payload.length) },
      ...(caPem ? { ca: caPem } : {}),
      timeout: timeoutMs,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          parsed = {};
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) => reject(new PosternError('store_unavailable', `cannot reach ${url.origin}: ${errorMessage(err)}`, { cause: err, retryable: true })));
    req.end(payload);
  });
}

function oauthFailure(reply: JsonReply, what: string): PosternError {
  const error = typeof reply.body.error === 'string' ? reply.body.error : undefined;
  const description = typeof reply.body.error_description === 'string' ? reply.body.error_description : undefined;
  const detail = typeof reply.body.detail === 'string' ? reply.body.detail : undefined;
  return new PosternError(reply.status === 404 ? 'not_found' : 'bad_request', `${what} failed: ${description ?? detail ?? error ?? `HTTP ${reply.status}`}`);
}

function asToken(reply: JsonReply): TokenResponse {
  const b = reply.body;
  if (typeof b.access_token !== 'string' || typeof b.email !== 'string' || typeof b.session_id !== 'string' || typeof b.expires_in !== 'number') {
    throw new PosternError('internal', 'the server answered the token request without a token');
  }
  return b as unknown as TokenResponse;
}

export async function requestDeviceCode(post: PostJson, clientName: string): Promise<DeviceAuthorization> {
  const reply = await post('/api/v1/auth/device', { client_name: clientName });
  if (reply.status !== 200) throw oauthFailure(reply, 'starting the sign-in');
  const b = reply.body;
  if (typeof b.device_code !== 'string' || typeof b.user_code !== 'string' || typeof b.verification_uri !== 'string' || typeof b.expires_in !== 'number') {
    throw new PosternError('internal', 'the server answered the device request without a code');
  }
  return {
    device_code: b.device_code, user_code: b.user_code, verification_uri: b.verification_uri,
    verification_uri_complete: typeof b.verification_uri_complete === 'string' ? b.verification_uri_complete : b.verification_uri,
    expires_in: b.expires_in, interval: typeof b.interval === 'number' && b.interval > 0 ? b.interval : 5,
  };
}

export interface PollOptions {
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Polls the token endpoint until approved, denied or expired (RFC 8628 §3.5). */
export async function pollForToken(post: PostJson, device: DeviceAuthorization, options: PollOptions = {}): Promise<TokenResponse> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const deadline = now() + device.expires_in * 1000;
  let intervalMs = device.interval * 1000;
  for (;;) {
    if (now() + intervalMs > deadline) break;
    await sleep(intervalMs);
    let reply: JsonReply;
    try {
      reply = await post('/api/v1/auth/token', { grant_type: DEVICE_CODE_GRANT, device_code: device.device_code });
    } catch (err) {
      // A network blip is not the end: back off like slow_down and keep going until the deadline.
      if (err instanceof PosternError && err.retryable) {
        intervalMs += 5000;
        continue;
      }
      throw err;
    }
    if (reply.status === 200) return asToken(reply);
    switch (reply.body.error) {
      case 'authorization_pending':
        continue;
      case 'slow_down':
        intervalMs += 5000;
        continue;
      case 'access_denied':
        throw new PosternError('forbidden', 'the sign-in was denied in the browser');
      case 'expired_token':
        throw new PosternError('token_expired', 'the code expired before it was approved: run `postern login` again');
      default:
        throw oauthFailure(reply, 'signing in');
    }
  }
  throw new PosternError('token_expired', 'the code expired before it was approved: run `postern login` again');
}

export interface LoopbackOptions {
  server: string;
  /** Told the URL to open (print it, and maybe launch a browser) and the check code the approval page shows. */
  onUrl: (url: string, checkCode: string) => void;
  timeoutMs?: number;
}

/** A one-time code from the browser and the PKCE verifier to redeem it with. */
export interface LoopbackCode {
  code: string;
  verifier: string;
}

/** Listens on 127.0.0.1, sends the browser to /auth/cli/start, and returns the one-time code once approved there. */
export async function loopbackCode(options: LoopbackOptions): Promise<LoopbackCode> {
  const state = randomBytes(24).toString('base64url');
  const verifier = newPkceVerifier();
  const challenge = s256Challenge(verifier);
  const listener = http.createServer();
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (listener.address() as { port: number }).port;
  try {
    const code = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new PosternError('token_expired', 'no sign-in arrived from the browser in time: run `postern login --browser` again')), options.timeoutMs ?? 5 * 60_000);
      listener.on('request', (req, res) => {
        const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
        if (url.pathname !== '/callback') {
          res.writeHead(404).end();
          return;
        }
        const code = url.searchParams.get('code');
        const denied = url.searchParams.get('error') === 'access_denied';
        if (url.searchParams.get('state') !== state || (!code && !denied)) {
          res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('This sign-in does not belong to the waiting `postern login`.\n');
          return;
        }
        if (denied || !code) {
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end('Denied: the command line was not signed in.\n');
          clearTimeout(timer);
          reject(new PosternError('forbidden', 'the sign-in was denied in the browser'));
          return;
        }
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', connection: 'close' })
          .end('<!doctype html><meta charset="utf-8"><title>Postern</title><p>Signed in. You can close this page and return to your terminal.</p>');
        clearTimeout(timer);
        resolve(code);
      });
      const query = new URLSearchParams({ port: String(port), state, code_challenge: challenge, code_challenge_method: 'S256' });
      options.onUrl(`${new URL('/auth/cli/start', options.server).href}?${query.toString()}`, pkceCheckCode(challenge));
    });
    return { code, verifier };
  } finally {
    listener.closeAllConnections();
    listener.close();
  }
}

export async function exchangeLoopbackCode(post: PostJson, loopback: LoopbackCode): Promise<TokenResponse> {
  const reply = await post('/api/v1/auth/token', { grant_type: 'authorization_code', code: loopback.code, code_verifier: loopback.verifier });
  if (reply.status !== 200) throw oauthFailure(reply, 'signing in');
  return asToken(reply);
}
