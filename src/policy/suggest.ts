// `policy suggest`: policies written from observed traffic. Flows (who did what on which socket,
// counted) become allow rules generalised the way a person would write them: path prefixes
// instead of thousands of paths (a trie over path segments), groups instead of long email
// lists, methods grouped; each rule says how many flows it covers. Then every flow is decided
// against the suggestions themselves, so the report of what enforcing them would deny is the
// engine's own answer, not a second guess. Pure: the control plane hands in flows and users.
import { Document, isMap, isSeq } from 'yaml';
import { compilePolicies } from './compile.js';
import { evaluate } from './evaluate.js';
import { validatePolicyDocument } from './document.js';
import type { Action, PolicyDocument, Rule, WhoCondition } from './types.js';

/** One kind of access observed, with how often it was seen. Services → services will add a `service` actor. */
export interface ObservedFlow {
  readonly socket: string;
  /** The person's email (lower-case). */
  readonly actor: string;
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
  readonly socket: string;
  readonly actor: string;
  /** `GET /admin/users`, `ssh login root`, `tls connect`. */
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
  readonly name: string;
  readonly tags: Readonly<Record<string, string>>;
}

// ---- paths: a trie over segments ---------------------------------------------------------

interface PathNode {
  children: Map<string, PathNode>;
  /** A path ended here. */
  terminal: boolean;
  /** Collapsed for having too many children: everything below is `/*`. */
  wildTail: boolean;
}

const node = (): PathNode => ({ children: new Map(), terminal: false, wildTail: false });
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Segments that name one thing among many: numbers, UUIDs, long hex (hashes, object ids). */
export function isIdSegment(segment: string): boolean {
  return /^\d+$/.test(segment) || UUID.test(segment) || /^[0-9a-f]{16,}$/i.test(segment);
}

function merge(into: PathNode, from: PathNode): void {
  into.terminal ||= from.terminal;
  into.wildTail ||= from.wildTail;
  for (const [segment, child] of from.children) {
    const existing = into.children.get(segment);
    if (existing) merge(existing, child);
    else into.children.set(segment, child);
  }
}

function collapse(at: PathNode, segments: readonly string[]): void {
  const star = at.children.get('*') ?? node();
  for (const segment of segments) {
    merge(star, at.children.get(segment)!);
    at.children.delete(segment);
  }
  at.children.set('*', star);
}

function generalise(at: PathNode, maxChildren: number): void {
  if (at.children.size > maxChildren) {
    collapse(at, [...at.children.keys()].filter((s) => s !== '*'));
    at.children.get('*')!.wildTail = true;
    return;
  }
  const ids = [...at.children.keys()].filter(isIdSegment);
  if (ids.length > 0) collapse(at, ids);
  for (const child of at.children.values()) generalise(child, maxChildren);
}

const segmentsOf = (path: string) => (path === '/' ? [] : path.slice(1).split('/'));

/** A function from each observed path to the glob that covers it. */
export function pathGeneraliser(paths: Iterable<string>, maxChildren: number): (path: string) => string {
  const root = node();
  for (const path of paths) {
    let at = root;
    for (const segment of segmentsOf(path)) {
      let next = at.children.get(segment);
      if (!next) at.children.set(segment, (next = node()));
      at = next;
    }
    at.terminal = true;
  }
  generalise(root, maxChildren);
  return (path) => {
    let at = root;
    const out: string[] = [];
    for (const segment of segmentsOf(path)) {
      const literal = at.children.get(segment);
      // A collapsed segment is `*` in a glob; a literal `*` in a path would read as one too.
      const next = literal && segment !== '*' ? literal : at.children.get('*');
      if (!next) return path;
      out.push(next === literal && segment !== '*' ? segment : '*');
      if (next.wildTail) break;
      at = next;
    }
    return `/${out.join('/')}`;
  };
}

// ---- who: groups instead of emails -------------------------------------------------------

/**
 * Groups that stand for some of `actors`, and the emails left over. A group qualifies when at
 * least `minGroupMembers` of its members are among the actors and either every member of it seen
 * on the socket is (the group shares the access), or `groupQuorum` of them are. Biggest first;
 * a group is taken only when it covers someone not yet covered.
 */
