// The identity check in front of cloudauth sockets: the socket host's own cookie → grant →
// session → user, all from the in-memory snapshot; unauthenticated browsers go to the control
// plane's sign-in, and /_postern/logout signs them out (src/edge/sign-out.ts). Whether the user
// may pass is the policies' call (src/edge/access.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionGrantRecord, SessionRecord, SocketRecord, UserRecord } from '../store/index.js';
import { clearSessionCookie, hashSessionSecret, readSessionCookie, serializeSessionCookie } from '../identity/index.js';
import { isPosternError } from '../errors.js';
import { sendProblem } from './error-page.js';
import { sendSignOutPage, signOutToken, signOutTokenValid } from './sign-out.js';

export const CALLBACK_PATH = '/_postern/callback';

/** What the gate reads per request: the snapshot's identity maps. */
export interface IdentityView {
  grant(secretHash: string): SessionGrantRecord | undefined;
  session(id: string): SessionRecord | undefined;
  user(id: string): UserRecord | undefined;
}

export interface Identity {
  readonly session: SessionRecord;
  readonly user: UserRecord;
}

export interface IdentityGateOptions {
  view: () => IdentityView;
  /** `https://<domain>[:port]`, where /auth/login lives. */
  controlOrigin: string;
  exchangeHandoff: (code: string, socket: string) => Promise<{ secret: string; returnTo: string; maxAgeSeconds: number }>;
  /** Ends a session (revoked, recorded) and resolves once this edge's snapshot knows. */
  signOut: (input: { sessionId: string; email: string; clientIp: string; socket: string }) => Promise<void>;
  /** Sessions idle longer than this must sign in again. */
  idleTimeoutMs: number;
  now?: () => Date;
}

export type GateResult = { readonly kind: 'pass'; readonly identity: Identity } | { readonly kind: 'answered' };

export class IdentityGate {
  private readonly lastSeen = new Map<string, number>();
  private readonly now: () => Date;

  constructor(private readonly options: IdentityGateOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** Who this request is, or why not; never touches the database. */
  identify(req: IncomingMessage, socket: SocketRecord): Identity | { reason: string } {
    const secret = readSessionCookie(req.headers);
    if (!secret) return { reason: 'not signed in' };
    const view = this.options.view();
    const grant = view.grant(hashSessionSecret(secret));
    if (!grant || grant.socket !== socket.name) return { reason: 'unknown or revoked session' };
    const session = view.session(grant.sessionId);
    const now = this.now().getTime();
    if (!session || session.revokedAt !== null || Date.parse(session.expiresAt) <= now) return { reason: 'session ended' };
    const seen = this.lastSeen.get(session.id) ?? Date.parse(session.lastSeenAt);
    if (now - seen > this.options.idleTimeoutMs) return { reason: 'session idle too long' };
    const user = view.user(session.userId);
    if (!user || user.disabledAt) return { reason: 'user disabled or removed' };
    this.lastSeen.set(session.id, now);
    return { session, user };
  }

  /** Sessions seen since the last call, for the caller to record as last-seen (bounded). */
  drainLastSeen(): Map<string, number> {
    const seen = new Map(this.lastSeen);
    if (this.lastSeen.size > 100_000) this.lastSeen.clear();
    return seen;
  }

  /** For connections that cannot be redirected (WebSocket upgrades): the identity, or the problem. */
  authorize(req: IncomingMessage, socket: SocketRecord): Identity | { status: number; code: 'unauthenticated'; detail: string } {
    const who = this.identify(req, socket);
    return 'reason' in who ? { status: 401, code: 'unauthenticated', detail: `${who.reason}: sign in at ${this.options.controlOrigin}/auth/login` } : who;
  }

  /** Passes an allowed user through; otherwise answers (redirect to sign-in, 401 or 403). */
  async check(req: IncomingMessage, res: ServerResponse, socket: SocketRecord): Promise<GateResult> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === CALLBACK_PATH) {
      await this.callback(req, res, socket);
      return { kind: 'answered' };
    }
    const who = this.identify(req, socket);
    if ('reason' in who) {
      this.signIn(req, res, socket);
      return { kind: 'answered' };
    }
    return { kind: 'pass', identity: who };
  }

  /** `/_postern/logout` on any HTTP socket host: GET shows the confirmation, POST with its token signs out. */
  async signOut(req: IncomingMessage, res: ServerResponse, socket: SocketRecord, clientIp: string): Promise<void> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') {
      res.setHeader('allow', 'GET, POST');
      return sendProblem(req, res, { status: 405, code: 'bad_request', detail: 'sign out with GET (a confirmation page) and then POST' });
    }
    const secret = readSessionCookie(req.headers);
    const view = this.options.view();
    const grant = secret ? view.grant(hashSessionSecret(secret)) : undefined;
    const session = grant && grant.socket === socket.name ? view.session(grant.sessionId) : undefined;
    if (!secret || !session || session.revokedAt !== null) return sendSignOutPage(res, 200, { kind: 'not-signed-in', socket: socket.name });
    const email = view.user(session.userId)?.email ?? '';
    const confirm = { kind: 'confirm', email, socket: socket.name, token: signOutToken(secret) } as const;
    if (method !== 'POST') return sendSignOutPage(res, 200, confirm);
    const submitted = new URL(req.url ?? '/', 'https://socket.invalid').searchParams.get('token');
    if (!signOutTokenValid(secret, submitted)) return sendSignOutPage(res, 403, { ...confirm, retry: true });
    await this.options.signOut({ sessionId: session.id, email, clientIp, socket: socket.name });
    this.lastSeen.delete(session.id);
    sendSignOutPage(res, 200, { kind: 'done', socket: socket.name }, { 'set-cookie': clearSessionCookie() });
  }

  private signIn(req: IncomingMessage, res: ServerResponse, socket: SocketRecord): void {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      sendProblem(req, res, { status: 401, code: 'unauthenticated', detail: `sign in at ${this.options.controlOrigin}/auth/login first` });
      return;
    }
    const login = new URL('/auth/login', this.options.controlOrigin);
    login.searchParams.set('socket', socket.name);
    login.searchParams.set('return_to', req.url ?? '/');
    res.writeHead(302, { location: login.toString(), 'cache-control': 'no-store' });
    res.end();
  }

  private async callback(req: IncomingMessage, res: ServerResponse, socket: SocketRecord): Promise<void> {
    const code = new URL(req.url ?? '/', 'https://socket.invalid').searchParams.get('code') ?? '';
    try {
      const handoff = await this.options.exchangeHandoff(code, socket.name);
      res.writeHead(303, {
        location: handoff.returnTo.startsWith('/') && !handoff.returnTo.startsWith('//') ? handoff.returnTo : '/',
        'set-cookie': serializeSessionCookie(handoff.secret, { maxAgeSeconds: handoff.maxAgeSeconds }),
        'cache-control': 'no-store',
      });
      res.end();
    } catch (err) {
      const detail = isPosternError(err) ? err.message : 'the sign-in code could not be checked';
      sendProblem(req, res, { status: 400, code: isPosternError(err) ? err.code : 'bad_request', detail: `sign-in failed: ${detail}; start again from ${this.options.controlOrigin}/auth/login` });
    }
  }
}
