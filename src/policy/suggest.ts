// `policy suggest`: policies written from observed traffic. Flows (who did what on which socket,
// or which service called which service, counted) become allow rules generalised the way a
// person would write them: path prefixes instead of thousands of paths (a trie over path
// segments), groups instead of long email lists, a workload's `app` label instead of its
// replicas' SPIFFE ids, methods grouped; each rule says how many flows it covers. Then every
// flow is decided against the suggestions themselves, so the report of what enforcing them
// would deny is the engine's own answer, not a second guess. Pure: the control plane hands in
// flows, sockets, services and users.
import { Document, isMap, isSeq } from 'yaml';
import { compilePolicies } from './compile.js';
import { evaluate } from './evaluate.js';
import { validatePolicyDocument } from './document.js';
import { generaliseWho, groupedMethods, pathGeneraliser } from './generalise.js';
import type { Action, PolicyDocument, Principal, RequestContext, Rule, WhoCondition } from './types.js';

/** One kind of access observed, with how often it was seen. */
export interface ObservedFlow {
  /** What was reached: a socket's name, or for `kind: 'service'` the destination service's SPIFFE id. */
  readonly socket: string;
  /** Absent = `socket`. */
  readonly kind?: 'socket' | 'service';
  /** The person's email (lower-case), or a calling service's SPIFFE id (always, in a service flow). */
  readonly actor: string;
  /** A calling service's signed labels, as the deciding agent saw them. */
  readonly callerLabels?: Readonly<Record<string, string>>;
  readonly action: Extract<Action, { protocol: 'http' }> | { readonly protocol: 'ssh'; readonly login: string } | { readonly protocol: 'tls' };
  readonly count: number;
  /** Set when an observing deny rule would refuse it: such flows are reported, never learned. */
  readonly observedDeny?: string;
}

export interface SuggestOptions {
  /** A path level with more distinct children than this collapses to `/*` (and stops there). */
  readonly maxChildren: number;
  /** A group replaces its members' emails when at least this many of them share the access… */
  readonly minGroupMembers: number;
  /** …and every member of it seen on the socket does, or at least this many of them do. */
  readonly groupQuorum: number;
  /** Methods: this many distinct ones or more and the rule allows any method. */
  readonly anyMethodAt: number;
  /** Rules covering fewer flows are left out (their flows show in the report). */
  readonly minFlows: number;
  /** Written into each suggestion so its first denials raise alarms (ISO 8601). */
  readonly alarmUntil?: string;
  /** The description line of each suggestion. */
  readonly description?: string;
}

export const SUGGEST_DEFAULTS: SuggestOptions = Object.freeze({ maxChildren: 20, minGroupMembers: 2, groupQuorum: 5, anyMethodAt: 6, minFlows: 1 });

export interface SuggestedPolicy {
  readonly ref: string;
  readonly document: PolicyDocument;
  /** Flows each rule covers, by rule index. */
  readonly ruleFlows: readonly number[];
  /** The document as YAML, each rule preceded by a comment counting its flows. */
  readonly yaml: string;
}

export interface UncoveredFlow {
  readonly kind: 'socket' | 'service';
  /** The socket's name or the service's SPIFFE id, as the flow named it. */
  readonly socket: string;
  readonly actor: string;
  /** `GET /admin/users`, `ssh login root`, `tls connect`, `tcp connect` (a service flow). */
  readonly action: string;
  readonly count: number;
  /** Why enforcing the suggestions would refuse it. */
  readonly why: string;
}

export interface Suggestion {
  readonly policies: readonly SuggestedPolicy[];
  readonly uncovered: readonly UncoveredFlow[];
  /** Flows read, and how many of them the suggestions allow. */
  readonly flows: number;
  readonly covered: number;
}

export interface SuggestSocket {
  readonly kind?: 'socket';
  readonly name: string;
  readonly tags: Readonly<Record<string, string>>;
}

