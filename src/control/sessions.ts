// Browser sign-in sessions on the control plane: creating a session after a successful login,
// handing it to a socket host with a one-time code, and the socket host's own cookie (a grant).
import type { Store, SessionKind, SessionRecord, UserRecord } from '../store/index.js';
import { PosternError } from '../errors.js';
import { createSessionSecret, hashSessionSecret, createHandoffCode, hashHandoffCode } from '../identity/index.js';
import { canonicalIp } from '../reporting/index.js';
import type { NewAuditEvent } from '../reporting/index.js';


export interface SessionServiceOptions {
  store: Store;
  /** Resolves once this node's snapshot has caught up with `revision` (so the edge knows the grant). */
  waitForRevision: (revision: number) => Promise<unknown>;
  /** Absolute lifetime of a browser session. */
  sessionTtlMs: number;
  handoffTtlMs?: number;
  now?: () => Date;
  /** Sign-ins (and refused ones) go to the audit trail. */
  audit?: (event: NewAuditEvent) => void;
}

export interface ClientFacts {
  clientIp: string;
  userAgent: string;
}

export interface Handoff {
  /** The socket host's own cookie value. */
  secret: string;
  /** Path (or URL on the socket host) to send the browser to. */
  returnTo: string;
  maxAgeSeconds: number;
}

export class SessionService {
  private readonly now: () => Date;

  constructor(private readonly options: SessionServiceOptions) {
    this.now = options.now ?? (() => new Date());
  }

  async createBrowserSession(user: UserRecord, provider: string, client: ClientFacts): Promise<{ session: SessionRecord; secret: string }> {
    const { value, hash } = createSessionSecret();
    const session = await this.createSession(user, 'browser', provider, client, hash);
    return { session, secret: value };
  }

  /** A `postern login` session: the caller hands `secretHash` (of a pst1_ token shown once); same lifetime as a browser sign-in. */
  createCliSession(user: UserRecord, provider: string, client: ClientFacts, secretHash: string): Promise<SessionRecord> {
    return this.createSession(user, 'cli', provider, client, secretHash);
  }

  /** A refused sign-in, for the audit trail (the email as typed, never the password). */
  recordFailedLogin(email: string, provider: string, clientIp: string, reason: string): void {
    this.options.audit?.({ type: 'login.failed', actor: email.slice(0, 254), clientIp: canonicalIp(clientIp), decision: 'deny', reason, details: { provider } });
  }

  private async createSession(user: UserRecord, kind: SessionKind, provider: string, client: ClientFacts, secretHash: string): Promise<SessionRecord> {
    const session = await this.options.store.sessions.create({
      userId: user.id,
      kind,
      provider,
      clientIp: client.clientIp,
      userAgent: client.userAgent.slice(0, 300),
      secretHash,
      expiresAt: new Date(this.now().getTime() + this.options.sessionTtlMs).toISOString(),
    });
    this.options.audit?.({
      type: 'session.start', actor: user.email, clientIp: canonicalIp(client.clientIp), sessionId: session.id, decision: 'allow',
      reason: `signed in with ${provider} (${kind})`, details: { kind, provider, expiresAt: session.expiresAt },
    });
    return session;
  }

  /** A sign-out on a socket host (`/_postern/logout`): the session ends everywhere, recorded; resolves once this node's snapshot knows. */
  async signOut(input: { sessionId: string; email: string; clientIp: string; socket: string }): Promise<void> {
    const { store } = this.options;
    await store.sessions.revoke(input.sessionId, this.now().toISOString());
    this.options.audit?.({ type: 'session.end', actor: input.email, socket: input.socket, clientIp: canonicalIp(input.clientIp), sessionId: input.sessionId, reason: `signed out on ${input.socket}` });
    await this.options.waitForRevision(await store.currentRevision());
  }

  /** The live session and user behind a control-host cookie, or undefined. */
  async fromSecret(secret: string | undefined): Promise<{ session: SessionRecord; user: UserRecord } | undefined> {
    if (!secret) return undefined;
    const session = await this.options.store.sessions.findBySecretHash(hashSessionSecret(secret));
    if (!session || !this.isLive(session)) return undefined;
    const user = await this.options.store.users.get(session.userId);
    if (!user || user.disabledAt) return undefined;
    return { session, user };
  }

  isLive(session: SessionRecord): boolean {
    return session.revokedAt === null && Date.parse(session.expiresAt) > this.now().getTime();
  }

  /** A one-time code the socket host exchanges for its own cookie. */
  async issueHandoff(session: SessionRecord, socket: string, returnTo: string): Promise<string> {
    const { code, hash } = createHandoffCode();
    await this.options.store.handoffCodes.create({
      codeHash: hash,
      sessionId: session.id,
      socket,
      returnTo,
      expiresAt: new Date(this.now().getTime() + (this.options.handoffTtlMs ?? 60_000)).toISOString(),
    });
    return code;
  }

  /** Consumes the code (once, for this socket only) and creates the socket host's grant. */
  async exchangeHandoff(code: string, socket: string): Promise<Handoff> {
    const { store } = this.options;
    const handoff = await store.handoffCodes.consume(hashHandoffCode(code), socket, this.now().toISOString());
    const session = await store.sessions.get(handoff.sessionId);
    if (!session || !this.isLive(session)) throw new PosternError('unauthenticated', 'the sign-in this code belongs to has ended');
    const { value, hash } = createSessionSecret();
    await store.sessionGrants.create({ sessionId: session.id, socket, secretHash: hash });
    await this.options.waitForRevision(await store.currentRevision());
    const maxAgeSeconds = Math.max(1, Math.floor((Date.parse(session.expiresAt) - this.now().getTime()) / 1000));
    return { secret: value, returnTo: handoff.returnTo, maxAgeSeconds };
  }
}
