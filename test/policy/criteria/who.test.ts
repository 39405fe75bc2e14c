// who: email, domain, group, service, and authentication even without a who block.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileWho, whoCriterion } from '../../../src/policy/criteria/who.js';
import { ann, anonymous, billing, facts, joe } from '../helpers.js';

test('who: no block still needs a signed-in user or a service', () => {
  const c = whoCriterion.compile({ effect: 'allow' })!;
  assert.equal(c.test(facts({ principal: joe })), 'matched');
  assert.equal(c.test(facts({ principal: billing })), 'matched');
  assert.equal(c.test(facts({ principal: anonymous })), 'who-unauthenticated');
  assert.match(c.detail(facts({ principal: anonymous }), 'who-unauthenticated'), /not signed in/);
});

test('who: a block with an anonymous principal is who-unauthenticated, not who-email', () => {
  assert.equal(compileWho({ email: ['joe@corp.example'] }).test(facts({ principal: anonymous })), 'who-unauthenticated');
});

test('who.email: exact, case-insensitive on the request side', () => {
  const c = compileWho({ email: ['joe@corp.example'] });
  assert.equal(c.test(facts({ principal: joe })), 'matched');
  assert.equal(c.test(facts({ principal: { user: { id: 'x', email: 'JOE@Corp.Example', groups: [] } } })), 'matched');
  assert.equal(c.test(facts({ principal: ann })), 'who-email');
  assert.equal(c.test(facts({ principal: billing })), 'who-email');
  assert.equal(c.detail(facts({ principal: ann }), 'who-email'), 'email ann@partner.example is not one of joe@corp.example');
  assert.match(c.detail(facts({ principal: billing }), 'who-email'), /no signed-in user \(only service spiffe:/);
});

test('who.domain: the part after @, exact (no subdomains)', () => {
  const c = compileWho({ domain: ['corp.example'] });
  assert.equal(c.test(facts({ principal: joe })), 'matched');
  assert.equal(c.test(facts({ principal: ann })), 'who-domain');
  assert.equal(c.test(facts({ principal: { user: { id: 'x', email: 'eve@evil.corp.example', groups: [] } } })), 'who-domain');
  assert.equal(c.test(facts({ principal: { user: { id: 'x', email: 'eve@corp.example.evil', groups: [] } } })), 'who-domain');
});

test('who.group: any one of the groups', () => {
  const c = compileWho({ group: ['admins', 'support'] });
  assert.equal(c.test(facts({ principal: joe })), 'matched');
  assert.equal(c.test(facts({ principal: ann })), 'who-group');
  assert.match(c.detail(facts({ principal: ann }), 'who-group'), /in no group/);
});

test('who.service as a list (= who.spiffe): exact identities and trailing /* prefixes', () => {
  const c = compileWho({ service: ['spiffe://corp.example/ns/prod/*', 'spiffe://corp.example/ci'] });
  assert.equal(c.test(facts({ principal: billing })), 'matched');
  assert.equal(c.test(facts({ principal: { service: { id: 'spiffe://corp.example/ci' } } })), 'matched');
  assert.equal(c.test(facts({ principal: { service: { id: 'spiffe://corp.example/ci/x' } } })), 'who-spiffe');
  assert.equal(c.test(facts({ principal: { service: { id: 'spiffe://corp.example/ns/prod' } } })), 'who-spiffe');
  assert.equal(c.test(facts({ principal: { service: { id: 'spiffe://corp.example/ns/production/x' } } })), 'who-spiffe');
  assert.equal(c.test(facts({ principal: joe })), 'who-spiffe');
});

test('who: every list must match (AND), in the order email, domain, group, service', () => {
  const c = compileWho({ domain: ['corp.example'], group: ['admins'] });
  assert.equal(c.test(facts({ principal: joe })), 'who-group');
  assert.equal(c.test(facts({ principal: ann })), 'who-domain');
  const relayed = compileWho({ email: ['joe@corp.example'], service: ['spiffe://corp.example/ns/prod/billing'] });
  assert.equal(relayed.test(facts({ principal: joe })), 'who-spiffe');
  assert.equal(relayed.test(facts({ principal: { ...joe, ...billing } })), 'matched');
});

const payroll = (labels: Record<string, string> | undefined) => ({ service: { id: 'spiffe://corp.example/ns/fin/svc/payroll', ...(labels ? { labels } : {}) } });

test('who.service as labels: every label present with one of its values', () => {
  const c = compileWho({ service: { app: 'payroll', env: ['prod', 'staging'] } });
  assert.equal(c.test(facts({ principal: payroll({ app: 'payroll', env: 'prod', team: 'fin' }) })), 'matched');
  assert.equal(c.test(facts({ principal: payroll({ app: 'payroll', env: 'staging' }) })), 'matched');
  assert.equal(c.test(facts({ principal: payroll({ app: 'payroll', env: 'dev' }) })), 'who-service');
  assert.equal(c.test(facts({ principal: payroll({ app: 'payroll' }) })), 'who-service', 'a missing label does not match');
  assert.equal(c.test(facts({ principal: payroll(undefined) })), 'who-service', 'a service without labels does not match');
  assert.equal(c.test(facts({ principal: joe })), 'who-service', 'a person is not a service');
  assert.match(c.detail(facts({ principal: payroll({ app: 'payroll', env: 'dev' }) }), 'who-service'), /labels app=payroll, env=dev\) does not have app=payroll, env=prod\|staging/);
  assert.match(c.detail(facts({ principal: joe }), 'who-service'), /no service identity/);
});

test('who.spiffe and who.service labels together: both must hold', () => {
  const c = compileWho({ spiffe: ['spiffe://corp.example/ns/fin/*'], service: { env: 'prod' } });
  assert.equal(c.test(facts({ principal: payroll({ env: 'prod' }) })), 'matched');
  assert.equal(c.test(facts({ principal: payroll({ env: 'dev' }) })), 'who-service');
  assert.equal(c.test(facts({ principal: { service: { id: 'spiffe://corp.example/ns/hr/svc/x', labels: { env: 'prod' } } } })), 'who-spiffe');
});