/** A service agents declared: flows name it by its SPIFFE id, policies by its name in its namespace. */
export interface SuggestService {
  readonly kind: 'service';
  readonly spiffeId: string;
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** What flows reach, and suggested policies attach to. */
export type SuggestTarget = SuggestSocket | SuggestService;

// ---- rules -------------------------------------------------------------------------------

/** What one learned access is, before `who` is generalised: the same actors doing the same things. */
interface Draft {
  readonly what: NonNullable<Rule['what']>;
  readonly actors: Map<string, number>;
  readonly kind: string;
}

function addCount(map: Map<string, number>, key: string, n: number): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

const actorsKey = (actors: Map<string, number>) => [...actors.keys()].sort().join(',');

/** HTTP drafts for one socket: (pattern, method) → actors; methods with the same actors grouped; patterns with the same actors and methods merged. */
function httpDrafts(flows: readonly ObservedFlow[], options: SuggestOptions): Draft[] {
  const http = flows.filter((f): f is ObservedFlow & { action: { protocol: 'http' } } => f.action.protocol === 'http');
  const pattern = pathGeneraliser(new Set(http.map((f) => f.action.path)), options.maxChildren);
  const byPatternMethod = new Map<string, Map<string, Map<string, number>>>();
  for (const f of http) {
    const p = pattern(f.action.path);
    const methods = byPatternMethod.get(p) ?? byPatternMethod.set(p, new Map()).get(p)!;
    const actors = methods.get(f.action.method) ?? methods.set(f.action.method, new Map()).get(f.action.method)!;
    addCount(actors, f.actor, f.count);
  }
  const merged = new Map<string, { methods: string[]; paths: string[]; actors: Map<string, number> }>();
  for (const [p, methods] of byPatternMethod) {
    const byActors = new Map<string, { methods: string[]; actors: Map<string, number> }>();
    for (const [method, actors] of methods) {
      const key = actorsKey(actors);
      const entry = byActors.get(key) ?? byActors.set(key, { methods: [], actors: new Map() }).get(key)!;
      entry.methods.push(method);
      for (const [a, n] of actors) addCount(entry.actors, a, n);
    }
    for (const [key, entry] of byActors) {
      const methods = groupedMethods(entry.methods, options.anyMethodAt);
      const mergeKey = `${key}|${methods.join(',')}`;
      const target = merged.get(mergeKey) ?? merged.set(mergeKey, { methods, paths: [], actors: new Map() }).get(mergeKey)!;
      target.paths.push(p);
      for (const [a, n] of entry.actors) addCount(target.actors, a, n);
    }
  }
  return [...merged.values()].map((m) => ({
    kind: 'http',
    actors: m.actors,
    what: { http: { ...(m.methods.length > 0 ? { methods: m.methods } : {}), paths: m.paths.sort() } },
  }));
}

function sshDrafts(flows: readonly ObservedFlow[]): Draft[] {
  const byLogin = new Map<string, Map<string, number>>();
  for (const f of flows) if (f.action.protocol === 'ssh') addCount(byLogin.get(f.action.login) ?? byLogin.set(f.action.login, new Map()).get(f.action.login)!, f.actor, f.count);
  const byActors = new Map<string, { logins: string[]; actors: Map<string, number> }>();
  for (const [login, actors] of byLogin) {
    const key = actorsKey(actors);
    const entry = byActors.get(key) ?? byActors.set(key, { logins: [], actors: new Map() }).get(key)!;
    entry.logins.push(login);
    for (const [a, n] of actors) addCount(entry.actors, a, n);
  }
  return [...byActors.values()].map((e) => ({ kind: 'ssh', actors: e.actors, what: { ssh: { logins: e.logins.sort() } } }));
}

function tlsDrafts(flows: readonly ObservedFlow[]): Draft[] {
  const actors = new Map<string, number>();
  for (const f of flows) if (f.action.protocol === 'tls') addCount(actors, f.actor, f.count);
  return actors.size === 0 ? [] : [{ kind: 'tls', actors, what: { tls: {} } }];
}

interface LearnedRule {
  readonly rule: Rule;
  readonly flows: number;
  /** Whom the rule names, for its comment: `1 group`, `3 people`, `services with app=ui`. */
  readonly callers: string;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const flowsOf = (draft: Draft, pick: (actor: string) => boolean) => [...draft.actors].reduce((n, [actor, count]) => (pick(actor) ? n + count : n), 0);
const allowRule = (draft: Draft, who: WhoCondition, flows: number, callers: string): LearnedRule => ({ rule: { effect: 'allow', who, what: draft.what }, flows, callers });

/** People become one rule for their groups and one for the remaining emails (lists in `who` are ANDed, so they cannot share a rule). */
function peopleRules(draft: Draft, people: ReadonlySet<string>, seen: ReadonlySet<string>, groupsOf: ReadonlyMap<string, readonly string[]>, options: SuggestOptions): LearnedRule[] {
  if (people.size === 0) return [];
  const { groups, emails } = generaliseWho(people, seen, groupsOf, options);
  const grouped = new Set(groups);
  const inGroups = (email: string) => people.has(email) && (groupsOf.get(email) ?? []).some((g) => grouped.has(g));
  const listed = new Set(emails);
  const out: LearnedRule[] = [];
  if (groups.length > 0) out.push(allowRule(draft, { group: groups }, flowsOf(draft, inGroups), plural(groups.length, 'group')));
  if (emails.length > 0) out.push(allowRule(draft, { email: emails }, flowsOf(draft, (e) => listed.has(e)), plural(emails.length, 'person', 'people')));
  return out;
}

/** The label that says what a workload is: its replicas and versions share it, while their SPIFFE ids differ. */
const WORKLOAD_LABEL = 'app';

/** A caller's `app` label, when it has one a policy can name. */
function workloadOf(labels: Readonly<Record<string, string>> | undefined): string | undefined {
  const value = labels?.[WORKLOAD_LABEL];
  return value !== undefined && value.trim() !== '' ? value : undefined;
}

/** Calling services become one rule for those with an `app` label (by its values) and one for the others (by SPIFFE id). */
function serviceRules(draft: Draft, callers: readonly string[], labelsOf: ReadonlyMap<string, Readonly<Record<string, string>>>): LearnedRule[] {
  const appOf = new Map(callers.map((c) => [c, workloadOf(labelsOf.get(c))]));
  const apps = [...new Set([...appOf.values()].filter((a): a is string => a !== undefined))].sort();
  const ids = new Set(callers.filter((c) => appOf.get(c) === undefined));
  const out: LearnedRule[] = [];
  if (apps.length > 0) out.push(allowRule(draft, { service: { [WORKLOAD_LABEL]: apps } }, flowsOf(draft, (c) => appOf.get(c) !== undefined), `services with ${WORKLOAD_LABEL}=${apps.join('|')}`));
  if (ids.size > 0) out.push(allowRule(draft, { spiffe: [...ids].sort() }, flowsOf(draft, (c) => ids.has(c)), plural(ids.size, 'service')));
  return out;
}

const kindOf = (f: Pick<ObservedFlow, 'kind'>) => f.kind ?? 'socket';
const targetKey = (kind: 'socket' | 'service', id: string) => `${kind}\u0000${id}`;
const keyOfTarget = (t: SuggestTarget) => (t.kind === 'service' ? targetKey('service', t.spiffeId) : targetKey('socket', t.name));
const keyOfFlow = (f: ObservedFlow) => targetKey(kindOf(f), f.socket);
/** Whether the caller is a workload: every caller in the mesh, and a service a socket admitted by its JWT-SVID (its SPIFFE id is the actor). */
const serviceCaller = (f: Pick<ObservedFlow, 'kind' | 'actor'>) => kindOf(f) === 'service' || f.actor.startsWith('spiffe://');
/** A caller a rule may name: a `*` would make `spiffe` a prefix of many. */
const oneIdentity = (id: string) => !id.includes('*');
const decidable = (f: ObservedFlow) => f.actor !== '' && (!serviceCaller(f) || oneIdentity(f.actor));
const learnable = (f: ObservedFlow) => f.observedDeny === undefined && decidable(f);

/** Each calling service's labels, the last flow's when they changed over the window. */
function callerLabels(flows: readonly ObservedFlow[]): Map<string, Readonly<Record<string, string>>> {
  const labels = new Map<string, Readonly<Record<string, string>>>();
  for (const f of flows) if (f.callerLabels) labels.set(f.actor, f.callerLabels);
  return labels;
}

function describeAction(flow: ObservedFlow): string {
  const { action } = flow;
  if (action.protocol === 'http') return `${action.method} ${action.path}`;
  if (action.protocol === 'ssh') return `ssh login ${action.login}`;
  return kindOf(flow) === 'service' ? 'tcp connect' : 'tls connect';
}

/** YAML with a comment above each rule counting the flows it covers. */
function yamlOf(document: PolicyDocument, learned: readonly LearnedRule[]): string {
  const doc = new Document(document);
  const rules = isMap(doc.contents) ? doc.contents.get('rules', true) : undefined;
  if (isSeq(rules)) {
    rules.items.forEach((item, i) => {
      const { flows, callers } = learned[i]!;
      (item as { commentBefore?: string }).commentBefore = ` covers ${plural(flows, 'observed flow')} (${callers})`;
    });
  }
  return doc.toString();
}

const MAX_NAME = 63;

/** FNV-1a (32 bits) in hex: a short stable tag that keeps apart names cut to the same prefix. */
function shortHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** A slug of at most 63 characters: a longer one is cut and tagged, and so is one already taken (socket `svc-x` beside service `x`). */
function policyName(base: string, key: string, taken: (name: string) => boolean): string {
  const cut = (tag: string) => `${base.slice(0, MAX_NAME - 9).replace(/[-._]+$/, '')}-${shortHash(tag)}`;
  const name = base.length <= MAX_NAME ? base : cut(base);
  return taken(name) ? cut(key) : name;
}

/** Where a target's policy lives and how it attaches: sockets by name in their `namespace` tag, services by name in theirs. */
function attachmentOf(target: SuggestTarget): { namespace: string; base: string; attach: { sockets: string[] } | { services: string[] } } {
  return target.kind === 'service'
    ? { namespace: target.namespace, base: `suggested-svc-${target.name}`, attach: { services: [target.name] } }
    : { namespace: target.tags.namespace ?? '', base: `suggested-${target.name}`, attach: { sockets: [target.name] } };
}

const refOf = (namespace: string, name: string) => (namespace ? `${namespace}/${name}` : name);

function policyOf(target: SuggestTarget, learned: readonly LearnedRule[], options: SuggestOptions, refs: ReadonlySet<string>): SuggestedPolicy {
  const { namespace, base, attach } = attachmentOf(target);
  const raw = {
    name: policyName(base, keyOfTarget(target), (name) => refs.has(refOf(namespace, name))),
    ...(namespace ? { namespace } : {}),
    ...(options.description ? { description: options.description } : {}),
    ...attach,
    ...(options.alarmUntil ? { alarm_until: options.alarmUntil } : {}),
    rules: learned.map((r, i) => ({ name: `learned-${i + 1}`, ...r.rule })),
  };
  // Through the schema like any applied file: what is suggested is what `policy apply` stores.
  const document = validatePolicyDocument(JSON.parse(JSON.stringify(raw)));
  return { ref: refOf(namespace, document.name), document, ruleFlows: learned.map((r) => r.flows), yaml: yamlOf(document, learned) };
}

const ruleKindOrder: Record<string, number> = { http: 0, ssh: 1, tls: 2 };
/** Sockets by name, then services by SPIFFE id. */
const targetOrder = (a: ObservedFlow, b: ObservedFlow) => (kindOf(a) === kindOf(b) ? (a.socket < b.socket ? -1 : a.socket > b.socket ? 1 : 0) : kindOf(a) === 'socket' ? -1 : 1);

/**
 * Policies that allow the observed flows, one per socket (in the socket's namespace, attached by
 * name) and one per destination service (in its namespace, attached by `services`), and the flows
 * enforcing them would refuse: those an observing deny rule denies (never learned), those of
 * rules under `minFlows`, and those to sockets or services that are gone.
 */
export function suggestPolicies(flows: readonly ObservedFlow[], targets: readonly SuggestTarget[], groupsOf: ReadonlyMap<string, readonly string[]>, given: Partial<SuggestOptions> = {}): Suggestion {
  const options = { ...SUGGEST_DEFAULTS, ...given };
  const known = new Map(targets.map((t) => [keyOfTarget(t), t]));
  const labelsOf = callerLabels(flows);
  const byTarget = new Map<string, ObservedFlow[]>();
  for (const f of [...flows].sort(targetOrder)) if (learnable(f)) (byTarget.get(keyOfFlow(f)) ?? byTarget.set(keyOfFlow(f), []).get(keyOfFlow(f))!).push(f);
  const policies: SuggestedPolicy[] = [];
  const refs = new Set<string>();
  for (const [key, targetFlows] of byTarget) {
    const target = known.get(key);
    if (!target) continue;
    const seen = new Set(targetFlows.map((f) => f.actor));
    const drafts = [...httpDrafts(targetFlows, options), ...sshDrafts(targetFlows), ...tlsDrafts(targetFlows)];
    const services = new Set(targetFlows.filter(serviceCaller).map((f) => f.actor));
    // People by groups and emails, workloads by label and SPIFFE id: one draft may have both.
    const rulesFor = (d: Draft) => {
      const callers = [...d.actors.keys()];
      return [...peopleRules(d, new Set(callers.filter((a) => !services.has(a))), seen, groupsOf, options), ...serviceRules(d, callers.filter((a) => services.has(a)), labelsOf)];
    };
    const learned = drafts.flatMap(rulesFor)
      .filter((r) => r.flows >= options.minFlows)
      .sort((a, b) => ruleKindOrder[Object.keys(a.rule.what!)[0]!]! - ruleKindOrder[Object.keys(b.rule.what!)[0]!]! || b.flows - a.flows);
    if (learned.length === 0) continue;
    const policy = policyOf(target, learned, options, refs);
    refs.add(policy.ref);
    policies.push(policy);
  }
  return { policies, ...uncoveredBy(policies, flows, known, groupsOf, labelsOf) };
}

/** The request the engine decides for a flow: a person on a socket, or a calling service on a destination service. */
function contextOf(f: ObservedFlow, target: SuggestTarget, groupsOf: ReadonlyMap<string, readonly string[]>, labelsOf: ReadonlyMap<string, Readonly<Record<string, string>>>): RequestContext {
  const action: Action = f.action.protocol === 'ssh' ? { protocol: 'ssh', login: f.action.login } : f.action;
  const socket: RequestContext['socket'] = target.kind === 'service'
    ? { kind: 'service', name: target.name, namespace: target.namespace, tags: target.labels }
    : { name: target.name, namespace: target.tags.namespace ?? '', tags: target.tags };
  const principal: Principal = serviceCaller(f)
    ? { service: { id: f.actor, labels: labelsOf.get(f.actor) ?? {} } }
    : { user: { id: f.actor, email: f.actor, groups: groupsOf.get(f.actor) ?? [] } };
  return { socket, principal, clientIp: '0.0.0.0', at: new Date(0), action };
}

function whyRefused(f: ObservedFlow, target: SuggestTarget | undefined): string {
  if (f.observedDeny) return `an observing rule denies it: ${f.observedDeny}`;
  const service = kindOf(f) === 'service';
  if (!target) return service ? 'the service is no longer declared' : 'the socket no longer exists';
  if (f.actor === '') return service ? 'no calling service identified' : 'nobody signed in';
  if (serviceCaller(f) && !oneIdentity(f.actor)) return 'the caller is not one service identity';
  return 'no suggested rule covers it (fewer than the minimum flows)';
}

/** Every flow decided against the suggestions alone (nothing else allowing). */
function uncoveredBy(policies: readonly SuggestedPolicy[], flows: readonly ObservedFlow[], targets: ReadonlyMap<string, SuggestTarget>, groupsOf: ReadonlyMap<string, readonly string[]>, labelsOf: ReadonlyMap<string, Readonly<Record<string, string>>>): { uncovered: UncoveredFlow[]; flows: number; covered: number } {
  const set = compilePolicies(policies.map((p) => ({ document: p.document, version: 1 })));
  const uncovered: UncoveredFlow[] = [];
  let total = 0;
  let covered = 0;
  for (const f of flows) {
    total += f.count;
    const target = targets.get(keyOfFlow(f));
    if (target && decidable(f) && evaluate(contextOf(f, target, groupsOf, labelsOf), set).effect === 'allow') {
      covered += f.count;
      continue;
    }
    uncovered.push({ kind: kindOf(f), socket: f.socket, actor: f.actor, action: describeAction(f), count: f.count, why: whyRefused(f, target) });
  }
  uncovered.sort((a, b) => b.count - a.count || (a.socket < b.socket ? -1 : a.socket > b.socket ? 1 : 0));
  return { uncovered, flows: total, covered };
}

/** All suggestions as one YAML stream (`---` between documents), for reading; `policy apply` takes one document per file. */
export function suggestionsYaml(suggestion: Suggestion): string {
  return suggestion.policies.map((p) => p.yaml).join('---\n');
}
