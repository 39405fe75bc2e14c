// The account-link decision: link first, an existing user by email only when the provider
// vouches for it, new users within the allowed domains, and the settings read from a config.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accountLinkSettings, decideAccountLink, emailDomainsSchema } from '../../src/identity/account-link.js';
import type { AccountLinkInput } from '../../src/identity/account-link.js';

const victim = { id: 'usr_victim', email: 'victim@corp.example' };
const open = { trustedEmailDomains: [], allowedEmailDomains: undefined };

function decide(extra: Partial<AccountLinkInput>): ReturnType<typeof decideAccountLink> {
  return decideAccountLink({
    provider: 'Corp SSO', email: 'victim@corp.example', emailVerified: false, issuer: 'https://id.corp.example', subject: 'sub-1',
    linkedUser: undefined, emailUser: undefined, settings: open, ...extra,
  });
}

test('account link: a linked person is that user, whatever the email claim says now', () => {
  assert.deepEqual(decide({ linkedUser: victim, email: 'renamed@elsewhere.example' }), { action: 'sign-in', userId: 'usr_victim' });
  assert.deepEqual(decide({ linkedUser: victim, emailUser: { id: 'usr_other', email: 'victim@corp.example' } }), { action: 'sign-in', userId: 'usr_victim' });
});

test('account link: an existing user by email only when the provider vouches for the address', () => {
  const refused = decide({ emailUser: victim });
  assert.equal(refused.action, 'refuse');
  assert.equal(refused.action === 'refuse' && refused.reason, 'email-not-vouched');
  assert.match(refused.action === 'refuse' ? refused.message : '', /Corp SSO does not vouch for victim@corp\.example/);
  assert.deepEqual(decide({ emailUser: victim, emailVerified: true }), { action: 'link', userId: 'usr_victim' });
  const trusted = { trustedEmailDomains: ['corp.example'], allowedEmailDomains: undefined };
  assert.deepEqual(decide({ emailUser: victim, settings: trusted }), { action: 'link', userId: 'usr_victim' });
  // Trust is for exact domains: neither a subdomain nor a look-alike borrows it.
  for (const email of ['victim@sub.corp.example', 'victim@corp.example.evil', 'victim@xcorp.example']) {
    assert.equal(decide({ email, emailUser: { id: 'usr_x', email }, settings: trusted }).action, 'refuse', email);
  }
});

test('account link: a new address makes a new user, vouched or not, within the allowed domains', () => {
  assert.deepEqual(decide({}), { action: 'create' });
  assert.deepEqual(decide({ emailVerified: true }), { action: 'create' });
  const narrow = { trustedEmailDomains: [], allowedEmailDomains: ['corp.example'] };
  assert.deepEqual(decide({ settings: narrow }), { action: 'create' });
  const outside = decide({ email: 'joe@other.example', emailVerified: true, settings: narrow });
  assert.equal(outside.action === 'refuse' && outside.reason, 'domain-not-allowed');
  assert.match(outside.action === 'refuse' ? outside.message : '', /may not sign in joe@other\.example: its email domain is not one of corp\.example/);
  // The allowed domains bind linking and returning people too (by the user's stored email).
  assert.equal(decide({ email: 'joe@other.example', emailVerified: true, emailUser: { id: 'usr_joe', email: 'joe@other.example' }, settings: narrow }).action, 'refuse');
  assert.equal(decide({ linkedUser: { id: 'usr_joe', email: 'joe@other.example' }, settings: narrow }).action, 'refuse');
  assert.equal(decide({ settings: { trustedEmailDomains: [], allowedEmailDomains: [] } }).action, 'refuse', 'an empty list allows nobody');
});

test('account link: no stable subject or issuer, no sign-in (nothing to link by)', () => {
  for (const missing of [{ subject: null }, { issuer: null }]) {
    const decision = decide({ ...missing, emailVerified: true, emailUser: victim });
    assert.equal(decision.action === 'refuse' && decision.reason, 'no-subject');
  }
});

test('account link settings: read from a provider config, lower-cased; junk counts as unset', () => {
  assert.deepEqual(accountLinkSettings({ trusted_email_domains: ['Corp.Example'], allowed_email_domains: ['corp.example', 'b.example'] }),
    { trustedEmailDomains: ['corp.example'], allowedEmailDomains: ['corp.example', 'b.example'] });
  assert.deepEqual(accountLinkSettings({}), { trustedEmailDomains: [], allowedEmailDomains: undefined });
  assert.deepEqual(accountLinkSettings({ trusted_email_domains: 'corp.example', allowed_email_domains: [1, 'a.example'] }), { trustedEmailDomains: [], allowedEmailDomains: ['a.example'] });
  assert.deepEqual(emailDomainsSchema.parse([' Corp.Example ']), ['corp.example']);
  for (const bad of ['*.corp.example', 'corp', '@corp.example', 'corp.example/x', '']) {
    assert.equal(emailDomainsSchema.safeParse([bad]).success, false, bad);
  }
});
