// `tls` sockets at the edge: the Postern user certificate (already verified in the handshake)
// names the person; the snapshot and the policies decide; an allowed stream is piped to the
// connector, recorded when it opens and closes, and registered so it is decided again later.
import type tls from 'node:tls';
import { decidingRule, denialDetail, evaluate, requestContext } from '../policy/index.js';
import type { Decision } from '../policy/index.js';
import type { SocketRecord, UserRecord } from '../store/index.js';
import { header, resetCodeName } from '../tunnel/index.js';
import { isPosternError } from '../errors.js';
import { certificateFacts, newConnectionId, observedEvents } from './access.js';
import type { CertificateFacts, ConnectionHandlerOptions } from './access.js';
import type { Verdict } from './live-registry.js';
import { joinStreams } from './pipe.js';

export type TlsSocketOptions = ConnectionHandlerOptions;

interface Admitted {
  readonly actor: string;
  readonly userId: string;
  readonly sessionId: string;
  readonly clientIp: string;
  readonly country: string;
  readonly rule: string;
  readonly recheckAt: Date | undefined;
  readonly decide: () => Verdict;
}

export class TlsSockets {
  constructor(private readonly options: TlsSocketOptions) {}

  /** Decides a verified TLS connection for `record`; pipes it or refuses it (and records either). */
  accept(socket: tls.TLSSocket, record: SocketRecord): void {
    const cert = certificateFacts(socket);
    const clientIp = this.options.clientIp(socket);
    const country = this.options.geo?.country(clientIp);
    const { verdict, user, decision } = this.decide(record.name, cert, clientIp, country);
    const base = { actor: cert.email ?? '', socket: record.name, clientIp, country: country ?? '', sessionId: cert.sessionId ?? '' };
    // Observe-mode events once per connection, when it opens (not at every re-decision).
    if (decision) for (const event of observedEvents(decision, { ...base, details: { protocol: 'tls' } }, verdict.keep ? decision.summary : verdict.reason)) this.options.audit(event);
    // An allowing verdict always comes with its user.
    if (!verdict.keep || !user) {
      const reason = verdict.keep ? 'no active user' : verdict.reason;
      this.options.audit({ type: 'access.denied', ...base, decision: 'deny', reason, rule: verdict.rule ?? '', details: { protocol: 'tls' } });
      this.options.logger.info({ socket: record.name, remoteAddress: socket.remoteAddress, reason }, 'tls socket refused');
      return void socket.destroy();
    }
    this.pipe(socket, record, { ...base, userId: user.id, rule: verdict.rule ?? '', recheckAt: verdict.recheckAt, decide: () => this.decide(record.name, cert, clientIp, country).verdict });
  }

  /**
   * Decides a `tls` stream against the current snapshot: the certificate's user must be active,
   * the sign-in it was issued under still live, and a policy must allow `tls` on this socket.
   */
  private decide(socketName: string, cert: CertificateFacts, clientIp: string, country: string | undefined): { verdict: Verdict; user?: UserRecord; decision?: Decision } {
    const view = this.options.view();
    const record = view.socket(socketName);
    if (!record || record.type !== 'tls') return { verdict: { keep: false, reason: `socket "${socketName}" no longer exists` } };
    if (!cert.email) return { verdict: { keep: false, reason: 'no user certificate' } };
    const user = view.userByEmail(cert.email);
    if (!user || user.disabledAt) return { verdict: { keep: false, reason: `${cert.email} is not an active user` } };
    if (cert.sessionId !== undefined && !view.sessionLive(cert.sessionId)) {
      return { verdict: { keep: false, reason: `the sign-in of ${cert.email} this certificate was issued under has ended` }, user };
    }
    const context = requestContext({ socket: record, user, clientIp, country, at: this.options.now(), action: { protocol: 'tls' } });
    const policies = view.policies();
    const decision = evaluate(context, policies);
    const rule = decidingRule(decision);
    if (decision.effect === 'deny') return { verdict: { keep: false, reason: denialDetail(context, policies, decision), rule }, user, decision };
    return { verdict: { keep: true, rule, ...(decision.recheckAt ? { recheckAt: decision.recheckAt } : {}) }, user, decision };
  }

  private pipe(socket: tls.TLSSocket, record: SocketRecord, who: Admitted): void {
    const { audit, logger, live, now } = this.options;
    const base = { actor: who.actor, socket: record.name, clientIp: who.clientIp, country: who.country, sessionId: who.sessionId, decision: 'allow' as const, rule: who.rule };
    let stream;
    try {
      stream = this.options.hub.openStream(record.name, { [header.socket]: record.name, [header.kind]: 'tcp', [header.clientIp]: who.clientIp });
    } catch (err) {
      const reason = isPosternError(err) ? err.message : 'the tunnel could not be opened';
      audit({ type: 'connection.close', ...base, reason, details: { protocol: 'tls', failed: isPosternError(err) ? err.code : 'internal' } });
      logger.info({ socket: record.name, err: isPosternError(err) ? err.code : err }, 'tls socket refused');
      socket.destroy();
      return;
    }
    socket.pause();
    socket.setNoDelay(true);
    stream.once('response', (headers) => {
      if (headers[header.error]) {
        stream.reset();
        socket.destroy();
      }
    });
    const id = newConnectionId();
    const started = now();
    audit({ type: 'connection.open', ...base, connectionId: id, details: { protocol: 'tls' } });
    logger.info({ event: 'connection.open', connection: id, socket: record.name, user: who.actor, clientIp: who.clientIp }, 'tls connection opened');
    const counters = joinStreams(socket, stream, ({ bytesUp, bytesDown }) => {
      const reason = stream.resetCode !== undefined ? `reset (${resetCodeName(stream.resetCode)})` : 'closed';
      live.closed(id, reason);
      logger.info({ event: 'connection.close', connection: id, socket: record.name, user: who.actor, clientIp: who.clientIp, bytesUp, bytesDown, durationMs: now().getTime() - started.getTime(), reason }, 'tls connection closed');
    });
    live.add({
      id, protocol: 'tls', socket: record.name, userId: who.userId, email: who.actor, sessionId: who.sessionId, clientIp: who.clientIp, country: who.country,
      startedAt: started, counters, decide: who.decide, close: () => socket.destroy(),
    }, who.recheckAt);
  }
}
