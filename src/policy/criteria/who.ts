// `who`: the signed-in user (email, email domain, groups) and the workload: its SPIFFE id
// (`spiffe`, or `service` as a list) and its signed labels (`service` as a map); `on_behalf_of`
// is the person a service relays a request for, so a rule can need both in one decision.
// Every rule needs an authenticated principal, even one without a `who` block.
import type { Facts } from '../facts.js';
import type { RuleOutcome, WhoCondition } from '../types.js';
import { listText } from './condition.js';
import type { Condition, Criterion } from './condition.js';

/** Exact identities, plus prefixes for entries ending in `/*` (`spiffe://corp/ns/prod/*`). */
function serviceMatcher(entries: readonly string[]): (id: string) => boolean {
  const exact = new Set(entries.filter((e) => !e.endsWith('/*')));
  const prefixes = entries.filter((e) => e.endsWith('/*')).map((e) => e.slice(0, -1));
  return (id) => {
    if (exact.has(id)) return true;
    for (const prefix of prefixes) if (id.startsWith(prefix) && id.length > prefix.length) return true;
    return false;
  };
}

/** Every label of the rule present on the service with one of the rule's values. */
function labelMatcher(wanted: Readonly<Record<string, string | readonly string[]>>): (labels: Readonly<Record<string, string>>) => boolean {
  const entries = Object.entries(wanted).map(([k, v]) => [k, new Set(typeof v === 'string' ? [v] : v)] as const);
  return (labels) => entries.every(([k, values]) => labels[k] !== undefined && values.has(labels[k]!));
}

function labelText(wanted: Readonly<Record<string, string | readonly string[]>>): string {
  return Object.entries(wanted).map(([k, v]) => `${k}=${typeof v === 'string' ? v : v.join('|')}`).join(', ');
}

const lower = (items: readonly string[] | undefined) => (items ? new Set(items.map((i) => i.toLowerCase())) : undefined);

export function compileWho(block: WhoCondition): Condition {
  const emails = lower(block.email);
  const domains = lower(block.domain);
  const groups = block.group ? new Set(block.group) : undefined;
  const ids = [...(block.spiffe ?? []), ...(Array.isArray(block.service) ? block.service : [])];
  const spiffe = ids.length > 0 ? serviceMatcher(ids) : undefined;
  const wantedLabels = block.service && !Array.isArray(block.service) ? block.service as Readonly<Record<string, string | readonly string[]>> : undefined;
  const labels = wantedLabels ? labelMatcher(wantedLabels) : undefined;
  const behalf = block.on_behalf_of;
  const behalfEmails = lower(behalf?.email);
  const behalfDomains = lower(behalf?.domain);
  const behalfGroups = behalf?.group ? new Set(behalf.group) : undefined;
  const actsFor = (f: Facts): boolean => {
    const user = f.ctx.principal.user;
    if (!user || !f.ctx.principal.service) return false;
    if (behalfEmails && !behalfEmails.has(f.email()!)) return false;
    if (behalfDomains && !behalfDomains.has(f.emailDomain()!)) return false;
    return !behalfGroups || user.groups.some((g) => behalfGroups.has(g));
  };

  const test = (f: Facts): RuleOutcome => {
    if (!f.authenticated) return 'who-unauthenticated';
    const user = f.ctx.principal.user;
    if (emails && (!user || !emails.has(f.email()!))) return 'who-email';
    if (domains && (!user || !domains.has(f.emailDomain()!))) return 'who-domain';
    if (groups) {
      let found = false;
      if (user) for (const g of user.groups) if (groups.has(g)) { found = true; break; }
      if (!found) return 'who-group';
    }
    const service = f.ctx.principal.service;
    if (spiffe && (!service || !spiffe(service.id))) return 'who-spiffe';
    if (labels && (!service || !labels(service.labels ?? {}))) return 'who-service';
    if (behalf && !actsFor(f)) return 'who-on-behalf-of';
    return 'matched';
  };

  const detail = (f: Facts, outcome: RuleOutcome): string => {
    const { user, service } = f.ctx.principal;
    const noUser = `no signed-in user${service ? ` (only service ${service.id})` : ''}`;
    switch (outcome) {
      case 'who-unauthenticated': return 'not signed in: no user and no service identity';
      case 'who-email': return user ? `email ${user.email} is not one of ${listText(emails!)}` : `${noUser}; the rule needs email ${listText(emails!)}`;
      case 'who-domain': return user ? `email domain ${f.emailDomain()} is not one of ${listText(domains!)}` : `${noUser}; the rule needs domain ${listText(domains!)}`;
      case 'who-group':
        if (!user) return `${noUser}; the rule needs group ${listText(groups!)}`;
        return user.groups.length === 0 ? `${user.email} is in no group; the rule needs one of ${listText(groups!)}` : `groups ${listText(user.groups)} include none of ${listText(groups!)}`;
      case 'who-spiffe': return service ? `service ${service.id} is not one of ${listText(ids)}` : `no service identity; the rule needs ${listText(ids)}`;
      case 'who-service': {
        const has = Object.entries(service?.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
        return service ? `service ${service.id} (labels ${has || 'none'}) does not have ${labelText(wantedLabels!)}` : `no service identity; the rule needs a service with ${labelText(wantedLabels!)}`;
      }
      case 'who-on-behalf-of': {
        const wanted = [behalfEmails && `email ${listText(behalfEmails)}`, behalfDomains && `domain ${listText(behalfDomains)}`, behalfGroups && `group ${listText(behalfGroups)}`].filter(Boolean).join(', ');
        if (!user) return `service ${service?.id ?? '?'} acts for no signed-in user; the rule needs it on behalf of ${wanted}`;
        return `${user.email}${user.groups.length ? ` (groups ${listText(user.groups)})` : ''} is not ${wanted}`;
      }
      default: return user && service ? `${service.id} on behalf of ${user.email}` : user ? `signed in as ${user.email}` : `service ${service?.id ?? '?'}`;
    }
  };
  return { test, detail };
}

export const whoCriterion: Criterion = {
  name: 'who',
  compile: (rule) => compileWho(rule.who ?? {}),
};
