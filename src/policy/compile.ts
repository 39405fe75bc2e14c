// Stored policies compiled once into a PolicySet: matchers built, policies indexed by socket
// name (and by service name: the agents' mesh decides with the same set), with tag-attached and
// whole-namespace policies kept apart, so that one request only looks at the policies that can
// apply to what it reaches. A policy naming sockets never applies to a service of that name.
import { PosternError, errorMessage } from '../errors.js';
import type { Condition } from './criteria/condition.js';
import { PROTOCOLS, PROTOCOL_BIT, compileRule } from './rule.js';
import type { CompiledRule } from './rule.js';
import { parseInstant } from './syntax.js';
import type { PolicyRecordInput, RequestContext } from './types.js';

type Socket = RequestContext['socket'];

export interface CompiledPolicy {
  readonly name: string;
  readonly namespace: string;
  readonly version: number;
  readonly rules: readonly CompiledRule[];
  /** Tag pairs that must all match; empty for policies attached by name or to a namespace. */
  readonly tags: readonly (readonly [string, string])[];
}

export interface ProtocolRules {
  readonly deny: readonly CompiledRule[];
  readonly allow: readonly CompiledRule[];
  /** Index of the last allow rule that adds to an allow decision (an SSH session limit, database read-only); -1 if none. */
  readonly lastGrant: number;
  /** The distinct time conditions of these rules (rules share them), for the next recheck. */
  readonly timed: readonly Condition[];
  /**
   * Whether "no rule allows" is an enforced denial here: some enforcing policy has allow rules
   * for this protocol. When every allow rule is an observing policy's (or there is none, but an
   * observing policy applies), the socket's access is being designed and the default deny is observed.
   */
  readonly enforcedDefault: boolean;
  /** Enforcing allow rules whose policy raises alarms for a while (they own the default deny). */
  readonly alarmed: readonly CompiledRule[];
}

/** The rules of the policies that apply to one socket, in evaluation order. */
export interface Applicable {
  readonly rules: readonly CompiledRule[];
  /**
   * The same rules split by protocol (index: `PROTOCOL_INDEX`) and effect, each list in order:
   * deny beats allow, so the evaluator tries the denies first and the first matching one of each
   * list is the first matching one overall.
   */
  readonly byProtocol: readonly ProtocolRules[];
}

/** A policy in namespace N applies to sockets in N and below; root ('') to all. */
export function namespaceCovers(policyNamespace: string, socketNamespace: string): boolean {
  return policyNamespace === '' || socketNamespace === policyNamespace || socketNamespace.startsWith(`${policyNamespace}/`);
}

function tagsMatch(pairs: CompiledPolicy['tags'], tags: Socket['tags']): boolean {
  for (const [key, value] of pairs) if (tags[key] !== value) return false;
  return true;
}

function sameTags(a: Socket['tags'], b: Socket['tags']): boolean {
  if (a === b) return true;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) if (a[key] !== b[key]) return false;
  return true;
}

/** '', 'corp', 'corp/support' for 'corp/support'. */
function namespaceChain(namespace: string): string[] {
  if (namespace === '') return [''];
  const parts = namespace.split('/');
  return ['', ...parts.map((_, i) => parts.slice(0, i + 1).join('/'))];
}

const MAX_MEMO_SOCKETS = 10_000;

/** Immutable once built; the per-socket memo only saves recomputing `applicable`. */
export class PolicySet {
  /** Number of policies. */
  readonly size: number;
  readonly ruleCount: number;
  /** The highest record version compiled in (0 for an empty set). */
  readonly version: number;
  private readonly bySocket: Map<string, CompiledPolicy[]>;
  private readonly byService: Map<string, CompiledPolicy[]>;
  private readonly byTags: readonly CompiledPolicy[];
  private readonly byNamespace: Map<string, CompiledPolicy[]>;
  private readonly memo = new Map<string, { namespace: string; tags: Socket['tags']; applicable: Applicable }>();

  constructor(policies: readonly CompiledPolicy[], sockets: ReadonlyMap<CompiledPolicy, readonly string[]>, services: ReadonlyMap<CompiledPolicy, readonly string[]> = new Map()) {
    this.size = policies.length;
    this.ruleCount = policies.reduce((n, p) => n + p.rules.length, 0);
    this.version = policies.reduce((v, p) => Math.max(v, p.version), 0);
    this.bySocket = new Map();
    this.byService = new Map();
    this.byNamespace = new Map();
    const byTags: CompiledPolicy[] = [];
    for (const policy of policies) {
      const names = sockets.get(policy);
      const serviceNames = services.get(policy);
      if (names) for (const name of new Set(names)) push(this.bySocket, name, policy);
      else if (serviceNames) for (const name of new Set(serviceNames)) push(this.byService, name, policy);
      else if (policy.tags.length > 0) byTags.push(policy);
      else push(this.byNamespace, policy.namespace, policy);
    }
    this.byTags = byTags;
  }

