// Store suite cases for identity providers: create/get/list/update/delete, unique names, the
// sealed secret kept as given, validation, and one ('identity_provider', id, op) change each.

import assert from 'node:assert/strict';
import { isoRe, rejectsWith } from './helpers.js';
import type { StoreCase } from './helpers.js';

export const providerCases: Record<string, StoreCase> = {
  'identity providers: create, get, list, update, delete, one change each': async ({ store }) => {
    const base = await store.currentRevision();
    const corp = await store.identityProviders.create({
      name: 'corp', kind: 'oidc', displayName: 'Corp SSO',
      config: { issuer: 'https://id.corp.example', clientId: 'abc', groupMap: { admins: ['ops'] } },
      sealedSecret: 'v1.iv.body.tag',
    });
    assert.match(corp.id, /^idp_[a-z2-7]{16}$/);
    assert.equal(corp.kind, 'oidc');
    assert.equal(corp.displayName, 'Corp SSO');
    assert.deepEqual(corp.config, { issuer: 'https://id.corp.example', clientId: 'abc', groupMap: { admins: ['ops'] } });
    assert.equal(corp.sealedSecret, 'v1.iv.body.tag');
    assert.equal(corp.disabledAt, null);
    assert.match(corp.createdAt, isoRe);
    assert.deepEqual(await store.identityProviders.get('corp'), corp);
    assert.equal(await store.identityProviders.get('nope'), undefined);

    const gh = await store.identityProviders.create({ name: 'gh', kind: 'github' });
    assert.deepEqual([gh.displayName, gh.config, gh.sealedSecret], ['gh', {}, null]);
    assert.deepEqual((await store.identityProviders.list()).map((p) => p.name), ['corp', 'gh']);

    const at = new Date().toISOString();
    const updated = await store.identityProviders.update('corp', { displayName: 'Corp', config: { issuer: 'https://x.example' }, disabledAt: at });
    assert.equal(updated.displayName, 'Corp');
    assert.deepEqual(updated.config, { issuer: 'https://x.example' });
    assert.equal(updated.sealedSecret, 'v1.iv.body.tag', 'an untouched secret is kept');
    assert.equal(updated.disabledAt, at);
    assert.deepEqual(await store.identityProviders.get('corp'), updated);
    const cleared = await store.identityProviders.update('corp', { sealedSecret: null, disabledAt: null });
    assert.deepEqual([cleared.sealedSecret, cleared.disabledAt], [null, null]);

    await store.identityProviders.delete('gh');
    assert.equal(await store.identityProviders.get('gh'), undefined);
    const changes = (await store.changesSince(base, 100)).map((c) => [c.entity, c.entityId, c.op]);
    assert.deepEqual(changes, [
      ['identity_provider', corp.id, 'create'],
      ['identity_provider', gh.id, 'create'],
      ['identity_provider', corp.id, 'update'],
      ['identity_provider', corp.id, 'update'],
      ['identity_provider', gh.id, 'delete'],
    ]);
  },

  'identity providers: names are unique and checked; bad input is refused and records nothing': async ({ store }) => {
    await store.identityProviders.create({ name: 'corp', kind: 'oidc' });
    const base = await store.currentRevision();
    await rejectsWith(store.identityProviders.create({ name: 'corp', kind: 'github' }), 'conflict', /already exists/);
    await rejectsWith(store.identityProviders.create({ name: 'Bad Name', kind: 'oidc' }), 'bad_request');
    await rejectsWith(store.identityProviders.create({ name: 'x', kind: 'ldap' as never }), 'bad_request');
    await rejectsWith(store.identityProviders.create({ name: 'y', kind: 'oidc', config: [] as never }), 'bad_request');
    await rejectsWith(store.identityProviders.update('missing', { displayName: 'x' }), 'not_found');
    await rejectsWith(store.identityProviders.update('corp', { disabledAt: 'not a time' }), 'bad_request');
    await rejectsWith(store.identityProviders.delete('missing'), 'not_found');
    assert.equal(await store.currentRevision(), base);
    assert.deepEqual((await store.identityProviders.list()).map((p) => p.name), ['corp']);
  },
};
