// Observe mode in the evaluator (which denials an observing policy owns, alarms after it leaves
// observe mode) and `policy suggest`'s pure core: path and group generalisation, counts, the
// report, and the round trip (the YAML parses with the document schema and allows what it claims).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { evaluate } from '../../src/policy/evaluate.js';
import { compilePolicies } from '../../src/policy/compile.js';
import { parsePolicyDocument, validatePolicyDocument } from '../../src/policy/document.js';
import { generaliseWho, groupedMethods, isIdSegment, pathGeneraliser, suggestPolicies } from '../../src/policy/suggest.js';
import type { ObservedFlow, SuggestSocket } from '../../src/policy/suggest.js';
import type { PolicyDocument } from '../../src/policy/types.js';
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
