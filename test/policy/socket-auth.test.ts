// socketAuthPolicy: the per-socket allow-list settings as a policy, decided by the engine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validatePolicyDocument } from '../../src/policy/document.js';
import { evaluate } from '../../src/policy/evaluate.js';
import { compileWithSocketPolicies, socketAuthPolicy } from '../../src/policy/socket-auth.js';
import { ruleLabel } from '../../src/policy/rule.js';
import { ann, anonymous, ctx, joe, setOf } from './helpers.js';

const settings = (cloudauth: boolean, allowedEmailDomains: string[], allowedEmailAddresses: string[]) => ({ name: 'web', auth: { cloudauth, allowedEmailDomains, allowedEmailAddresses } });

test('no cloudauth: no policy', () => {
  assert.equal(socketAuthPolicy(settings(false, ['corp.example'], [])), undefined);
});

test('domains and addresses become one allow rule each, attached to the socket', () => {
  const doc = socketAuthPolicy(settings(true, ['Corp.Example'], ['ann@partner.example']))!;
  assert.deepEqual(doc, {
    name: 'socket-web-allow-list',
    sockets: ['web'],
    rules: [{ effect: 'allow', who: { domain: ['corp.example'] } }, { effect: 'allow', who: { email: ['ann@partner.example'] } }],
  });
  assert.deepEqual(validatePolicyDocument(doc), doc);
  const set = setOf(doc);
  assert.equal(evaluate(ctx({ principal: joe }), set).summary, 'allowed by rule socket-web-allow-list#1');
  assert.equal(evaluate(ctx({ principal: ann }), set).summary, 'allowed by rule socket-web-allow-list#2');
  assert.equal(evaluate(ctx({ principal: { user: { id: 'x', email: 'eve@evil.example', groups: [] } } }), set).effect, 'deny');
  assert.equal(evaluate(ctx({ socket: 'other', principal: joe }), set).reason, 'no-policy');
});

test('only the non-empty list makes a rule; both empty: any signed-in user', () => {
  assert.deepEqual(socketAuthPolicy(settings(true, [], ['ann@partner.example']))!.rules, [{ effect: 'allow', who: { email: ['ann@partner.example'] } }]);
  const open = socketAuthPolicy(settings(true, [], []))!;
  assert.deepEqual(open.rules, [{ effect: 'allow' }]);
  assert.equal(evaluate(ctx({ principal: ann }), setOf(open)).effect, 'allow');
  assert.equal(evaluate(ctx({ principal: anonymous }), setOf(open)).reason, 'user-unauthenticated');
});

test('ruleLabel: namespace/policy#rule, an unnamed rule not repeated', () => {
  assert.equal(ruleLabel({ namespace: 'corp', policy: 'web', rule: 'staff-read' }), 'corp/web#staff-read');
  assert.equal(ruleLabel({ namespace: '', policy: 'web', rule: 'web#2' }), 'web#2');
});

test('compileWithSocketPolicies: a tls socket without an allow-list lets any signed-in user in; an http one without cloudauth has no policy', () => {
  const noAuth = { cloudauth: false, allowedEmailDomains: [], allowedEmailAddresses: [] };
  const set = compileWithSocketPolicies([], [
    { name: 'db', type: 'tls', tags: { namespace: 'corp' }, auth: noAuth },
    { name: 'site', type: 'http', tags: {}, auth: noAuth },
  ]);
  const ctx = (socket: string, namespace: string) => ({
    socket: { name: socket, namespace, tags: {} }, principal: { user: { id: 'u1', email: 'a@x.example', groups: [] } }, clientIp: '10.0.0.1', at: new Date(), action: { protocol: 'tls' as const },
  });
  const db = evaluate(ctx('db', 'corp'), set);
  assert.equal(db.effect, 'allow');
  assert.equal(db.rule && ruleLabel(db.rule), 'corp/socket-db-allow-list#1');
  assert.equal(evaluate(ctx('site', ''), set).reason, 'no-policy');
});

test('allow-lists: no subdomain, suffix or look-alike domain passes', () => {
  const set = compileWithSocketPolicies([], [{ name: 'app', type: 'http', tags: {}, auth: { cloudauth: true, allowedEmailDomains: ['corp.example'], allowedEmailAddresses: [] } }]);
  const decide = (email: string) => evaluate({
    socket: { name: 'app', namespace: '', tags: {} }, principal: { user: { id: 'u', email, groups: [] } }, clientIp: '10.0.0.1', at: new Date(), action: { protocol: 'http', method: 'GET', path: '/' },
  }, set).effect;
  for (const email of ['joe@eu.corp.example', 'joe@evilcorp.example', 'joe@corp.example.evil', 'corp.example@evil.example', 'joe@corp.examplе']) assert.equal(decide(email), 'deny', email);
  assert.equal(decide('joe@corp.example'), 'allow');
});

test('with the socket type, the allow-list covers what the socket carries and never grants SSH logins', () => {
  const tls = socketAuthPolicy({ name: 'db', type: 'tls', auth: { cloudauth: true, allowedEmailDomains: ['corp.example'], allowedEmailAddresses: [] } })!;
  assert.deepEqual(tls.rules, [{ effect: 'allow', who: { domain: ['corp.example'] }, what: { tls: {} } }]);
  const set = compileWithSocketPolicies([], [{ name: 'db', type: 'tls', tags: {}, auth: { cloudauth: false, allowedEmailDomains: [], allowedEmailAddresses: [] } }]);
  const ctx = (action: { protocol: 'tls' } | { protocol: 'ssh'; login: string }) => ({
    socket: { name: 'db', namespace: '', tags: {} }, principal: { user: { id: 'u', email: 'a@corp.example', groups: [] } }, clientIp: '10.0.0.1', at: new Date(), action,
  });
  assert.equal(evaluate(ctx({ protocol: 'tls' }), set).effect, 'allow');
  assert.equal(evaluate(ctx({ protocol: 'ssh', login: 'root' }), set).effect, 'deny');
  const web = socketAuthPolicy({ name: 'app', type: 'http', auth: { cloudauth: true, allowedEmailDomains: [], allowedEmailAddresses: [] } })!;
  assert.deepEqual(web.rules, [{ effect: 'allow', what: { http: {} } }]);
});
