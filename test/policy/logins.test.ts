// allowedSshLogins: the logins an SSH certificate may carry for this principal, here and now.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allowedSshLogins } from '../../src/policy/logins.js';
import { ann, anonymous, ctx, setOf } from './helpers.js';

const set = setOf(
  { name: 'box-ssh', sockets: ['box'], rules: [
    { effect: 'allow', who: { group: ['support'] }, what: { ssh: { logins: ['support', 'readonly'], sftp: false } } },
    { effect: 'allow', who: { group: ['staff'] }, what: { ssh: { logins: ['deploy', 'readonly'] } } },
    { effect: 'allow', who: { group: ['admins'] }, what: { ssh: { logins: ['root'] } } },
    { effect: 'allow', what: { ssh: {} } }, // grants the connection, puts no login in a certificate
    { effect: 'allow', what: { http: {} } },
    { effect: 'allow', when: { weekdays: ['sat'] }, what: { ssh: { logins: ['weekend'] } } },
  ] },
);

test('union of the logins of matching allow rules, sorted; rules without logins add nothing', () => {
  assert.deepEqual(allowedSshLogins(ctx({ socket: 'box' }), set), ['deploy', 'readonly', 'support']);
  assert.deepEqual(allowedSshLogins(ctx({ socket: 'box', principal: ann }), set), []);
  assert.deepEqual(allowedSshLogins(ctx({ socket: 'box', at: '2025-03-22T10:00:00Z' }), set), ['deploy', 'readonly', 'support', 'weekend']);
  assert.deepEqual(allowedSshLogins(ctx({ socket: 'box', principal: anonymous }), set), []);
  assert.deepEqual(allowedSshLogins(ctx({ socket: 'elsewhere' }), set), []);
});

test('matching deny rules remove their logins; one without logins removes all', () => {
  const noDeployAbroad = setOf(
    { name: 'box-ssh', sockets: ['box'], rules: [{ effect: 'allow', what: { ssh: { logins: ['deploy', 'support'] } } }] },
    { name: 'guard', rules: [
      { effect: 'deny', where: { country_not: ['NL'] }, what: { ssh: { logins: ['deploy'] } } },
      { effect: 'deny', where: { country: ['KP'] }, what: { ssh: {} } },
      { effect: 'deny', where: { country: ['RU'] } },
      { effect: 'deny', what: { http: {} } }, // does not concern ssh
    ] },
  );
  assert.deepEqual(allowedSshLogins(ctx({ socket: 'box', country: 'NL' }), noDeployAbroad), ['deploy', 'support']);
  assert.deepEqual(allowedSshLogins(ctx({ socket: 'box', country: 'US' }), noDeployAbroad), ['support']);
  assert.deepEqual(allowedSshLogins(ctx({ socket: 'box', country: 'KP' }), noDeployAbroad), []);
  assert.deepEqual(allowedSshLogins(ctx({ socket: 'box', country: 'RU' }), noDeployAbroad), []);
});

test('channel flags and exec globs do not change the logins a certificate carries', () => {
  const flagged = setOf({ name: 'box-ssh', sockets: ['box'], rules: [
    { effect: 'allow', what: { ssh: { logins: ['ops'], exec: ['uptime'], shell: false, scp: false, port_forwarding: { remote: false }, agent_forwarding: false, x11: false } } },
    { effect: 'allow', what: { ssh: { logins: ['deploy'], exec: false, port_forwarding: false } } },
  ] });
  assert.deepEqual(allowedSshLogins(ctx({ socket: 'box' }), flagged), ['deploy', 'ops']);
});
