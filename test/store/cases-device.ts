// Store suite cases for RFC 8628 device authorizations: create and find, one decision,
// exactly one redeemer (also across two stores on one database), expiry, polling, no changes.

import assert from 'node:assert/strict';
import type { Store } from '../../src/store/index.js';
import { inFuture, isoRe, rejectsWith } from './helpers.js';
import type { StoreCase } from './helpers.js';

let serial = 0;
function input(extra: { userCode?: string; expiresAt?: string } = {}) {
  serial += 1;
  return {
    deviceCodeHash: `dch-${serial}-${Math.random().toString(36).slice(2)}`,
    userCode: extra.userCode ?? `CODE-${String(serial).padStart(4, '0')}`,
    clientName: 'postern-cli on laptop',
    clientIp: '192.0.2.9',
    expiresAt: extra.expiresAt ?? inFuture(),
  };
}

const now = () => new Date().toISOString();
const past = (ms = 1000) => new Date(Date.now() - ms).toISOString();

async function peerOf(store: Store, openPeer: (() => Promise<Store>) | undefined): Promise<Store> {
  return openPeer === undefined ? store : openPeer();
}

export const deviceCases: Record<string, StoreCase> = {
  'device authorizations: create, find by user code and device code hash; record no change': async ({ store }) => {
    const before = await store.currentRevision();
    const made = input({ userCode: 'BDWP-HQPK' });
    const created = await store.deviceAuthorizations.create(made);
    assert.match(created.id, /^dev_[a-z2-7]{16}$/);
    assert.equal(created.status, 'pending');
    assert.equal(created.userId, null);
    assert.equal(created.userCode, 'BDWP-HQPK');
    assert.equal(created.deviceCodeHash, made.deviceCodeHash);
    assert.equal(created.clientName, 'postern-cli on laptop');
    assert.equal(created.clientIp, '192.0.2.9');
    assert.match(created.createdAt, isoRe);
    assert.equal(created.expiresAt, new Date(made.expiresAt).toISOString());
    assert.equal(created.lastPolledAt, null);
    assert.equal(created.codeChallenge, null, 'device codes carry no PKCE challenge');
    assert.deepEqual(await store.deviceAuthorizations.findByUserCode('BDWP-HQPK'), created);
    assert.deepEqual(await store.deviceAuthorizations.findByDeviceCodeHash(made.deviceCodeHash), created);
    assert.equal(await store.deviceAuthorizations.findByUserCode('NOPE-NOPE'), undefined);
    assert.equal(await store.deviceAuthorizations.findByDeviceCodeHash('nope'), undefined);
    assert.equal(await store.currentRevision(), before, 'device authorizations never reach the change log');
  },

  'device authorizations: a pending user code or a device code hash is a conflict; bad input is bad_request': async ({ store }) => {
    const first = input({ userCode: 'SAME-CODE' });
    await store.deviceAuthorizations.create(first);
    await rejectsWith(store.deviceAuthorizations.create(input({ userCode: 'SAME-CODE' })), 'conflict');
    await rejectsWith(store.deviceAuthorizations.create({ ...input(), deviceCodeHash: first.deviceCodeHash }), 'conflict');
    await rejectsWith(store.deviceAuthorizations.create({ ...input(), deviceCodeHash: '' }), 'bad_request');
    await rejectsWith(store.deviceAuthorizations.create({ ...input(), expiresAt: 'later' }), 'bad_request');
    await rejectsWith(store.deviceAuthorizations.create({ ...input(), clientName: 'x'.repeat(1000) }), 'bad_request');
    await rejectsWith(store.deviceAuthorizations.create({ ...input(), codeChallenge: '' }), 'bad_request');
    const pkce = await store.deviceAuthorizations.create({ ...input(), codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM' });
    assert.equal((await store.deviceAuthorizations.findByDeviceCodeHash(pkce.deviceCodeHash))?.codeChallenge, 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
    // Once the first holder is decided, the code may be issued again; the newest one is found.
    const held = await store.deviceAuthorizations.findByUserCode('SAME-CODE');
    await store.deviceAuthorizations.decide(held!.id, { status: 'denied' }, now());
    const again = await store.deviceAuthorizations.create(input({ userCode: 'SAME-CODE' }));
    assert.equal((await store.deviceAuthorizations.findByUserCode('SAME-CODE'))?.id, again.id);
  },

  'device authorizations: approve, then redeem once; a second decision or redemption is a conflict': async ({ store }) => {
    const user = await store.users.create({ email: 'dev@example.com' });
    const auth = await store.deviceAuthorizations.create(input());
    await rejectsWith(store.deviceAuthorizations.redeem(auth.id, now()), 'conflict', /pending, not approved/);
    const approved = await store.deviceAuthorizations.decide(auth.id, { status: 'approved', userId: user.id }, now());
    assert.equal(approved.status, 'approved');
    assert.equal(approved.userId, user.id);
    await rejectsWith(store.deviceAuthorizations.decide(auth.id, { status: 'denied' }, now()), 'conflict', /already approved/);
    const redeemed = await store.deviceAuthorizations.redeem(auth.id, now());
    assert.equal(redeemed.status, 'redeemed');
    assert.equal(redeemed.userId, user.id);
    await rejectsWith(store.deviceAuthorizations.redeem(auth.id, now()), 'conflict');
    await rejectsWith(store.deviceAuthorizations.decide('dev_missing', { status: 'denied' }, now()), 'not_found');
    await rejectsWith(store.deviceAuthorizations.redeem('dev_missing', now()), 'not_found');

    const denied = await store.deviceAuthorizations.create(input());
    assert.equal((await store.deviceAuthorizations.decide(denied.id, { status: 'denied' }, now())).status, 'denied');
    await rejectsWith(store.deviceAuthorizations.redeem(denied.id, now()), 'conflict', /denied/);
  },

  'device authorizations: racing decisions — exactly one wins': async ({ store, openPeer }) => {
    const user = await store.users.create({ email: 'race-decide@example.com' });
    const peer = await peerOf(store, openPeer);
    const auth = await store.deviceAuthorizations.create(input());
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? store : peer).deviceAuthorizations.decide(
      auth.id, i % 3 === 0 ? { status: 'denied' } : { status: 'approved', userId: user.id }, now(),
    )));
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1, 'one decision');
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'conflict');
    const final = await store.deviceAuthorizations.findByDeviceCodeHash(auth.deviceCodeHash);
    assert.equal(final?.status, (won[0] as PromiseFulfilledResult<{ status: string }>).value.status);
  },

  'device authorizations: racing pollers — exactly one redeemer': async ({ store, openPeer }) => {
    const user = await store.users.create({ email: 'race-redeem@example.com' });
    const peer = await peerOf(store, openPeer);
    for (let round = 0; round < 3; round++) {
      const auth = await store.deviceAuthorizations.create(input());
      await store.deviceAuthorizations.decide(auth.id, { status: 'approved', userId: user.id }, now());
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? store : peer).deviceAuthorizations.redeem(auth.id, now())));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}: one redeemer`);
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'conflict');
    }
  },

  'device authorizations: an expired code can be neither decided nor redeemed, but stays readable': async ({ store }) => {
    const user = await store.users.create({ email: 'late@example.com' });
    const expired = await store.deviceAuthorizations.create(input({ expiresAt: past() }));
    await rejectsWith(store.deviceAuthorizations.decide(expired.id, { status: 'approved', userId: user.id }, now()), 'conflict', /expired/);
    assert.equal((await store.deviceAuthorizations.findByDeviceCodeHash(expired.deviceCodeHash))?.status, 'pending');

    const soon = await store.deviceAuthorizations.create(input({ expiresAt: inFuture(60_000) }));
    await store.deviceAuthorizations.decide(soon.id, { status: 'approved', userId: user.id }, now());
    const afterExpiry = new Date(Date.now() + 120_000).toISOString();
    await rejectsWith(store.deviceAuthorizations.redeem(soon.id, afterExpiry), 'conflict', /expired/);
    assert.equal((await store.deviceAuthorizations.findByDeviceCodeHash(soon.deviceCodeHash))?.status, 'approved');
  },

  'device authorizations: poll returns the previous poll time; long-expired rows are pruned on create': async ({ store }) => {
    const auth = await store.deviceAuthorizations.create(input());
    assert.equal(await store.deviceAuthorizations.poll(auth.id, '2030-01-01T00:00:00Z'), null);
    assert.equal(await store.deviceAuthorizations.poll(auth.id, '2030-01-01T00:00:05Z'), '2030-01-01T00:00:00.000Z');
    assert.equal((await store.deviceAuthorizations.findByDeviceCodeHash(auth.deviceCodeHash))?.lastPolledAt, '2030-01-01T00:00:05.000Z');
    await rejectsWith(store.deviceAuthorizations.poll('dev_missing', now()), 'not_found');
    await rejectsWith(store.deviceAuthorizations.poll(auth.id, 'soon'), 'bad_request');

    const ancient = await store.deviceAuthorizations.create(input({ expiresAt: past(3 * 24 * 3_600_000) }));
    await store.deviceAuthorizations.create(input());
    assert.equal(await store.deviceAuthorizations.findByDeviceCodeHash(ancient.deviceCodeHash), undefined, 'pruned');
    assert.ok(await store.deviceAuthorizations.findByDeviceCodeHash(auth.deviceCodeHash), 'live ones are kept');
  },
};
