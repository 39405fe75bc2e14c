// Whether a postgres session may open, and whether a live one may go on: the person of the
// certificate, their sign-in, and policy on the database (and the role asked for), decided
// against one edge snapshot. Pure: the snapshot and the time come in, a verdict goes out.
import { decidingRule, denialDetail, evaluate, requestContext } from '../../policy/index.js';
import type { Decision } from '../../policy/index.js';
import type { UserRecord } from '../../store/index.js';
import type { CertificateFacts } from '../access.js';
import type { Verdict } from '../live-registry.js';
import type { EdgeView } from '../view.js';

/** Who a session is: the certificate's facts and where it comes from. */
export interface Who {
  readonly cert: CertificateFacts;
  readonly email: string;
  readonly clientIp: string;
  readonly country: string;
}

export interface SessionFacts {
  readonly socket: string;
  readonly who: Who;
  readonly database: string;
  /** The role the client asked for (`-c postern.role=…`). */
  readonly askedRole: string | undefined;
  /** What a running session was admitted as: it may not become read-only or change role under the client. */
  readonly admitted?: { readonly readOnly: boolean; readonly role: string | undefined };
}

export interface SessionDecision {
  readonly verdict: Verdict;
  readonly user?: UserRecord;
  readonly decision?: Decision;
  readonly readOnly: boolean;
}

/** Decides a session against `view` at `at`: active user, live sign-in, a policy allowing the database. */
export function decideSession(facts: SessionFacts, view: EdgeView, at: Date): SessionDecision {
  const { cert } = facts.who;
  const record = view.socket(facts.socket);
  if (!record || record.type !== 'postgres') return { verdict: { keep: false, reason: `socket "${facts.socket}" no longer exists` }, readOnly: true };
  if (!cert.email) return { verdict: { keep: false, reason: 'no user certificate' }, readOnly: true };
  const user = view.userByEmail(cert.email);
  if (!user || user.disabledAt) return { verdict: { keep: false, reason: `${cert.email} is not an active user` }, readOnly: true };
  if (cert.sessionId !== undefined && !view.sessionLive(cert.sessionId)) {
    return { verdict: { keep: false, reason: `the sign-in of ${cert.email} this certificate was issued under has ended` }, user, readOnly: true };
  }
  const policies = view.policies();
  const contextFor = (write: boolean) => requestContext({ socket: record, user, clientIp: facts.who.clientIp, country: facts.who.country || undefined, at, action: { protocol: 'database', database: facts.database, write, ...(facts.askedRole !== undefined ? { role: facts.askedRole } : {}) } });
  // A session may write when a rule allows writing; else it may read when a rule allows that (read-only rules included).
  const writing = evaluate(contextFor(true), policies);
  const context = contextFor(false);
  const decision = writing.effect === 'allow' ? writing : evaluate(context, policies);
  const rule = decidingRule(decision);
  if (decision.effect === 'deny') return { verdict: { keep: false, reason: denialDetail(context, policies, decision), rule }, user, decision, readOnly: writing.effect !== 'allow' };
  const { admitted } = facts;
  // A live session admitted read-write must not go on once a policy makes it read-only.
  if (admitted && writing.effect === 'deny' && !admitted.readOnly) return { verdict: { keep: false, reason: `${rule || 'a policy'} now makes ${facts.database} read-only`, rule }, user, decision, readOnly: true };
  // Nor as a role policy no longer maps it to: the upstream login cannot change under a live session.
  if (admitted && decision.databaseRole !== admitted.role) {
    const now = decision.databaseRole === undefined ? 'the connector\'s default login' : `role ${decision.databaseRole}`;
    return { verdict: { keep: false, reason: `${rule || 'a policy'} now maps ${cert.email} to ${now}`, rule }, user, decision, readOnly: writing.effect !== 'allow' };
  }
  return { verdict: { keep: true, rule, ...(decision.recheckAt ? { recheckAt: decision.recheckAt } : {}) }, user, decision, readOnly: writing.effect !== 'allow' };
}
