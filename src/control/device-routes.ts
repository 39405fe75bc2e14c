// CLI sign-in served by Postern itself: the OAuth 2.0 device authorization grant (RFC 8628)
// for `postern login`, the loopback redirect for `postern login --browser` (approved on a page
// with CSRF protection, its code bound to the CLI's PKCE verifier), the token endpoint both use
// (errors as RFC 6749 §5.2 JSON), and whoami/logout for the CLI session it yields.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendPage } from './html-page.js';
import { randomBytes, randomInt } from 'node:crypto';
import { z } from 'zod';
import type { DeviceAuthorizationRecord, Store, UserRecord } from '../store/index.js';
import type { SessionService } from './sessions.js';
import type { RouteTable } from './routes.js';
import { PosternError, isPosternError } from '../errors.js';
import {
  clearSessionCookie,
  generateSecret,
  hashToken,
  readSessionCookie,
  LoginRateLimiter,
  PKCE_CHALLENGE_SHAPE,
  pkceCheckCode,
  pkceMatches,
} from '../identity/index.js';
import { csrfToken, csrfValid } from './csrf.js';
import { createCliToken, principalOf } from './principal.js';
import { renderDevicePage } from './device-page.js';
import type { DevicePageModel } from './device-page.js';
import { registerTokenApi } from './token-api.js';

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
/** Consonants only (RFC 8628 §6.1): no vowels to spell words, nothing to confuse with digits. */
const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
const DEVICE_CODE_SHAPE = /^pdc1_[A-Za-z0-9_-]{43}$/;
const LOOPBACK_CODE_SHAPE = /^pac1_[A-Za-z0-9_-]{43}$/;
const STATE_SHAPE = /^[A-Za-z0-9_-]{16,128}$/;
/** A poll this much earlier than `interval` still counts as polite (timers and networks jitter). */
const POLL_SLACK_MS = 1000;

export interface CliLoginOptions {
  store: Store;
  sessions: SessionService;
  /** `https://<domain>[:port]`: where people open /device. */
  controlOrigin: string;
  now?: () => Date;
  onSessionRevoked?: (sessionId: string) => void;
  /** Lifetime of a device code (default 10 min); a client may ask for less. */
  deviceCodeTtlMs?: number;
  /** Minimum seconds between polls (default 5). */
  intervalSeconds?: number;
  /** Lifetime of a loopback code (default 60 s). */
  loopbackCodeTtlMs?: number;
  /** Throttles wrong user codes per browser session. */
  limiter?: LoginRateLimiter;
  /** Bounds device requests per client IP (anyone may ask for a code; default 60 per 10 min). */
  requestLimiter?: LoginRateLimiter;
}

/** `bdwp hqpk`, `BDWP-HQPK`, `bdwphqpk` → `BDWP-HQPK`; undefined when it cannot be a user code. */
export function normalizeUserCode(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 32) return undefined;
  const compact = value.toUpperCase().replace(/[\s-]/g, '');
  if (compact.length !== 8 || ![...compact].every((c) => USER_CODE_ALPHABET.includes(c))) return undefined;
  return `${compact.slice(0, 4)}-${compact.slice(4)}`;
}

function newUserCode(): string {
  const chars = Array.from({ length: 8 }, () => USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)]!);
  return `${chars.slice(0, 4).join('')}-${chars.slice(4).join('')}`;
}

/** Printable, bounded text from a client (shown on the approval page and in `sessions ls`). */
function clientText(value: unknown, fallback: string): string {
  if (typeof value !== 'string') return fallback;
  const clean = value.replace(/[^\x20-\x7e]/g, '').trim().slice(0, 120);
  return clean || fallback;
}

class OAuthError extends Error {
  constructor(readonly error: string, readonly description: string, readonly status = 400) {
    super(description);
  }
}

function sendOAuth(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').header('pragma', 'no-cache').type('application/json').send(body);
}

