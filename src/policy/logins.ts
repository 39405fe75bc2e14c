// The SSH logins a principal may use on a socket now, for the principals of an SSH user
// certificate. A certificate carries only explicit logins: an allowing SSH rule without
// `logins` grants the connection but puts no login in the certificate.
import type { PolicySet } from './compile.js';
import { Facts } from './facts.js';
import type { Action, RequestContext } from './types.js';

/** Decided like a connection before the login is known: rules' login lists and channel flags pass. */
const SSH_CONNECTION: Action = { protocol: 'ssh' };

/**
 * The union of `ssh.logins` of matching allow rules, minus the logins of matching deny rules;
 * a matching deny rule without `logins` (including one without any `what`) removes all.
 * Sorted, so that certificates are stable.
 */
export function allowedSshLogins(ctx: Omit<RequestContext, 'action'>, set: PolicySet): string[] {
  const facts = new Facts(ctx, SSH_CONNECTION);
  const granted = new Set<string>();
  const removed = new Set<string>();
  for (const rule of set.applicable(ctx.socket).rules) {
    if (!rule.matches(facts)) continue;
    if (rule.effect === 'deny' && !rule.sshLogins) return [];
    for (const login of rule.sshLogins ?? []) (rule.effect === 'allow' ? granted : removed).add(login);
  }
  return [...granted].filter((login) => !removed.has(login)).sort();
}
