// Store suite cases for connector ↔ socket bindings: connector ids on sockets (checked to
// exist), socket names and tag selectors on join tokens, binding applied when a token is
// consumed, and the snapshot carrying both.

import assert from 'node:assert/strict';
import { loadSnapshot } from '../../src/store/index.js';
import { inFuture, rejectsWith } from './helpers.js';
import type { StoreCase } from './helpers.js';

const at = () => new Date().toISOString();

export const bindingCases: Record<string, StoreCase> = {
  'bindings: sockets keep connector ids; unknown ids are not_found and change nothing': async ({ store }) => {
    const a = await store.connectors.create({ name: 'a' });
    const b = await store.connectors.create({ name: 'b' });
    assert.deepEqual((await store.sockets.create({ name: 'plain', type: 'http' })).connectors, []);
    const bound = await store.sockets.create({ name: 'bound', type: 'tls', connectors: [a.id, a.id, b.id] });
    assert.deepEqual(bound.connectors, [a.id, b.id], 'de-duplicated, in order');
    assert.deepEqual((await store.sockets.get('bound'))?.connectors, [a.id, b.id]);

    const before = await store.currentRevision();
    await rejectsWith(store.sockets.create({ name: 'ghostly', type: 'http', connectors: ['conn_ghost'] }), 'not_found', /conn_ghost/);
    await rejectsWith(store.sockets.update('bound', { connectors: [b.id, 'conn_ghost'] }), 'not_found', /conn_ghost/);
    await rejectsWith(store.sockets.update('bound', { connectors: [''] }), 'bad_request');
    await rejectsWith(store.sockets.update('bound', { connectors: 'conn_x' as unknown as string[] }), 'bad_request');
    assert.equal(await store.currentRevision(), before, 'refused writes record no change');
    assert.equal(await store.sockets.get('ghostly'), undefined);

    const moved = await store.sockets.update('bound', { connectors: [b.id] });
    assert.deepEqual(moved.connectors, [b.id]);
    assert.deepEqual((await store.sockets.update('bound', { description: 'x' })).connectors, [b.id], 'other patches keep the binding');
    assert.deepEqual((await store.sockets.update('bound', { connectors: [] })).connectors, []);
  },

  'bindings: join tokens keep socket names and a non-empty tag selector': async ({ store }) => {
    const expiresAt = inFuture();
    const plain = await store.joinTokens.create({ tokenHash: 'p', connectorName: 'p', expiresAt });
    assert.deepEqual([plain.sockets, plain.socketTags], [[], null]);
    const jt = await store.joinTokens.create({ tokenHash: 't', connectorName: 't', expiresAt, sockets: ['web', 'web', 'db'], socketTags: { env: 'prod' } });
    assert.deepEqual([jt.sockets, jt.socketTags], [['web', 'db'], { env: 'prod' }]);
    const listed = (await store.joinTokens.list()).find((t) => t.id === jt.id);
    assert.deepEqual([listed?.sockets, listed?.socketTags], [['web', 'db'], { env: 'prod' }]);
    await rejectsWith(store.joinTokens.create({ tokenHash: 'e', connectorName: 'e', expiresAt, socketTags: {} }), 'bad_request', /at least one tag/);
    await rejectsWith(store.joinTokens.create({ tokenHash: 'n', connectorName: 'n', expiresAt, sockets: ['Not A Label'] }), 'bad_request');
    await rejectsWith(store.joinTokens.create({ tokenHash: 'v', connectorName: 'v', expiresAt, socketTags: { env: 1 as unknown as string } }), 'bad_request');
  },

  'bindings: consuming a token binds its connector to the named sockets and gives it the selector': async ({ store }) => {
    const expiresAt = inFuture();
    const first = await store.connectors.create({ name: 'first' });
    await store.sockets.create({ name: 'web', type: 'http', connectors: [first.id] });
    await store.sockets.create({ name: 'other', type: 'http' });
    await store.sockets.create({ name: 'gone', type: 'http' });
    await store.joinTokens.create({ tokenHash: 'h', connectorName: 'second', expiresAt, sockets: ['web', 'gone'], socketTags: { env: 'prod' } });
    await store.sockets.delete('gone');
    const second = await store.connectors.create({ name: 'second' });
    const before = await store.currentRevision();
    const used = await store.joinTokens.consume('h', second.id, at());
    assert.equal(used.connectorId, second.id);
    assert.deepEqual((await store.sockets.get('web'))?.connectors, [first.id, second.id], 'added beside the connector already bound');
    assert.deepEqual((await store.sockets.get('other'))?.connectors, [], 'sockets the token does not name are untouched');
    assert.equal(await store.sockets.get('gone'), undefined, 'a deleted socket is not brought back');
    assert.deepEqual((await store.connectors.get(second.id))?.socketTags, { env: 'prod' });
    assert.equal((await store.connectors.get(first.id))?.socketTags, null);
    const changes = await store.changesSince(before);
    assert.deepEqual(changes.map((c) => c.entity).sort(), ['connector', 'join_token', 'socket'], 'the feed hears of the binding');

    // A refused consume binds nothing.
    const third = await store.connectors.create({ name: 'third' });
    await rejectsWith(store.joinTokens.consume('h', third.id, at()), 'token_used');
    assert.deepEqual((await store.sockets.get('web'))?.connectors, [first.id, second.id]);
    assert.equal((await store.connectors.get(third.id))?.socketTags, null);
  },

  'bindings: the snapshot carries socket connectors and connector selectors, frozen': async ({ store }) => {
    const expiresAt = inFuture();
    const c = await store.connectors.create({ name: 'c' });
    await store.sockets.create({ name: 'web', type: 'http', connectors: [c.id] });
    await store.joinTokens.create({ tokenHash: 'h', connectorName: 'd', expiresAt, socketTags: { team: 'ops' } });
    const d = await store.connectors.create({ name: 'd' });
    await store.joinTokens.consume('h', d.id, at());
    const snapshot = await loadSnapshot(store);
    const web = snapshot.sockets.get('web')!;
    assert.deepEqual(web.connectors, [c.id]);
    assert.ok(Object.isFrozen(web.connectors));
    const selector = snapshot.connectors.get(d.id)!.socketTags!;
    assert.deepEqual(selector, { team: 'ops' });
    assert.ok(Object.isFrozen(selector));
    assert.equal(snapshot.connectors.get(c.id)!.socketTags, null);
  },
};
