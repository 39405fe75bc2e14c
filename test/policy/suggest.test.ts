// Observe mode in the evaluator (which denials an observing policy owns, alarms after it leaves
// observe mode) and `policy suggest`'s pure core: path and group generalisation, counts, the
// report, and the round trip (the YAML parses with the document schema and allows what it claims),
// for people on sockets and for services calling services.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { evaluate } from '../../src/policy/evaluate.js';
import { compilePolicies } from '../../src/policy/compile.js';
import { parsePolicyDocument, validatePolicyDocument } from '../../src/policy/document.js';
import { generaliseWho, groupedMethods, isIdSegment, pathGeneraliser } from '../../src/policy/generalise.js';
import { suggestPolicies } from '../../src/policy/suggest.js';
import type { ObservedFlow, SuggestService, SuggestSocket, SuggestTarget } from '../../src/policy/suggest.js';
import type { Action, PolicyDocument } from '../../src/policy/types.js';
import { MONDAY_10Z, anonymous, ctx, setOf } from './helpers.js';

const http = (method: string, path: string) => ({ protocol: 'http' as const, method, path });
const doc = (d: Omit<PolicyDocument, 'name'> & { name?: string }): PolicyDocument => validatePolicyDocument({ name: 'p', ...d });

describe('observe mode', () => {
  const observeDeny = doc({ name: 'design', mode: 'observe', rules: [{ effect: 'allow', what: { http: {} } }, { name: 'no-admin', effect: 'deny', what: { http: { paths: ['/admin/*'] } } }] });

  test('an observing deny rule lets the request through and says what enforcing would do', () => {
    const d = evaluate(ctx({ action: http('GET', '/admin/x') }), setOf(observeDeny));
    assert.equal(d.effect, 'allow');
    assert.equal(d.wouldDeny?.reason, 'rule-denied');
    assert.equal(d.wouldDeny?.rule?.rule, 'no-admin');
    assert.match(d.wouldDeny!.summary, /would be denied by rule design#no-admin/);
    assert.equal(evaluate(ctx({ action: http('GET', '/ok') }), setOf(observeDeny)).wouldDeny, undefined);
  });

  test('the same document in enforce mode denies', () => {
    const d = evaluate(ctx({ action: http('GET', '/admin/x') }), setOf({ ...observeDeny, mode: 'enforce' }));
    assert.deepEqual([d.effect, d.reason, d.wouldDeny], ['deny', 'rule-denied', undefined]);
  });

  test('an enforcing deny that matches too still denies', () => {
    const enforced = doc({ name: 'hard', rules: [{ effect: 'deny', what: { http: { paths: ['/admin/secret'] } } }] });
    const d = evaluate(ctx({ action: http('GET', '/admin/secret') }), setOf(observeDeny, enforced));
    assert.deepEqual([d.effect, d.rule?.policy], ['deny', 'hard']);
  });

  test('a socket covered only by observing policies: the default deny is observed', () => {
    const onlyAlice = doc({ mode: 'observe', rules: [{ effect: 'allow', who: { email: ['alice@corp.example'] }, what: { http: {} } }] });
    const d = evaluate(ctx({ action: http('GET', '/') }), setOf(onlyAlice));
    assert.deepEqual([d.effect, d.reason, d.wouldDeny?.reason], ['allow', 'observed', 'no-rule-allowed']);
    assert.match(d.summary, /allowed in observe mode: would be denied: no rule allows this/);
  });

  test('where an enforcing policy allows some people, everyone else stays refused', () => {
    const onlyAlice = doc({ name: 'alice', rules: [{ effect: 'allow', who: { email: ['alice@corp.example'] }, what: { http: {} } }] });
    const observing = doc({ name: 'design', mode: 'observe', rules: [{ effect: 'deny', what: { http: { paths: ['/x'] } } }] });
    const d = evaluate(ctx({ action: http('GET', '/') }), setOf(onlyAlice, observing));
    assert.deepEqual([d.effect, d.reason], ['deny', 'no-rule-allowed']);
  });

  test('a deny-only enforcing policy does not make the default deny enforced', () => {
    const noRussia = doc({ name: 'geo', rules: [{ effect: 'deny', where: { country: ['RU'] } }] });
    const observing = doc({ name: 'design', mode: 'observe', rules: [{ effect: 'allow', who: { group: ['ops'] }, what: { http: {} } }] });
    assert.equal(evaluate(ctx({ action: http('GET', '/'), country: 'NL' }), setOf(noRussia, observing)).effect, 'allow');
    assert.equal(evaluate(ctx({ action: http('GET', '/'), country: 'RU' }), setOf(noRussia, observing)).effect, 'deny', 'the enforcing deny still applies');
  });

  test('identity is never observed: an anonymous request is refused', () => {
    const observing = doc({ mode: 'observe', rules: [{ effect: 'allow', who: { group: ['ops'] }, what: { http: {} } }] });
    assert.equal(evaluate(ctx({ principal: anonymous }), setOf(observing)).reason, 'user-unauthenticated');
  });

  test('no policy at all is still a denial', () => {
    assert.equal(evaluate(ctx(), setOf()).reason, 'no-policy');
  });

  test('after leaving observe mode, denials the policy owns carry an alarm until alarm_until', () => {
    const until = new Date(MONDAY_10Z.getTime() + 3600_000).toISOString();
    const enforced = doc({ alarm_until: until, rules: [{ effect: 'allow', who: { email: ['alice@corp.example'] }, what: { http: {} } }, { effect: 'deny', what: { http: { paths: ['/admin/*'] } } }] });
    const byDefault = evaluate(ctx({ action: http('GET', '/') }), setOf(enforced));
    assert.deepEqual([byDefault.effect, byDefault.alarm?.policy], ['deny', 'p']);
    const byRule = evaluate(ctx({ action: http('GET', '/admin/1'), principal: { user: { id: 'a', email: 'alice@corp.example', groups: [] } } }), setOf(enforced));
    assert.deepEqual([byRule.effect, byRule.reason, byRule.alarm?.policy], ['deny', 'rule-denied', 'p']);
    const later = evaluate(ctx({ action: http('GET', '/'), at: new Date(MONDAY_10Z.getTime() + 7200_000) }), setOf(enforced));
    assert.deepEqual([later.effect, later.alarm], ['deny', undefined]);
    const allowed = evaluate(ctx({ action: http('GET', '/'), principal: { user: { id: 'a', email: 'alice@corp.example', groups: [] } } }), setOf(enforced));
    assert.deepEqual([allowed.effect, allowed.alarm], ['allow', undefined]);
  });

  test('mode and alarm_until are checked by the schema', () => {
    assert.throws(() => parsePolicyDocument('name: x\nmode: watch\nrules: [{ effect: allow }]\n'), /mode: expected enforce or observe/);
    assert.throws(() => parsePolicyDocument('name: x\nalarm_until: soon\nrules: [{ effect: allow }]\n'), /alarm_until: "soon" is not an ISO 8601/);
  });
});

describe('policy suggest: paths', () => {
  test('ids (numbers, uuids, long hex) become *', () => {
    for (const id of ['42', '0', '3f2504e0-4f89-11d3-9a0c-0305e82c3301', 'deadbeefdeadbeef00']) assert.equal(isIdSegment(id), true, id);
    for (const word of ['orders', 'v2', 'abc', 'beef']) assert.equal(isIdSegment(word), false, word);
    const paths = ['/api/orders/1', '/api/orders/2/items', '/api/users/3f2504e0-4f89-11d3-9a0c-0305e82c3301/profile', '/api/orders'];
    const g = pathGeneraliser(paths, 20);
    assert.deepEqual(paths.map(g), ['/api/orders/*', '/api/orders/*/items', '/api/users/*/profile', '/api/orders']);
  });

  test('a level with more than K distinct children collapses to a prefix and stops there', () => {
    const paths = Array.from({ length: 4000 }, (_, i) => `/wiki/page-${i % 400}/rev/${i}`);
    paths.push('/wiki', '/static/app.js');
    const g = pathGeneraliser(paths, 20);
    assert.deepEqual(new Set(paths.map(g)), new Set(['/wiki/*', '/wiki', '/static/app.js']));
    const few = pathGeneraliser(['/a/x', '/a/y'], 1);
    assert.equal(few('/a/x'), '/a/*');
    assert.equal(pathGeneraliser(['/a/x', '/a/y'], 2)('/a/x'), '/a/x', 'exactly K children stay');
  });

  test('the root and trailing slashes map to themselves', () => {
    const g = pathGeneraliser(['/', '/docs/'], 20);
    assert.deepEqual([g('/'), g('/docs/')], ['/', '/docs/']);
  });

  test('methods: HEAD beside GET, sorted; many methods = any', () => {
    assert.deepEqual(groupedMethods(['POST', 'GET'], 6), ['GET', 'HEAD', 'POST']);
    assert.deepEqual(groupedMethods(['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], 6), []);
  });
});

describe('policy suggest: groups', () => {
  const groupsOf = new Map<string, readonly string[]>([
    ['a@x.io', ['eng']], ['b@x.io', ['eng']], ['c@x.io', ['eng', 'ops']], ['d@x.io', ['ops']], ['e@x.io', []],
  ]);
  const opts = { minGroupMembers: 2, groupQuorum: 5 };

  test('a group replaces its members when every member seen on the socket shares the access', () => {
    const seen = new Set(['a@x.io', 'b@x.io', 'c@x.io', 'e@x.io']);
    assert.deepEqual(generaliseWho(new Set(['a@x.io', 'b@x.io', 'c@x.io', 'e@x.io']), seen, groupsOf, opts), { groups: ['eng'], emails: ['e@x.io'] });
  });

  test('not when a seen member of the group lacks it (and the quorum is not reached)', () => {
    const seen = new Set(['a@x.io', 'b@x.io', 'c@x.io']);
    assert.deepEqual(generaliseWho(new Set(['a@x.io', 'b@x.io']), seen, groupsOf, opts), { groups: [], emails: ['a@x.io', 'b@x.io'] });
  });

  test('a quorum of members is enough even when others were seen without it', () => {
    const big = new Map<string, readonly string[]>(Array.from({ length: 8 }, (_, i) => [`u${i}@x.io`, ['staff']] as const));
    const seen = new Set(big.keys());
    const five = new Set([...big.keys()].slice(0, 5));
    assert.deepEqual(generaliseWho(five, seen, big, opts).groups, ['staff']);
    assert.deepEqual(generaliseWho(new Set([...five].slice(0, 4)), seen, big, opts).groups, []);
  });

  test('one member is never a group', () => {
    assert.deepEqual(generaliseWho(new Set(['d@x.io']), new Set(['d@x.io']), groupsOf, opts), { groups: [], emails: ['d@x.io'] });
  });
});

/** Generated traffic: 40 engineers reading orders by id, 3 ops people writing, one auditor. */
function generatedFlows(): { flows: ObservedFlow[]; groupsOf: Map<string, readonly string[]> } {
  const groupsOf = new Map<string, readonly string[]>();
  const flows: ObservedFlow[] = [];
  for (let i = 0; i < 40; i++) {
    const email = `eng${i}@corp.example`;
    groupsOf.set(email, ['engineering']);
    for (let j = 0; j < 25; j++) flows.push({ socket: 'app', actor: email, action: http('GET', `/api/orders/${i * 100 + j}`), count: 2 });
  }
  for (let i = 0; i < 3; i++) {
    const email = `ops${i}@corp.example`;
    groupsOf.set(email, ['ops']);
    flows.push({ socket: 'app', actor: email, action: http('POST', '/api/orders'), count: 5 });
    flows.push({ socket: 'app', actor: email, action: http('PUT', `/api/orders/${i}`), count: 1 });
    flows.push({ socket: 'box', actor: email, action: { protocol: 'ssh', login: 'deploy' }, count: 3 });
  }
  groupsOf.set('audit@corp.example', ['auditors', 'engineering-adjacent']);
  flows.push({ socket: 'app', actor: 'audit@corp.example', action: http('GET', '/reports/2025/q1'), count: 1 });
  flows.push({ socket: 'db', actor: 'audit@corp.example', action: { protocol: 'tls' }, count: 4 });
  flows.push({ socket: 'app', actor: 'eng0@corp.example', action: http('DELETE', '/api/orders/7'), count: 1, observedDeny: 'corp/design#no-deletes' });
  groupsOf.set('outsider@else.example', []);
  return { flows, groupsOf };
}

const sockets: SuggestSocket[] = [{ name: 'app', tags: { namespace: 'corp' } }, { name: 'box', tags: { namespace: 'corp' } }, { name: 'db', tags: {} }];

describe('policy suggest: whole suggestions', () => {
  const { flows, groupsOf } = generatedFlows();
  const suggestion = suggestPolicies(flows, sockets, groupsOf, { alarmUntil: '2030-01-01T00:00:00Z' });
  const app = suggestion.policies.find((p) => p.ref === 'corp/suggested-app')!;

  test('one policy per socket in its namespace, generalised to groups and prefixes', () => {
    assert.deepEqual(suggestion.policies.map((p) => p.ref), ['corp/suggested-app', 'corp/suggested-box', 'suggested-db']);
    const rules = app.document.rules.map((r) => ({ who: r.who, http: r.what?.http }));
    assert.deepEqual(rules.find((r) => r.who?.group?.includes('engineering')), { who: { group: ['engineering'] }, http: { methods: ['GET', 'HEAD'], paths: ['/api/orders/*'] } });
    // The same people, but each path with its own methods: a rule is methods × paths, so they stay two.
    assert.deepEqual(rules.filter((r) => r.who?.group?.includes('ops')).map((r) => r.http), [{ methods: ['POST'], paths: ['/api/orders'] }, { methods: ['PUT'], paths: ['/api/orders/*'] }]);
    assert.deepEqual(rules.find((r) => r.who?.email), { who: { email: ['audit@corp.example'] }, http: { methods: ['GET', 'HEAD'], paths: ['/reports/*/q1'] } }, 'a number is an id, years too');
    assert.equal(app.document.alarm_until, '2030-01-01T00:00:00Z');
    const box = suggestion.policies.find((p) => p.ref === 'corp/suggested-box')!;
    assert.deepEqual(box.document.rules.map((r) => [r.who, r.what]), [[{ group: ['ops'] }, { ssh: { logins: ['deploy'] } }]]);
  });

  test('each rule counts the flows it covers, in a comment above it', () => {
    const eng = app.document.rules.findIndex((r) => r.who?.group?.includes('engineering'));
    assert.equal(app.ruleFlows[eng], 40 * 25 * 2);
    assert.match(app.yaml, /# covers 2000 observed flows \(1 group\)\n\s*- name: learned-\d+/);
    assert.equal(suggestion.flows, flows.reduce((n, f) => n + f.count, 0));
  });

  test('the report: what enforcing would deny, and why', () => {
    assert.deepEqual(suggestion.uncovered.map((u) => [u.actor, u.action, u.count, u.why]), [
      ['eng0@corp.example', 'DELETE /api/orders/7', 1, 'an observing rule denies it: corp/design#no-deletes'],
    ]);
    assert.equal(suggestion.covered, suggestion.flows - 1);
  });

  test('round trip: the YAML parses with the schema, and applied it allows every flow it claims to cover', () => {
    const parsed = suggestion.policies.map((p) => parsePolicyDocument(p.yaml));
    assert.deepEqual(parsed, suggestion.policies.map((p) => p.document));
    const set = compilePolicies(parsed.map((document) => ({ document, version: 1 })));
    for (const f of flows.filter((x) => !x.observedDeny)) {
      const socket = sockets.find((s) => s.name === f.socket)!;
      const action = f.action.protocol === 'ssh' ? { protocol: 'ssh' as const, login: f.action.login } : f.action;
      const d = evaluate({ socket: { name: socket.name, namespace: socket.tags.namespace ?? '', tags: socket.tags }, principal: { user: { id: f.actor, email: f.actor, groups: groupsOf.get(f.actor) ?? [] } }, clientIp: '10.0.0.1', at: MONDAY_10Z, action }, set);
      assert.equal(d.effect, 'allow', `${f.actor} ${JSON.stringify(f.action)} on ${f.socket}`);
    }
    const stranger = evaluate(ctx({ socket: 'app', namespace: 'corp', tags: { namespace: 'corp' }, principal: { user: { id: 'o', email: 'outsider@else.example', groups: [] } }, action: http('GET', '/api/orders/1') }), set);
    assert.equal(stranger.effect, 'deny');
    const newPath = evaluate(ctx({ socket: 'app', namespace: 'corp', tags: { namespace: 'corp' }, principal: { user: { id: 'e', email: 'eng1@corp.example', groups: ['engineering'] } }, action: http('GET', '/billing') }), set);
    assert.equal(newPath.effect, 'deny');
    assert.equal(parseYaml(app.yaml).sockets[0], 'app');
  });

  test('min flows: rarer rules are left out and reported', () => {
    const s = suggestPolicies(flows, sockets, groupsOf, { minFlows: 3 });
    const missing = s.uncovered.filter((u) => u.why.startsWith('no suggested rule'));
    assert.deepEqual(missing.map((u) => [u.actor, u.action]), [['audit@corp.example', 'GET /reports/2025/q1']]);
  });

  test('flows of nobody signed in and of sockets that are gone are reported, not learned', () => {
    const s = suggestPolicies([{ socket: 'gone', actor: 'joe@corp.example', action: { protocol: 'tls' }, count: 1 }, { socket: 'app', actor: '', action: http('GET', '/'), count: 2 }], sockets, new Map());
    assert.deepEqual(s.policies, []);
    assert.deepEqual(s.uncovered.map((u) => u.why).sort(), ['nobody signed in', 'the socket no longer exists']);
  });

});

const TD = 'corp.test';
const svc = (namespace: string, name: string) => `spiffe://${TD}/ns/${namespace}/svc/${name}`;
const UI = svc('shop', 'ui');
const CANARY = svc('shop', 'ui-canary');
const BATCH = svc('shop', 'batch');
const CRON = svc('ops', 'cron');
const LEGACY = svc('shop', 'legacy');
const ORDERS = svc('shop', 'orders');
const LEDGER = svc('shop', 'ledger');
const CALLER_LABELS: Record<string, Record<string, string>> = {
  [UI]: { app: 'ui', env: 'prod' }, [CANARY]: { app: 'ui', track: 'canary' }, [BATCH]: { app: 'batch' }, [CRON]: { env: 'prod' }, [LEGACY]: { app: ' ' }, [ORDERS]: { app: 'orders' },
};
const services: SuggestService[] = [
  { kind: 'service', spiffeId: ORDERS, name: 'orders', namespace: 'shop', labels: { app: 'orders', env: 'prod' } },
  { kind: 'service', spiffeId: LEDGER, name: 'ledger', namespace: 'shop', labels: { app: 'ledger' } },
];
const call = (caller: string, callee: string, action: ObservedFlow['action'], count: number, observedDeny?: string): ObservedFlow => ({
  kind: 'service', socket: callee, actor: caller, callerLabels: CALLER_LABELS[caller] ?? {}, action, count, ...(observedDeny ? { observedDeny } : {}),
});

/** Mesh traffic: two ui replicas and cron reading orders by id, batch writing, a legacy health check, orders and cron on the ledger's TCP port. */
function serviceFlows(): ObservedFlow[] {
  const flows: ObservedFlow[] = [];
  for (const caller of [UI, CANARY, CRON]) for (let id = 1; id <= 30; id++) flows.push(call(caller, ORDERS, http('GET', `/api/orders/${id}`), caller === CRON ? 1 : 3));
  flows.push(call(BATCH, ORDERS, http('POST', '/api/orders'), 4), call(LEGACY, ORDERS, http('GET', '/health'), 2));
  flows.push(call(ORDERS, LEDGER, { protocol: 'tls' }, 7), call(CRON, LEDGER, { protocol: 'tls' }, 1));
  flows.push(call(BATCH, ORDERS, http('DELETE', '/api/orders/9'), 1, 'shop/design#no-deletes'));
  flows.push(call(UI, svc('shop', 'gone'), { protocol: 'tls' }, 5));
  flows.push(call(`spiffe://${TD}/ns/shop/*`, ORDERS, http('GET', '/api/orders/1'), 1));
  return flows;
}

const serviceCtx = (service: SuggestService, caller: string, labels: Record<string, string>, action: Action) => ({
  socket: { kind: 'service' as const, name: service.name, namespace: service.namespace, tags: service.labels },
  principal: { service: { id: caller, labels } }, clientIp: '10.0.0.1', at: MONDAY_10Z, action,
});

describe('policy suggest: services calling services', () => {
  const flows = serviceFlows();
  const suggestion = suggestPolicies(flows, [...sockets, ...services], new Map());
  const byRef = new Map(suggestion.policies.map((p) => [p.ref, p]));
  const orders = byRef.get('shop/suggested-svc-orders')!;
  const ledger = byRef.get('shop/suggested-svc-ledger')!;

  test('one policy per destination service, in its namespace, attached by `services`', () => {
    assert.deepEqual(suggestion.policies.map((p) => p.ref), ['shop/suggested-svc-ledger', 'shop/suggested-svc-orders']);
    assert.deepEqual([orders.document.name, orders.document.namespace, orders.document.services, orders.document.sockets], ['suggested-svc-orders', 'shop', ['orders'], undefined]);
  });

  test('callers with an app label are named by it, one rule for all of them; the others by SPIFFE id', () => {
    assert.deepEqual(orders.document.rules.map((r) => [r.who, r.what]), [
      [{ service: { app: ['ui'] } }, { http: { methods: ['GET', 'HEAD'], paths: ['/api/orders/*'] } }],
      [{ spiffe: [CRON] }, { http: { methods: ['GET', 'HEAD'], paths: ['/api/orders/*'] } }],
      [{ service: { app: ['batch'] } }, { http: { methods: ['POST'], paths: ['/api/orders'] } }],
      [{ spiffe: [LEGACY] }, { http: { methods: ['GET', 'HEAD'], paths: ['/health'] } }],
    ], 'a blank app label is no label');
    assert.deepEqual(orders.ruleFlows, [2 * 30 * 3, 30, 4, 2]);
    assert.deepEqual(ledger.document.rules.map((r) => [r.who, r.what]), [[{ service: { app: ['orders'] } }, { tls: {} }], [{ spiffe: [CRON] }, { tls: {} }]]);
    assert.match(orders.yaml, /# covers 180 observed flows \(services with app=ui\)\n\s*- name: learned-1/);
    assert.match(ledger.yaml, /# covers 1 observed flow \(1 service\)\n\s*- name: learned-2/);
  });

  test('several apps calling the same way share one rule', () => {
    const s = suggestPolicies([call(UI, LEDGER, { protocol: 'tls' }, 2), call(BATCH, LEDGER, { protocol: 'tls' }, 3)], services, new Map());
    assert.deepEqual(s.policies[0]!.document.rules.map((r) => [r.who, s.policies[0]!.ruleFlows]), [[{ service: { app: ['batch', 'ui'] } }, [5]]]);
  });

  test('the report: observed denials, services no longer declared and wildcard callers are not learned', () => {
    assert.deepEqual(suggestion.uncovered.map((u) => [u.kind, u.socket, u.actor, u.action, u.count, u.why]), [
      ['service', svc('shop', 'gone'), UI, 'tcp connect', 5, 'the service is no longer declared'],
      ['service', ORDERS, BATCH, 'DELETE /api/orders/9', 1, 'an observing rule denies it: shop/design#no-deletes'],
      ['service', ORDERS, `spiffe://${TD}/ns/shop/*`, 'GET /api/orders/1', 1, 'the caller is not one service identity'],
    ]);
    assert.equal(suggestion.covered, suggestion.flows - 7);
    assert.deepEqual(suggestion.policies.flatMap((p) => p.document.rules.flatMap((r) => r.who?.spiffe ?? [])).filter((id) => id.includes('*')), [], 'no caller id with a star in any rule');
  });

  test('round trip: the YAML validates and compiles; the engine allows every learned flow and refuses a new caller, path or socket', () => {
    const parsed = suggestion.policies.map((p) => parsePolicyDocument(p.yaml));
    assert.deepEqual(parsed, suggestion.policies.map((p) => p.document));
    assert.deepEqual(parsed.map((d) => validatePolicyDocument(JSON.parse(JSON.stringify(d)))), parsed);
    const set = compilePolicies(parsed.map((document) => ({ document, version: 1 })));
    for (const f of flows.filter((x) => x.observedDeny === undefined && !x.actor.includes('*'))) {
      const service = services.find((s) => s.spiffeId === f.socket);
      if (!service) continue;
      const d = evaluate(serviceCtx(service, f.actor, f.callerLabels ?? {}, f.action.protocol === 'http' ? f.action : { protocol: 'tls' }), set);
      assert.equal(d.effect, 'allow', `${f.actor} ${JSON.stringify(f.action)} on ${f.socket}`);
    }
    const [ordersService, ledgerService] = services as [SuggestService, SuggestService];
    const decide = (caller: string, labels: Record<string, string>, action: Action, to = ordersService) => evaluate(serviceCtx(to, caller, labels, action), set);
    assert.equal(decide(svc('shop', 'ui-v2'), { app: 'ui' }, http('GET', '/api/orders/77')).effect, 'allow', 'a new replica of ui carries its label');
    assert.deepEqual([decide(svc('shop', 'intruder'), { app: 'intruder' }, http('GET', '/api/orders/1')).effect, decide(svc('shop', 'intruder'), {}, { protocol: 'tls' }, ledgerService).effect], ['deny', 'deny']);
    assert.equal(decide(UI, CALLER_LABELS[UI]!, http('DELETE', '/api/orders/1')).reason, 'no-rule-allowed');
    assert.equal(decide(UI, CALLER_LABELS[UI]!, { protocol: 'tls' }, ledgerService).effect, 'deny', 'ui never opened the ledger');
    const person = evaluate(ctx({ socket: 'orders', namespace: 'shop', tags: { namespace: 'shop' }, principal: { user: { id: 'a', email: 'a@corp.example', groups: [] }, service: { id: UI, labels: { app: 'ui' } } }, action: http('GET', '/api/orders/1') }), set);
    assert.equal(person.reason, 'no-policy', 'a socket of the same name is not governed by a service policy');
  });

  test('a service a socket admitted by its JWT-SVID is learned as a service beside the people', () => {
    const groupsOf = new Map<string, readonly string[]>([['a@corp.example', ['ops']], ['b@corp.example', ['ops']]]);
    const s = suggestPolicies([
      { socket: 'app', actor: 'a@corp.example', action: http('GET', '/status'), count: 2 },
      { socket: 'app', actor: 'b@corp.example', action: http('GET', '/status'), count: 1 },
      { socket: 'app', actor: UI, action: http('GET', '/status'), count: 4 },
    ], sockets, groupsOf);
    const app = s.policies[0]!;
    assert.deepEqual(app.document.rules.map((r) => r.who), [{ spiffe: [UI] }, { group: ['ops'] }]);
    assert.deepEqual([app.document.sockets, app.ruleFlows, s.covered, s.flows], [['app'], [4, 3], 7, 7]);
  });

  test('names: at most 63 characters, distinct when cut to the same prefix or taken by a socket', () => {
    const long = (tail: string) => `${'a'.repeat(55)}-${tail}`;
    const targets: SuggestTarget[] = [
      { name: 'svc-orders', tags: { namespace: 'shop' } },
      ...['one', 'two'].map((t): SuggestService => ({ kind: 'service', spiffeId: svc('shop', long(t)), name: long(t), namespace: 'shop', labels: {} })),
      ...services,
    ];
    const s = suggestPolicies([
      { socket: 'svc-orders', actor: 'a@corp.example', action: { protocol: 'tls' }, count: 1 },
      call(UI, ORDERS, { protocol: 'tls' }, 1), call(UI, svc('shop', long('one')), { protocol: 'tls' }, 1), call(UI, svc('shop', long('two')), { protocol: 'tls' }, 1),
    ], targets, new Map());
    const names = s.policies.map((p) => p.document.name);
    assert.equal(new Set(names).size, 4, names.join(' '));
    assert.ok(names.every((n) => n.length <= 63), names.join(' '));
    assert.equal(names[0], 'suggested-svc-orders', 'the socket came first');
    assert.match(names.find((n) => n !== 'suggested-svc-orders' && n.startsWith('suggested-svc-orders'))!, /^suggested-svc-orders-[0-9a-f]{8}$/);
    assert.deepEqual(s.uncovered, []);
  });
});