export function registerCliLogin(app: FastifyInstance, routes: RouteTable, options: CliLoginOptions): void {
  const { store, sessions } = options;
  const now = options.now ?? (() => new Date());
  const deviceTtlMs = options.deviceCodeTtlMs ?? 10 * 60_000;
  const interval = options.intervalSeconds ?? 5;
  const loopbackTtlMs = options.loopbackCodeTtlMs ?? 60_000;
  const limiter = options.limiter ?? new LoginRateLimiter({ maxFailures: 10 });
  const requestLimiter = options.requestLimiter ?? new LoginRateLimiter({ maxFailures: 60, windowMs: 10 * 60_000 });

  const page = (reply: FastifyReply, model: DevicePageModel, status = 200) =>
    sendPage(reply, renderDevicePage(model), status);
  const toLogin = (reply: FastifyReply, returnTo: string) =>
    reply.header('cache-control', 'no-store').redirect(`/auth/login?return_to=${encodeURIComponent(returnTo)}`, 303);

  // ---- RFC 8628 §3.1: device authorization request -------------------------------------
  app.post('/api/v1/auth/device', async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    const gate = requestLimiter.check(`device-request:${request.ip}`, now());
    if (!gate.allowed) {
      void reply.header('retry-after', String(Math.ceil(gate.retryAfterMs / 1000)));
      return sendOAuth(reply, 429, { error: 'slow_down', error_description: 'too many sign-in requests from this address; try again later' });
    }
    requestLimiter.recordFailure(`device-request:${request.ip}`, now());
    const askedTtl = body.expires_in === undefined ? undefined : Number(body.expires_in);
    if (askedTtl !== undefined && (!Number.isInteger(askedTtl) || askedTtl < 5)) {
      return sendOAuth(reply, 400, { error: 'invalid_request', error_description: 'expires_in must be a whole number of seconds, at least 5' });
    }
    const ttlMs = Math.min(deviceTtlMs, (askedTtl ?? Infinity) * 1000);
    const deviceCode = `pdc1_${generateSecret()}`;
    const clientName = clientText(body.client_name, 'postern');
    for (let attempt = 0; ; attempt++) {
      const userCode = newUserCode();
      try {
        await store.deviceAuthorizations.create({
          deviceCodeHash: hashToken(deviceCode), userCode, clientName, clientIp: request.ip,
          expiresAt: new Date(now().getTime() + ttlMs).toISOString(),
        });
      } catch (err) {
        if (isPosternError(err, 'conflict') && attempt < 5) continue;
        throw err;
      }
      request.log.info({ clientIp: request.ip, clientName }, 'device login requested');
      const verificationUri = `${options.controlOrigin}/device`;
      return sendOAuth(reply, 200, {
        device_code: deviceCode,
        user_code: userCode,
        verification_uri: verificationUri,
        verification_uri_complete: `${verificationUri}?user_code=${encodeURIComponent(userCode)}`,
        expires_in: Math.floor(ttlMs / 1000),
        interval,
      });
    }
  });

  // ---- RFC 8628 §3.3: the person approves in a browser signed in on the control host ------
  app.get('/device', async (request, reply) => {
    const raw = (request.query as Record<string, unknown>).user_code;
    const rawCode = typeof raw === 'string' && raw.length <= 32 ? raw : undefined;
    const current = await sessions.fromSecret(readSessionCookie(request.headers));
    if (!current) return toLogin(reply, rawCode ? `/device?user_code=${encodeURIComponent(rawCode)}` : '/device');
    const csrf = csrfToken(request, reply);
    const email = current.user.email;
    if (!rawCode) return page(reply, { view: 'enter', csrf, email });
    const key = `device:${current.session.id}`;
    const gate = limiter.check(key, now());
    if (!gate.allowed) return page(reply, { view: 'enter', csrf, email, userCode: rawCode, error: `Too many wrong codes; try again in ${Math.ceil(gate.retryAfterMs / 1000)} s.` }, 429);
    // Counted before the lookup, so parallel guesses cannot all pass the check first.
    const attemptAt = now();
    limiter.recordFailure(key, attemptAt);
    const userCode = normalizeUserCode(rawCode);
    const record = userCode ? await store.deviceAuthorizations.findByUserCode(userCode) : undefined;
    if (record) limiter.withdraw(key, attemptAt);
    if (!userCode || !record) {
      return page(reply, { view: 'enter', csrf, email, userCode: rawCode, error: 'No sign-in is waiting for that code. Check it against your terminal.' }, 404);
    }
    const problem = problemWith(record);
    if (problem) return page(reply, { view: 'problem', message: problem }, 400);
    return page(reply, {
      view: 'confirm', csrf, email, userCode: record.userCode, clientName: record.clientName, clientIp: record.clientIp,
      requestedAt: record.createdAt, expiresAt: record.expiresAt,
    });
  });

  app.post('/device', async (request, reply) => {
    const form = (request.body ?? {}) as Record<string, unknown>;
    const userCode = normalizeUserCode(form.user_code);
    const current = await sessions.fromSecret(readSessionCookie(request.headers));
    if (!current) return toLogin(reply, userCode ? `/device?user_code=${encodeURIComponent(userCode)}` : '/device');
    if (!csrfValid(request, form.csrf)) return page(reply, { view: 'problem', message: 'This form expired; open the link from your terminal again.' }, 403);
    if (form.decision !== 'approve' && form.decision !== 'deny') return page(reply, { view: 'problem', message: 'Choose Approve or Deny.' }, 400);
    const record = userCode ? await store.deviceAuthorizations.findByUserCode(userCode) : undefined;
    if (!record) return page(reply, { view: 'problem', message: 'No sign-in is waiting for that code.' }, 404);
    const problem = problemWith(record);
    if (problem) return page(reply, { view: 'problem', message: problem }, 400);
    const approved = form.decision === 'approve';
    try {
      await store.deviceAuthorizations.decide(record.id, approved ? { status: 'approved', userId: current.user.id } : { status: 'denied' }, now().toISOString());
    } catch (err) {
      if (!isPosternError(err, 'conflict')) throw err;
      return page(reply, { view: 'problem', message: 'This code was decided already or has expired.' }, 400);
    }
    request.log.info({ user: current.user.id, device: record.id, approved }, approved ? 'device login approved' : 'device login denied');
    return page(reply, { view: 'done', email: current.user.email, approved });
  });

  const problemWith = (record: DeviceAuthorizationRecord): string | undefined => {
    if (record.status !== 'pending') return `This code was already ${record.status === 'denied' ? 'denied' : 'used'}; run \`postern login\` again for a new one.`;
    if (Date.parse(record.expiresAt) <= now().getTime()) return 'This code has expired; run `postern login` again for a new one.';
    return undefined;
  };

  // ---- Loopback redirect (`postern login --browser`) --------------------------------------
  /** The start link's parameters: a loopback port, the CLI's state and its S256 PKCE challenge. */
  const loopbackParams = (input: Record<string, unknown>) => {
    const port = typeof input.port === 'string' && /^\d{1,5}$/.test(input.port) ? Number(input.port) : NaN;
    const state = typeof input.state === 'string' && STATE_SHAPE.test(input.state) ? input.state : undefined;
    const challenge = typeof input.code_challenge === 'string' && PKCE_CHALLENGE_SHAPE.test(input.code_challenge) ? input.code_challenge : undefined;
    const s256 = input.code_challenge_method === undefined || input.code_challenge_method === 'S256';
    return port >= 1024 && port <= 65535 && state && challenge && s256 ? { port, state, challenge } : undefined;
  };
  const malformed = (reply: FastifyReply) => page(reply, { view: 'problem', message: 'This sign-in link is malformed or from an older `postern`; run `postern login --browser` again.' }, 400);
  const toLoopback = (reply: FastifyReply, port: number, query: Record<string, string>) =>
    reply.header('cache-control', 'no-store').redirect(`http://127.0.0.1:${port}/callback?${new URLSearchParams(query).toString()}`, 303);

  // A signed-in browser only sees what it is asked to approve: following a link never signs a CLI in.
  app.get('/auth/cli/start', async (request, reply) => {
    const params = loopbackParams(request.query as Record<string, unknown>);
    if (!params) return malformed(reply);
    const current = await sessions.fromSecret(readSessionCookie(request.headers));
    if (!current) return toLogin(reply, `/auth/cli/start?${new URLSearchParams({ port: String(params.port), state: params.state, code_challenge: params.challenge, code_challenge_method: 'S256' }).toString()}`);
    return page(reply, {
      view: 'loopback', csrf: csrfToken(request, reply), email: current.user.email, port: params.port, state: params.state,
      challenge: params.challenge, checkCode: pkceCheckCode(params.challenge),
    });
  });

  app.post('/auth/cli/start', async (request, reply) => {
    const form = (request.body ?? {}) as Record<string, unknown>;
    const params = loopbackParams(form);
    if (!params) return malformed(reply);
    const current = await sessions.fromSecret(readSessionCookie(request.headers));
    if (!current) return page(reply, { view: 'problem', message: 'You are not signed in; open the link from your terminal again.' }, 401);
    if (!csrfValid(request, form.csrf)) return page(reply, { view: 'problem', message: 'This form expired; open the link from your terminal again.' }, 403);
    if (form.decision === 'deny') {
      request.log.info({ user: current.user.id }, 'loopback login denied');
      return toLoopback(reply, params.port, { error: 'access_denied', state: params.state });
    }
    if (form.decision !== 'approve') return page(reply, { view: 'problem', message: 'Choose Approve or Deny.' }, 400);
    const code = `pac1_${generateSecret()}`;
    const created = await store.deviceAuthorizations.create({
      deviceCodeHash: hashToken(code), userCode: `loopback-${randomBytes(8).toString('hex')}`, clientName: 'postern login --browser', clientIp: request.ip,
      codeChallenge: params.challenge, expiresAt: new Date(now().getTime() + loopbackTtlMs).toISOString(),
    });
    await store.deviceAuthorizations.decide(created.id, { status: 'approved', userId: current.user.id }, now().toISOString());
    request.log.info({ user: current.user.id, device: created.id }, 'loopback login approved');
    return toLoopback(reply, params.port, { code, state: params.state });
  });

  // ---- Token endpoint: device code (RFC 8628 §3.4) or loopback code → CLI session token ----
  app.post('/api/v1/auth/token', async (request, reply) => {
    const body = (request.body ?? {}) as Record<string, unknown>;
    try {
      if (body.grant_type === DEVICE_CODE_GRANT) return sendOAuth(reply, 200, await deviceGrant(request, body.device_code));
      if (body.grant_type === 'authorization_code') return sendOAuth(reply, 200, await loopbackGrant(request, body.code, body.code_verifier));
      if (typeof body.grant_type !== 'string') throw new OAuthError('invalid_request', 'grant_type is missing');
      throw new OAuthError('unsupported_grant_type', `grant_type "${body.grant_type.slice(0, 100)}" is not supported`);
    } catch (err) {
      if (err instanceof OAuthError) return sendOAuth(reply, err.status, { error: err.error, error_description: err.description });
      throw err;
    }
  });

  const deviceGrant = async (request: FastifyRequest, deviceCode: unknown) => {
    if (typeof deviceCode !== 'string') throw new OAuthError('invalid_request', 'device_code is missing');
    const record = DEVICE_CODE_SHAPE.test(deviceCode) ? await store.deviceAuthorizations.findByDeviceCodeHash(hashToken(deviceCode)) : undefined;
    if (!record || !record.userCode.match(/^[A-Z]{4}-[A-Z]{4}$/)) throw new OAuthError('invalid_grant', 'unknown device code');
    const at = now();
    const previous = await store.deviceAuthorizations.poll(record.id, at.toISOString());
    if (record.status === 'redeemed') throw new OAuthError('invalid_grant', 'this device code was already used');
    if (Date.parse(record.expiresAt) <= at.getTime()) throw new OAuthError('expired_token', 'the device code expired before it was approved; run `postern login` again');
    if (record.status === 'denied') throw new OAuthError('access_denied', 'the sign-in was denied in the browser');
    if (record.status === 'pending') {
      if (previous !== null && at.getTime() - Date.parse(previous) < interval * 1000 - POLL_SLACK_MS) {
        throw new OAuthError('slow_down', `polling too fast: wait at least ${interval} s between requests`);
      }
      throw new OAuthError('authorization_pending', 'waiting for the code to be approved in a browser');
    }
    return issue(request, record, 'device');
  };

  const loopbackGrant = async (request: FastifyRequest, code: unknown, verifier: unknown) => {
    if (typeof code !== 'string') throw new OAuthError('invalid_request', 'code is missing');
    const record = LOOPBACK_CODE_SHAPE.test(code) ? await store.deviceAuthorizations.findByDeviceCodeHash(hashToken(code)) : undefined;
    if (!record || !record.userCode.startsWith('loopback-')) throw new OAuthError('invalid_grant', 'unknown sign-in code');
    if (record.status !== 'approved') throw new OAuthError('invalid_grant', 'this sign-in code was already used');
    if (Date.parse(record.expiresAt) <= now().getTime()) throw new OAuthError('invalid_grant', 'this sign-in code has expired; run `postern login --browser` again');
    // RFC 7636 §4.6: only the CLI that started the sign-in holds the verifier.
    if (record.codeChallenge === null || !pkceMatches(verifier, record.codeChallenge)) throw new OAuthError('invalid_grant', 'code_verifier is missing or does not match this sign-in code');
    return issue(request, record, 'loopback');
  };

  /** approved → redeemed (exactly once), then a new CLI session whose token is shown this once. */
  const issue = async (request: FastifyRequest, record: DeviceAuthorizationRecord, how: 'device' | 'loopback') => {
    try {
      await store.deviceAuthorizations.redeem(record.id, now().toISOString());
    } catch (err) {
      if (isPosternError(err, 'conflict')) throw new OAuthError('invalid_grant', 'this code was already used');
      throw err;
    }
    const user: UserRecord | undefined = record.userId ? await store.users.get(record.userId) : undefined;
    if (!user || user.disabledAt) throw new OAuthError('access_denied', 'the account that approved this sign-in is disabled or gone');
    const { token, hash } = createCliToken();
    let session;
    try {
      session = await sessions.createCliSession(user, how, { clientIp: request.ip, userAgent: record.clientName }, hash);
    } catch (err) {
      if (isPosternError(err, 'forbidden') || isPosternError(err, 'not_found')) throw new OAuthError('access_denied', 'the account that approved this sign-in is disabled or gone');
      throw err;
    }
    request.log.info({ user: user.id, session: session.id, how }, 'CLI signed in');
    return {
      access_token: token,
      token_type: 'Bearer',
      expires_in: Math.max(1, Math.floor((Date.parse(session.expiresAt) - now().getTime()) / 1000)),
      session_id: session.id,
      email: user.email,
    };
  };

  // ---- The CLI session itself ---------------------------------------------------------------
  routes.add({ method: 'GET', url: '/api/v1/auth/whoami', summary: 'Who the bearer token belongs to (a CLI sign-in or an API token), or the browser sign-in behind the session cookie', auth: 'user',
    response: z.object({
      kind: z.enum(['cli', 'browser', 'token']), email: z.string().optional(), name: z.string(), groups: z.array(z.string()).optional(), userId: z.string().optional(),
      sessionId: z.string().optional(), provider: z.string().optional(), expiresAt: z.string().optional(), role: z.string().optional(), tokenId: z.string().optional(), scopes: z.array(z.string()).optional(),
    }),
    handler: async ({ request }) => {
      const principal = principalOf(request);
      if (principal.kind === 'token') return { kind: 'token' as const, name: principal.token.name, role: principal.token.role, tokenId: principal.token.id, scopes: [...principal.token.scopes] };
      const { user, session } = principal;
      return {
        kind: principal.kind, email: user.email, name: user.name, groups: [...user.groups], userId: user.id,
        sessionId: session.id, provider: session.provider, expiresAt: session.expiresAt,
        role: principal.scopes.includes('admin') ? 'admin' : 'user', scopes: [...principal.scopes],
      };
    } });
  routes.add({ method: 'POST', url: '/api/v1/auth/logout', summary: 'End the sign-in this token (or browser cookie) belongs to', auth: 'user',
    handler: async ({ request, reply }) => {
      const principal = principalOf(request);
      if (principal.kind === 'token') throw new PosternError('bad_request', 'an API token is not a sign-in: revoke it with `postern token revoke`');
      await store.sessions.revoke(principal.session.id, now().toISOString());
      options.onSessionRevoked?.(principal.session.id);
      if (principal.kind === 'browser') void reply.header('set-cookie', clearSessionCookie());
      request.log.info({ user: principal.user.id, session: principal.session.id }, `${principal.kind === 'cli' ? 'CLI' : 'browser'} signed out`);
      return undefined;
    } });

  registerTokenApi(routes, { store, now });
}
