// socketAuthPolicy: the per-socket allow-list settings as a policy, decided by the engine.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validatePolicyDocument } from '../../src/policy/document.js';
import { evaluate } from '../../src/policy/evaluate.js';
import { socketAuthPolicy } from '../../src/policy/socket-auth.js';
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
