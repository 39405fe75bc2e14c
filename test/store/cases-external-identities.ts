// Store suite cases for external identity links: (issuer, subject) → user, unique across users,
// created with the user in one transaction, removed with the user, and no change recorded.

import assert from 'node:assert/strict';
import { isoRe, rejectsWith } from './helpers.js';
import type { StoreCase } from './helpers.js';

const ISSUER = 'https://id.corp.example';

export const externalIdentityCases: Record<string, StoreCase> = {
  'external identities: link, find by (issuer, subject), list per user; no change recorded': async ({ store }) => {
    const victim = await store.users.create({ email: 'victim@corp.example' });
    const base = await store.currentRevision();
    const link = await store.externalIdentities.link({ userId: victim.id, issuer: ISSUER, subject: 'sub-1', provider: 'corp', email: 'Victim@Corp.Example' });
    assert.match(link.id, /^xid_[a-z2-7]{16}$/);
    assert.deepEqual([link.userId, link.issuer, link.subject, link.provider, link.email], [victim.id, ISSUER, 'sub-1', 'corp', 'victim@corp.example']);
    assert.match(link.createdAt, isoRe);
    assert.deepEqual(await store.externalIdentities.find(ISSUER, 'sub-1'), link);
    assert.equal(await store.externalIdentities.find(ISSUER, 'SUB-1'), undefined, 'subjects are compared exactly');
    assert.equal(await store.externalIdentities.find('https://other.example', 'sub-1'), undefined, 'the same subject at another issuer is another person');
    const second = await store.externalIdentities.link({ userId: victim.id, issuer: 'https://other.example', subject: 'sub-1', provider: 'other', email: 'victim@corp.example' });
    assert.deepEqual((await store.externalIdentities.listForUser(victim.id)).map((l) => l.id).sort(), [link.id, second.id].sort());
    assert.equal(await store.currentRevision(), base, 'links never reach a snapshot');
  },

  'external identities: a pair links to one user only; unknown users and bad input are refused': async ({ store }) => {
    const a = await store.users.create({ email: 'a@corp.example' });
    const b = await store.users.create({ email: 'b@corp.example' });
    await store.externalIdentities.link({ userId: a.id, issuer: ISSUER, subject: 's', provider: 'corp', email: 'a@corp.example' });
    await rejectsWith(store.externalIdentities.link({ userId: b.id, issuer: ISSUER, subject: 's', provider: 'corp', email: 'b@corp.example' }), 'conflict', /linked to a user already/);
    await rejectsWith(store.externalIdentities.link({ userId: 'usr_missing', issuer: ISSUER, subject: 't', provider: 'corp', email: 'x@corp.example' }), 'not_found');
    await rejectsWith(store.externalIdentities.link({ userId: a.id, issuer: '', subject: 'u', provider: 'corp', email: 'a@corp.example' }), 'bad_request');
    await rejectsWith(store.externalIdentities.link({ userId: a.id, issuer: ISSUER, subject: 'u', provider: 'corp', email: 'not an email' }), 'bad_request');
    assert.equal((await store.externalIdentities.find(ISSUER, 's'))?.userId, a.id);
    assert.equal((await store.externalIdentities.listForUser(b.id)).length, 0);
  },

  'external identities: a user created with its link gets both or neither; delete removes the links': async ({ store }) => {
    const alice = await store.users.create({ email: 'alice@corp.example', externalIdentity: { issuer: ISSUER, subject: 'alice-sub', provider: 'corp', email: 'alice@corp.example' } });
    assert.equal((await store.externalIdentities.find(ISSUER, 'alice-sub'))?.userId, alice.id);
    // The pair is taken: the whole create fails and leaves no user behind.
    await rejectsWith(store.users.create({ email: 'mallory@corp.example', externalIdentity: { issuer: ISSUER, subject: 'alice-sub', provider: 'corp', email: 'mallory@corp.example' } }), 'conflict');
    assert.equal(await store.users.findByEmail('mallory@corp.example'), undefined);
    await store.users.delete(alice.id);
    assert.equal(await store.externalIdentities.find(ISSUER, 'alice-sub'), undefined, 'a deleted user leaves no link a newcomer would inherit');
    const again = await store.users.create({ email: 'alice@corp.example', externalIdentity: { issuer: ISSUER, subject: 'alice-sub', provider: 'corp', email: 'alice@corp.example' } });
    assert.equal((await store.externalIdentities.find(ISSUER, 'alice-sub'))?.userId, again.id);
  },
};