  /** The evaluator's view: what applies to a socket or service, memoized per name (checked against its namespace and tags). */
  applicable(socket: Socket): Applicable {
    const service = socket.kind === 'service';
    const key = service ? `service:${socket.name}` : socket.name;
    const hit = this.memo.get(key);
    if (hit && hit.namespace === socket.namespace && sameTags(hit.tags, socket.tags)) return hit.applicable;
    const policies: CompiledPolicy[] = [];
    for (const p of (service ? this.byService : this.bySocket).get(socket.name) ?? []) if (namespaceCovers(p.namespace, socket.namespace)) policies.push(p);
    for (const p of this.byTags) if (namespaceCovers(p.namespace, socket.namespace) && tagsMatch(p.tags, socket.tags)) policies.push(p);
    for (const ns of namespaceChain(socket.namespace)) policies.push(...(this.byNamespace.get(ns) ?? []));
    policies.sort((a, b) => a.rules[0]!.order - b.rules[0]!.order);
    const rules = policies.flatMap((p) => p.rules);
    const byProtocol = PROTOCOLS.map((protocol): ProtocolRules => {
      const covering = rules.filter((r) => (r.protocols & PROTOCOL_BIT[protocol]) !== 0);
      const allow = covering.filter((r) => r.effect === 'allow');
      const grants = (r: CompiledRule) => (protocol === 'ssh' && r.maxSessionMs !== undefined) || (protocol === 'database' && r.readOnly);
      const lastGrant = allow.reduce((last, r, i) => (grants(r) ? i : last), -1);
      const enforcing = allow.filter((r) => !r.observe);
      const observed = rules.some((r) => r.observe);
      return {
        deny: covering.filter((r) => r.effect === 'deny'), allow, lastGrant, timed: [...new Set(covering.flatMap((r) => r.timed))],
        enforcedDefault: enforcing.length > 0 || !observed, alarmed: enforcing.filter((r) => r.alarmUntil !== undefined),
      };
    });
    const applicable = { rules, byProtocol };
    if (this.memo.size >= MAX_MEMO_SOCKETS) this.memo.clear();
    this.memo.set(key, { namespace: socket.namespace, tags: socket.tags, applicable });
    return applicable;
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Parents before children, then by name: the order explanations list rules in. */
function byNamespaceThenName(a: PolicyRecordInput, b: PolicyRecordInput): number {
  const na = a.document.namespace ?? '';
  const nb = b.document.namespace ?? '';
  const depth = (ns: string) => (ns === '' ? 0 : ns.split('/').length);
  return depth(na) - depth(nb) || (na < nb ? -1 : na > nb ? 1 : 0) || (a.document.name < b.document.name ? -1 : a.document.name > b.document.name ? 1 : 0);
}

/**
 * Compiles validated documents (see validatePolicyDocument). A value that does not compile
 * throws `config_invalid` naming the policy and field: a set is never built with a policy missing.
 */
export function compilePolicies(records: readonly PolicyRecordInput[]): PolicySet {
  const shared = new Map<string, Condition | undefined>();
  const policies: CompiledPolicy[] = [];
  const sockets = new Map<CompiledPolicy, readonly string[]>();
  const services = new Map<CompiledPolicy, readonly string[]>();
  let order = 0;
  for (const record of [...records].sort(byNamespaceThenName)) {
    const doc = record.document;
    const namespace = doc.namespace ?? '';
    const label = namespace ? `${namespace}/${doc.name}` : doc.name;
    const alarmUntil = doc.alarm_until === undefined ? undefined : parseInstant(doc.alarm_until, 'UTC');
    const compiledPolicy = { name: doc.name, namespace, observe: doc.mode === 'observe', ...(alarmUntil === undefined ? {} : { alarmUntil }) };
    const rules = doc.rules.map((rule, i) => {
      try {
        return compileRule(rule, i, compiledPolicy, order++, shared);
      } catch (cause) {
        throw new PosternError('config_invalid', `policy ${label}: rules[${i}].${errorMessage(cause)}`, { cause });
      }
    });
    if (rules.length === 0) throw new PosternError('config_invalid', `policy ${label}: rules: a policy needs at least one rule`);
    const policy: CompiledPolicy = { name: doc.name, namespace, version: record.version, rules, tags: doc.sockets || doc.services ? [] : Object.entries(doc.tags ?? {}) };
    if (doc.sockets) sockets.set(policy, doc.sockets);
    if (doc.services) services.set(policy, doc.services);
    policies.push(policy);
  }
  return new PolicySet(policies, sockets, services);
}