export function generaliseWho(actors: ReadonlySet<string>, seenOnSocket: ReadonlySet<string>, groupsOf: ReadonlyMap<string, readonly string[]>, options: Pick<SuggestOptions, 'minGroupMembers' | 'groupQuorum'>): { groups: string[]; emails: string[] } {
  const members = new Map<string, string[]>();
  for (const [email, groups] of groupsOf) for (const g of groups) (members.get(g) ?? members.set(g, []).get(g)!).push(email);
  const candidates: { group: string; inside: string[] }[] = [];
  for (const [group, all] of members) {
    const inside = all.filter((e) => actors.has(e));
    if (inside.length < options.minGroupMembers) continue;
    const seen = all.filter((e) => seenOnSocket.has(e));
    if (seen.every((e) => actors.has(e)) || inside.length >= options.groupQuorum) candidates.push({ group, inside });
  }
  candidates.sort((a, b) => b.inside.length - a.inside.length || (a.group < b.group ? -1 : 1));
  const covered = new Set<string>();
  const groups: string[] = [];
  for (const c of candidates) {
    if (c.inside.every((e) => covered.has(e))) continue;
    groups.push(c.group);
    for (const e of c.inside) covered.add(e);
  }
  return { groups: groups.sort(), emails: [...actors].filter((e) => !covered.has(e)).sort() };
}

// ---- rules -------------------------------------------------------------------------------

const METHOD_ORDER = ['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE'];
const byMethod = (a: string, b: string) => {
  const ia = METHOD_ORDER.indexOf(a);
  const ib = METHOD_ORDER.indexOf(b);
  return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib) || (a < b ? -1 : a > b ? 1 : 0);
};

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

/** Sorted, HEAD beside GET (a HEAD is a GET without its body); empty (= any) from `anyAt` distinct methods. */
export function groupedMethods(methods: readonly string[], anyAt: number): string[] {
  const set = new Set(methods.map((m) => m.toUpperCase()));
  if (set.has('GET')) set.add('HEAD');
  return set.size >= anyAt ? [] : [...set].sort(byMethod);
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
}

/** A draft becomes one rule for its groups and one for the remaining emails (lists in `who` are ANDed, so they cannot share a rule). */
function rulesOf(draft: Draft, seen: ReadonlySet<string>, groupsOf: ReadonlyMap<string, readonly string[]>, options: SuggestOptions): LearnedRule[] {
  const { groups, emails } = generaliseWho(new Set(draft.actors.keys()), seen, groupsOf, options);
  const grouped = new Set(groups);
  const inGroups = (email: string) => (groupsOf.get(email) ?? []).some((g) => grouped.has(g));
  const flowsOf = (pick: (email: string) => boolean) => [...draft.actors].reduce((n, [email, count]) => (pick(email) ? n + count : n), 0);
  const out: LearnedRule[] = [];
  const add = (who: WhoCondition, flows: number) => out.push({ rule: { effect: 'allow', who, what: draft.what }, flows });
  if (groups.length > 0) add({ group: groups }, flowsOf(inGroups));
  if (emails.length > 0) add({ email: emails }, flowsOf((e) => emails.includes(e)));
  return out;
}

function describeAction(action: ObservedFlow['action']): string {
  if (action.protocol === 'http') return `${action.method} ${action.path}`;
  if (action.protocol === 'ssh') return `ssh login ${action.login}`;
  return 'tls connect';
}

function commentFor(rule: Rule, flows: number): string {
  const who = rule.who?.group ? `${rule.who.group.length} group${rule.who.group.length === 1 ? '' : 's'}` : `${rule.who?.email?.length ?? 0} ${rule.who?.email?.length === 1 ? 'person' : 'people'}`;
  return ` covers ${flows} observed flow${flows === 1 ? '' : 's'} (${who})`;
}

/** YAML with a comment above each rule counting the flows it covers. */
function yamlOf(document: PolicyDocument, ruleFlows: readonly number[]): string {
  const doc = new Document(document);
  const rules = isMap(doc.contents) ? doc.contents.get('rules', true) : undefined;
  if (isSeq(rules)) rules.items.forEach((item, i) => { (item as { commentBefore?: string }).commentBefore = commentFor(document.rules[i]!, ruleFlows[i]!); });
  return doc.toString();
}

/** A slug of at most 63 characters. */
function policyName(socket: string): string {
  return `suggested-${socket}`.slice(0, 63).replace(/[-._]+$/, '');
}

const ruleKindOrder: Record<string, number> = { http: 0, ssh: 1, tls: 2 };

