// explain: the same decision as evaluate, plus every applicable rule with its first failing condition.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluate, explain } from '../../src/policy/evaluate.js';
import { ann, anonymous, ctx, http, setOf } from './helpers.js';

const set = setOf(
  { name: 'root-guard', rules: [{ effect: 'deny', name: 'no-sanctioned', where: { country: ['KP'] } }] },
  {
    name: 'web-access',
    namespace: 'corp',
    sockets: ['web'],
    rules: [
      // fails on who and on where: who is reported
      { effect: 'allow', who: { group: ['admins'] }, where: { ip: ['192.0.2.0/24'] } },
      // fails on when and on what: when is reported
      { effect: 'allow', when: { weekdays: ['sat'] }, what: { ssh: {} } },
      // fails on what only
      { effect: 'allow', what: { http: { methods: ['GET'], paths: ['/public/*'] } } },
      { effect: 'allow', name: 'staff-reads', who: { group: ['staff'] }, what: { http: { methods: ['GET'] } } },
    ],
  },
);

test('explain: every applicable rule in order, parents first, with the first failing condition', () => {
  const c = ctx({ namespace: 'corp', country: 'NL', action: http('GET', '/private') });
  const e = explain(c, set);
  const { rules, ...decision } = e;
  assert.deepEqual(decision, evaluate(c, set));
  assert.equal(e.summary, 'allowed by rule corp/web-access#staff-reads');
  assert.deepEqual(rules.map((r) => [r.policy, r.rule, r.effect, r.outcome]), [
    ['root-guard', 'no-sanctioned', 'deny', 'where-country'],
    ['web-access', 'web-access#1', 'allow', 'who-group'],
    ['web-access', 'web-access#2', 'allow', 'when-weekday'],
    ['web-access', 'web-access#3', 'allow', 'what-http-path'],
    ['web-access', 'staff-reads', 'allow', 'matched'],
  ]);
  assert.equal(rules[0]!.detail, 'country NL is not one of KP');
  assert.equal(rules[1]!.detail, 'groups support, staff include none of admins');
  assert.equal(rules[2]!.detail, 'weekday mon is not one of sat (UTC)');
  assert.equal(rules[3]!.detail, 'path /private matches none of /public/*');
  assert.equal(rules[4]!.detail, 'signed in as joe@corp.example; GET /private');
});

test('explain: a denied request shows why each allow rule failed', () => {
  const e = explain(ctx({ namespace: 'corp', principal: ann, country: 'NL', action: http('POST', '/x') }), set);
  assert.equal(e.reason, 'no-rule-allowed');
  assert.equal(e.summary, 'denied: no rule allows this (5 rules checked)');
  assert.deepEqual(e.rules.map((r) => r.outcome), ['where-country', 'who-group', 'when-weekday', 'what-http-method', 'who-group']);
  assert.equal(e.rules[1]!.detail, 'ann@partner.example is in no group; the rule needs one of admins');
});

test('explain: unknown country and anonymous principals', () => {
  // fails closed: the deny rule naming countries applies to an unknown country
  const unknown = explain(ctx({ namespace: 'corp', action: http('GET', '/x') }), set);
  assert.equal(unknown.rules[0]!.outcome, 'matched');
  assert.equal(unknown.summary, 'denied by rule root-guard#no-sanctioned');
  const guarded = setOf({ name: 'nl-only', rules: [{ effect: 'allow', where: { country: ['NL'] } }] });
  const e = explain(ctx({ action: http('GET', '/x') }), guarded);
  assert.equal(e.rules[0]!.outcome, 'where-country-unknown');
  assert.equal(e.rules[0]!.detail, 'the country of 10.1.2.3 is unknown and the rule names countries');
  assert.equal(e.effect, 'deny');
  const anon = explain(ctx({ namespace: 'corp', principal: anonymous, country: 'KP' }), set);
  assert.deepEqual(anon.rules.map((r) => r.outcome), Array(5).fill('who-unauthenticated'));
  assert.equal(anon.reason, 'user-unauthenticated');
});

test('explain: no applicable policy gives no rules', () => {
  const e = explain(ctx({ socket: 'other', namespace: 'elsewhere' }), setOf({ name: 'x', sockets: ['web'], rules: [{ effect: 'allow' }] }));
  assert.equal(e.reason, 'no-policy');
  assert.deepEqual(e.rules, []);
});
