// Provider claims → Postern identity (email rules, groups by path and mapping, hostile claim
// sets) and the socket's email allow-list with its human reasons.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPosternError } from '../../src/errors.js';
import { claimAt, mapClaims } from '../../src/identity/claims.js';

function rejection(claims: Record<string, unknown>, mapping = { requireVerifiedEmail: true }): string {
  try {
    mapClaims(claims, mapping);
  } catch (err) {
    assert.ok(isPosternError(err, 'identity_invalid'));
    return err.message;
  }
  return '';
}

test('claims: email lower-cased and required; name, subject and issuer when present', () => {
  const identity = mapClaims({ iss: 'https://id.corp.example', sub: 'abc123', email: ' Joe@Corp.Example ', name: 'Joe Bloggs' });
  assert.deepEqual(identity, { email: 'joe@corp.example', name: 'Joe Bloggs', subject: 'abc123', issuer: 'https://id.corp.example', emailVerified: false, groups: [] });
  assert.deepEqual(mapClaims({ email: 'a@b.c' }), { email: 'a@b.c', name: null, subject: null, issuer: null, emailVerified: false, groups: [] });
  assert.match(rejection({ sub: 'x' }), /sent no email address \(claim "email"\)/);
  assert.match(rejection({ email: 42 }), /no email address/);
  assert.match(rejection({ email: 'not-an-email' }), /invalid email address/);
  assert.match(rejection({ email: 'a@b@c' }), /invalid email address/);
  assert.match(rejection({ email: 'joe@corp.example\r\nX-Auth-Email: ceo@corp.example' }), /invalid email address/);
  assert.match(rejection({ email: `${'a'.repeat(250)}@b.cd` }), /invalid email address/);
  assert.equal(mapClaims({ mail: 'x@y.z' }, { emailClaim: 'mail' }).email, 'x@y.z');
  assert.equal(mapClaims({ email: 'x@y.z', name: 'evil\r\nname' }).name, null);
});

test('claims: OIDC refuses email_verified false (boolean or string), accepts true or absent', () => {
  assert.match(rejection({ email: 'joe@corp.example', email_verified: false }), /has not verified the email address joe@corp.example/);
  assert.match(rejection({ email: 'joe@corp.example', email_verified: 'false' }), /not verified/);
  assert.equal(rejection({ email: 'joe@corp.example', email_verified: true }), '');
  assert.equal(rejection({ email: 'joe@corp.example' }), '');
  assert.equal(rejection({ email: 'joe@corp.example', email_verified: false }, { requireVerifiedEmail: false }), '');
});

test('claims: only a literal email_verified true vouches for the address', () => {
  const verified = (claims: Record<string, unknown>, mapping = {}) => mapClaims({ email: 'joe@corp.example', ...claims }, mapping).emailVerified;
  assert.equal(verified({ email_verified: true }), true);
  for (const value of [undefined, 'true', 'TRUE', 1, [true], { value: true }, null]) {
    assert.equal(verified({ email_verified: value }), false, `email_verified ${JSON.stringify(value)}`);
  }
  assert.equal(verified({ email_verified: true }, { emailVerifiedClaim: null }), false, 'SAML never vouches by claim');
  assert.equal(verified({ custom_verified: true }, { emailVerifiedClaim: 'custom_verified' }), true);
});

test('claims: SAML-style single-valued lists and URI attribute names', () => {
  const uri = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
  const identity = mapClaims(
    { [uri]: ['Ann@Corp.Example'], 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups': ['g1', 'g2'] },
    { emailClaim: uri, groupsClaim: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups' },
  );
  assert.equal(identity.email, 'ann@corp.example');
  assert.deepEqual(identity.groups, ['g1', 'g2']);
  assert.match(rejection({ email: ['a@b.c', 'd@e.f'] }), /no email address/, 'two addresses are ambiguous');
});

test('claims: groups from a flat or nested path, cleaned and de-duplicated', () => {
  const claims = {
    email: 'joe@corp.example',
    groups: ['ops', ' ops ', 'support', '', 7, null, { x: 1 }, 'bad\nname', 'x'.repeat(300)],
    roles: 'admin',
    realm_access: { roles: ['realm-admin', 'offline_access'] },
    'https://corp.example/groups': ['namespaced'],
  };
  assert.deepEqual(mapClaims(claims, { groupsClaim: 'groups' }).groups, ['ops', 'support']);
  assert.deepEqual(mapClaims(claims, { groupsClaim: 'roles' }).groups, ['admin']);
  assert.deepEqual(mapClaims(claims, { groupsClaim: 'realm_access.roles' }).groups, ['realm-admin', 'offline_access']);
  assert.deepEqual(mapClaims(claims, { groupsClaim: 'https://corp.example/groups' }).groups, ['namespaced']);
  assert.deepEqual(mapClaims(claims, { groupsClaim: 'missing.path' }).groups, []);
  assert.deepEqual(mapClaims(claims).groups, [], 'no groups claim configured, no groups');
  const many = { email: 'a@b.c', groups: Array.from({ length: 5_000 }, (_, i) => `g${i}`) };
  assert.equal(mapClaims(many, { groupsClaim: 'groups' }).groups.length, 500);
});

test('claims: the group mapping table renames, fans out, and drops unmapped groups unless asked', () => {
  const claims = { email: 'a@b.c', groups: ['Grafana Admins', 'eng', 'everyone'] };
  const groupMap = { 'Grafana Admins': 'admin', eng: ['developers', 'ssh-users'] };
  assert.deepEqual(mapClaims(claims, { groupsClaim: 'groups', groupMap }).groups, ['admin', 'developers', 'ssh-users']);
  assert.deepEqual(mapClaims(claims, { groupsClaim: 'groups', groupMap, keepUnmappedGroups: true }).groups, [
    'admin',
    'developers',
    'ssh-users',
    'everyone',
  ]);
});

test('claims: paths never walk the prototype chain', () => {
  const claims = JSON.parse('{"email":"a@b.c","groups":["g"],"__proto__":{"polluted":["x"]}}') as Record<string, unknown>;
  assert.equal(claimAt(claims, 'constructor'), undefined);
  assert.equal(claimAt(claims, 'toString'), undefined);
  assert.equal(claimAt(claims, 'groups.length'), undefined, 'arrays are leaves');
  assert.equal(claimAt(claims, 'email.length'), undefined);
  assert.deepEqual(claimAt(claims, '__proto__.polluted'), ['x'], 'an own __proto__ key is plain data');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  const groupMap = JSON.parse('{"__proto__":"admin"}') as Record<string, string>;
  assert.deepEqual(mapClaims({ email: 'a@b.c', groups: ['toString', 'constructor'] }, { groupsClaim: 'groups', groupMap }).groups, []);
  assert.deepEqual(mapClaims({ email: 'a@b.c', groups: ['__proto__'] }, { groupsClaim: 'groups', groupMap }).groups, ['admin']);
});