/**
 * Policies that allow the observed flows, one per socket (in the socket's namespace, attached
 * by name), and the flows enforcing them would refuse: those an observing deny rule denies
 * (never learned) and those of rules under `minFlows`.
 */
export function suggestPolicies(flows: readonly ObservedFlow[], sockets: readonly SuggestSocket[], groupsOf: ReadonlyMap<string, readonly string[]>, given: Partial<SuggestOptions> = {}): Suggestion {
  const options = { ...SUGGEST_DEFAULTS, ...given };
  const bySocket = new Map<string, ObservedFlow[]>();
  for (const f of flows) if (f.actor !== '' && f.observedDeny === undefined) (bySocket.get(f.socket) ?? bySocket.set(f.socket, []).get(f.socket)!).push(f);
  const known = new Map(sockets.map((s) => [s.name, s]));
  const policies: SuggestedPolicy[] = [];
  for (const [name, socketFlows] of [...bySocket].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const socket = known.get(name);
    if (!socket) continue;
    const seen = new Set(socketFlows.map((f) => f.actor));
    const drafts = [...httpDrafts(socketFlows, options), ...sshDrafts(socketFlows), ...tlsDrafts(socketFlows)];
    const learned = drafts.flatMap((d) => rulesOf(d, seen, groupsOf, options))
      .filter((r) => r.flows >= options.minFlows)
      .sort((a, b) => ruleKindOrder[Object.keys(a.rule.what!)[0]!]! - ruleKindOrder[Object.keys(b.rule.what!)[0]!]! || b.flows - a.flows);
    if (learned.length === 0) continue;
    const namespace = socket.tags.namespace ?? '';
    const raw = {
      name: policyName(name),
      ...(namespace ? { namespace } : {}),
      ...(options.description ? { description: options.description } : {}),
      sockets: [name],
      ...(options.alarmUntil ? { alarm_until: options.alarmUntil } : {}),
      rules: learned.map((r, i) => ({ name: `learned-${i + 1}`, ...r.rule })),
    };
    // Through the schema like any applied file: what is suggested is what `policy apply` stores.
    const document = validatePolicyDocument(JSON.parse(JSON.stringify(raw)));
    const ruleFlows = learned.map((r) => r.flows);
    policies.push({ ref: namespace ? `${namespace}/${document.name}` : document.name, document, ruleFlows, yaml: yamlOf(document, ruleFlows) });
  }
  return { policies, ...uncoveredBy(policies, flows, known, groupsOf) };
}

/** Every flow decided against the suggestions alone (nothing else allowing). */
function uncoveredBy(policies: readonly SuggestedPolicy[], flows: readonly ObservedFlow[], sockets: ReadonlyMap<string, SuggestSocket>, groupsOf: ReadonlyMap<string, readonly string[]>): { uncovered: UncoveredFlow[]; flows: number; covered: number } {
  const set = compilePolicies(policies.map((p) => ({ document: p.document, version: 1 })));
  const uncovered: UncoveredFlow[] = [];
  let total = 0;
  let covered = 0;
  for (const f of flows) {
    total += f.count;
    const socket = sockets.get(f.socket);
    const action: Action = f.action.protocol === 'ssh' ? { protocol: 'ssh', login: f.action.login } : f.action;
    const decision = socket && f.actor !== ''
      ? evaluate({ socket: { name: socket.name, namespace: socket.tags.namespace ?? '', tags: socket.tags }, principal: { user: { id: f.actor, email: f.actor, groups: groupsOf.get(f.actor) ?? [] } }, clientIp: '0.0.0.0', at: new Date(0), action }, set)
      : undefined;
    if (decision?.effect === 'allow') {
      covered += f.count;
      continue;
    }
    const why = f.observedDeny ? `an observing rule denies it: ${f.observedDeny}` : !socket ? 'the socket no longer exists' : f.actor === '' ? 'nobody signed in' : `no suggested rule covers it (fewer than the minimum flows)`;
    uncovered.push({ socket: f.socket, actor: f.actor, action: describeAction(f.action), count: f.count, why });
  }
  uncovered.sort((a, b) => b.count - a.count || (a.socket < b.socket ? -1 : a.socket > b.socket ? 1 : 0));
  return { uncovered, flows: total, covered };
}

/** All suggestions as one YAML stream (`---` between documents), for reading; `policy apply` takes one document per file. */
export function suggestionsYaml(suggestion: Suggestion): string {
  return suggestion.policies.map((p) => p.yaml).join('---\n');
}
