// Store suite cases for the repositories: CRUD, conflicts, not_found, join-token consumption,
// secrets, and the change log every mutation appends to.

import assert from 'node:assert/strict';
import type { Store } from '../../src/store/index.js';
import { inFuture, isoRe, rejectsWith } from './helpers.js';
import type { StoreCase } from './helpers.js';

async function lastChange(store: Store) {
  const rev = await store.currentRevision();
  const changes = await store.changesSince(Math.max(0, rev - 1));
  return changes[changes.length - 1];
}

async function countChanges(store: Store): Promise<number> {
  return (await store.changesSince(0, 10_000)).length;
}

export const repoCases: Record<string, StoreCase> = {
  'sockets: create, get, list, update, delete': async ({ store }) => {
    const created = await store.sockets.create({ name: 'grafana', type: 'http', upstream: 'http://localhost:3000' });
    assert.match(created.id, /^sock_[a-z2-7]{16}$/);
    assert.equal(created.description, '');
    assert.deepEqual(created.tags, {});
    assert.match(created.createdAt, isoRe);
    assert.equal(created.updatedAt, created.createdAt);
    assert.deepEqual(await store.sockets.get('grafana'), created);
    assert.equal(await store.sockets.get('nope'), undefined);

    await store.sockets.create({ name: 'alpha', type: 'tls', description: 'db', tags: { env: 'prod' } });
    assert.deepEqual((await store.sockets.list()).map((s) => s.name), ['alpha', 'grafana']);

    const updated = await store.sockets.update('grafana', { description: 'dash', tags: { team: 'ops' } });
    assert.equal(updated.id, created.id);
    assert.equal(updated.upstream, 'http://localhost:3000');
    assert.equal(updated.description, 'dash');
    assert.deepEqual(updated.tags, { team: 'ops' });
    assert.ok(updated.updatedAt >= created.updatedAt);
    assert.deepEqual(await store.sockets.get('grafana'), updated);

    const cleared = await store.sockets.update('grafana', { upstream: null, type: 'https' });
    assert.equal(cleared.upstream, null);
    assert.equal(cleared.type, 'https');
    assert.equal(cleared.description, 'dash');

    await store.sockets.delete('grafana');
    assert.equal(await store.sockets.get('grafana'), undefined);
    assert.deepEqual((await store.sockets.list()).map((s) => s.name), ['alpha']);
  },

  'sockets: duplicate name is a conflict, also when racing': async ({ store }) => {
    await store.sockets.create({ name: 'ssh', type: 'tls' });
    await rejectsWith(store.sockets.create({ name: 'ssh', type: 'http' }), 'conflict', /^socket "ssh" already exists$/);
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () => store.sockets.create({ name: 'race', type: 'http' })),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'conflict');
    }
    assert.equal((await store.sockets.list()).length, 2);
  },

  'sockets: invalid name or type is bad_request and records nothing': async ({ store }) => {
    const before = await store.currentRevision();
    for (const name of ['', 'UPPER', '-lead', 'trail-', 'dot.ted', 'a'.repeat(64)]) {
      await rejectsWith(store.sockets.create({ name, type: 'http' }), 'bad_request', /DNS label/);
    }
    await rejectsWith(store.sockets.create({ name: 'ok', type: 'ftp' as 'http' }), 'bad_request');
    await store.sockets.create({ name: 'ok', type: 'http' });
    await rejectsWith(store.sockets.update('ok', { type: 'ftp' as 'http' }), 'bad_request');
    await rejectsWith(store.apiTokens.create({ name: 'x', tokenHash: 'h', role: 'root' as 'admin', scopes: ['admin'] }), 'bad_request');
    assert.equal((await store.changesSince(before)).length, 1);
  },

  'sockets: update and delete of a missing socket are not_found': async ({ store }) => {
    await rejectsWith(store.sockets.update('ghost', { description: 'x' }), 'not_found', /socket "ghost" not found/);
    await rejectsWith(store.sockets.delete('ghost'), 'not_found');
  },

  'sockets and connectors: pages in key order, after the last key seen': async ({ store }) => {
    for (const name of ['delta', 'alpha', 'charlie', 'bravo']) await store.sockets.create({ name, type: 'http' });
    assert.deepEqual((await store.sockets.list({ limit: 3 })).map((s) => s.name), ['alpha', 'bravo', 'charlie']);
    assert.deepEqual((await store.sockets.list({ after: 'bravo', limit: 3 })).map((s) => s.name), ['charlie', 'delta']);
    assert.deepEqual(await store.sockets.list({ after: 'delta', limit: 3 }), []);
    assert.equal((await store.sockets.list()).length, 4, 'no page: every socket');

    const ids: string[] = [];
    for (const name of ['one', 'two', 'three']) ids.push((await store.connectors.create({ name })).id);
    const sorted = [...ids].sort();
    const first = await store.connectors.list({ limit: 2 });
    assert.deepEqual(first.map((c) => c.id), sorted.slice(0, 2));
    assert.deepEqual((await store.connectors.list({ after: first[1]!.id, limit: 2 })).map((c) => c.id), sorted.slice(2));
    assert.deepEqual((await store.connectors.list()).map((c) => c.id).sort(), sorted, 'no page: every connector');
  },

  'connectors: lifecycle and not_found': async ({ store }) => {
    const c = await store.connectors.create({ name: 'office' });
    assert.match(c.id, /^ctr_[a-z2-7]{16}$/, "connector ids have a prefix of their own (connections are conn_)");
    assert.deepEqual(
      [c.certSerial, c.certNotAfter, c.lastSeenAt, c.revokedAt],
      [null, null, null, null],
    );
    const notAfter = inFuture();
    await store.connectors.recordCertificate(c.id, '0a1b', notAfter);
    await store.connectors.touch(c.id, '2030-01-02T03:04:05Z');
    let got = await store.connectors.get(c.id);
    assert.equal(got?.certSerial, '0a1b');
    assert.equal(got?.certNotAfter, notAfter);
    assert.equal(got?.lastSeenAt, '2030-01-02T03:04:05.000Z');

    await store.connectors.revoke(c.id, '2030-01-03T00:00:00.000Z');
    await store.connectors.revoke(c.id, '2030-02-01T00:00:00.000Z');
    got = await store.connectors.get(c.id);
    assert.equal(got?.revokedAt, '2030-01-03T00:00:00.000Z', 'revoking twice keeps the first time');

    const other = await store.connectors.create({ name: 'office' });
    assert.deepEqual((await store.connectors.list()).map((x) => x.id).sort(), [c.id, other.id].sort());

    await store.connectors.delete(c.id);
    assert.equal(await store.connectors.get(c.id), undefined);
    for (const op of [
      () => store.connectors.recordCertificate(c.id, '1', notAfter),
      () => store.connectors.touch(c.id, notAfter),
      () => store.connectors.revoke(c.id, notAfter),
      () => store.connectors.delete(c.id),
    ]) {
      await rejectsWith(op(), 'not_found');
    }
    await rejectsWith(store.connectors.touch(other.id, 'yesterday'), 'bad_request');
  },

  'join tokens: create, list, consume, invalid, used, expired, delete': async ({ store }) => {
    const expiresAt = inFuture();
    const jt = await store.joinTokens.create({ tokenHash: 'h1', connectorName: 'office', expiresAt });
    assert.match(jt.id, /^jt_[a-z2-7]{16}$/);
    assert.equal(jt.usedAt, null);
    await rejectsWith(
      store.joinTokens.create({ tokenHash: 'h1', connectorName: 'x', expiresAt }),
      'conflict',
    );

    const conn = await store.connectors.create({ name: 'office' });
    const at = new Date().toISOString();
    const used = await store.joinTokens.consume('h1', conn.id, at);
    assert.equal(used.id, jt.id);
    assert.equal(used.usedAt, at);
    assert.equal(used.connectorId, conn.id);

    await rejectsWith(store.joinTokens.consume('h1', conn.id, at), 'token_used');
    await rejectsWith(store.joinTokens.consume('unknown', conn.id, at), 'token_invalid');

    await store.joinTokens.create({ tokenHash: 'h2', connectorName: 'x', expiresAt: '2020-01-01T00:00:00.000Z' });
    await rejectsWith(store.joinTokens.consume('h2', conn.id, at), 'token_expired');
    const edge = await store.joinTokens.create({ tokenHash: 'h3', connectorName: 'x', expiresAt: at });
    await rejectsWith(store.joinTokens.consume('h3', conn.id, at), 'token_expired', /expired/);
    assert.equal((await store.joinTokens.list()).find((t) => t.id === edge.id)?.usedAt, null);

    assert.equal((await store.joinTokens.list()).length, 3);
    await store.joinTokens.delete(jt.id);
    await rejectsWith(store.joinTokens.delete(jt.id), 'not_found');
    assert.deepEqual((await store.joinTokens.list()).map((t) => t.tokenHash).sort(), ['h2', 'h3']);
  },

  'join tokens: concurrent double consume, only one wins': async ({ store, openPeer }) => {
    const peer = openPeer === undefined ? store : await openPeer();
    for (let round = 0; round < 5; round++) {
      const hash = `race-${round}`;
      await store.joinTokens.create({ tokenHash: hash, connectorName: 'n', expiresAt: inFuture() });
      const at = new Date().toISOString();
      const results = await Promise.allSettled([
        store.joinTokens.consume(hash, 'conn_a', at),
        peer.joinTokens.consume(hash, 'conn_b', at),
        store.joinTokens.consume(hash, 'conn_c', at),
        peer.joinTokens.consume(hash, 'conn_d', at),
      ]);
      const winners = results.filter((r) => r.status === 'fulfilled');
      assert.equal(winners.length, 1, `round ${round}: exactly one consumer wins`);
      for (const r of results) {
        if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'token_used');
      }
      const stored = (await store.joinTokens.list()).find((t) => t.tokenHash === hash);
      assert.equal(stored?.connectorId, winners[0]?.status === 'fulfilled' ? winners[0].value.connectorId : undefined);
    }
  },

  'api tokens: create, find, list, revoke': async ({ store }) => {
    const t = await store.apiTokens.create({ name: 'ci', tokenHash: 'th1', role: 'service', scopes: ['sockets:write', 'audit:read', 'audit:read'] });
    assert.match(t.id, /^tok_[a-z2-7]{16}$/);
    assert.deepEqual(t.scopes, ['audit:read', 'sockets:write'], 'deduplicated, sorted');
    assert.deepEqual(await store.apiTokens.findByHash('th1'), t);
    assert.equal(await store.apiTokens.findByHash('nope'), undefined);
    await rejectsWith(store.apiTokens.create({ name: 'other', tokenHash: 'th1', role: 'admin', scopes: ['admin'] }), 'conflict');
    await store.apiTokens.create({ name: 'admin', tokenHash: 'th2', role: 'admin', scopes: ['admin'] });
    assert.equal((await store.apiTokens.list()).length, 2);
    await store.apiTokens.revoke(t.id, '2030-01-01T00:00:00Z');
    assert.equal((await store.apiTokens.findByHash('th1'))?.revokedAt, '2030-01-01T00:00:00.000Z');
    await rejectsWith(store.apiTokens.revoke('tok_missing', '2030-01-01T00:00:00Z'), 'not_found');
  },

  'api tokens: scopes are a closed, non-empty set': async ({ store }) => {
    for (const scopes of [[], ['root'], ['sockets:write', 'sockets:*'], ['Admin']] as never[]) {
      await rejectsWith(store.apiTokens.create({ name: 'bad', tokenHash: `h-${JSON.stringify(scopes)}`, role: 'service', scopes }), 'bad_request', /scopes/);
    }
    assert.equal((await store.apiTokens.list()).length, 0);
  },

  'secrets: get, put, putIfAbsent first writer wins': async ({ store }) => {
    assert.equal(await store.secrets.get('ca.key'), undefined);
    assert.equal(await store.secrets.putIfAbsent('ca.key', 'one'), 'one');
    assert.equal(await store.secrets.putIfAbsent('ca.key', 'two'), 'one');
    await store.secrets.put('ca.key', 'three');
    assert.equal(await store.secrets.get('ca.key'), 'three');
    await store.secrets.put('other', '{"json":true}');
    assert.equal(await store.secrets.get('other'), '{"json":true}');
  },

  'secrets: putIfAbsent race, every caller sees the one stored value': async ({ store, openPeer }) => {
    const peer = openPeer === undefined ? store : await openPeer();
    const before = await countChanges(store);
    const values = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? store : peer).secrets.putIfAbsent('jwt.key', `v${i}`)),
    );
    const stored = await store.secrets.get('jwt.key');
    assert.ok(stored !== undefined);
    assert.deepEqual(new Set(values), new Set([stored]));
    assert.equal(await countChanges(store), before + 1, 'only the insert is a change');
  },

  'changes: one per mutation, monotonic, none for failures': async ({ store }) => {
    const start = await store.currentRevision();
    assert.equal(typeof start, 'number');
    const s = await store.sockets.create({ name: 'web', type: 'http' });
    const r1 = await store.currentRevision();
    assert.equal(typeof r1, 'number');
    assert.ok(r1 > start);
    assert.deepEqual(
      { ...(await lastChange(store)), at: undefined, revision: undefined },
      { entity: 'socket', entityId: s.id, op: 'create', at: undefined, revision: undefined },
    );

    await rejectsWith(store.sockets.create({ name: 'web', type: 'http' }), 'conflict');
    await rejectsWith(store.sockets.delete('missing'), 'not_found');
    await rejectsWith(store.joinTokens.consume('missing', 'c', new Date().toISOString()), 'token_invalid');
    assert.equal(await store.currentRevision(), r1, 'failed mutations record nothing');

    await store.sockets.update('web', { description: 'x' });
    const c = await store.connectors.create({ name: 'n' });
    await store.connectors.touch(c.id, new Date().toISOString());
    await store.secrets.put('k', 'v');
    await store.sockets.delete('web');
    const changes = await store.changesSince(r1);
    assert.deepEqual(
      changes.map((ch) => [ch.entity, ch.entityId, ch.op]),
      [
        ['socket', s.id, 'update'],
        ['connector', c.id, 'create'],
        ['connector', c.id, 'update'],
        ['secret', 'k', 'create'],
        ['socket', s.id, 'delete'],
      ],
    );
    for (let i = 0; i < changes.length; i++) {
      const ch = changes[i]!;
      assert.equal(typeof ch.revision, 'number');
      assert.match(ch.at, isoRe);
      if (i > 0) assert.ok(ch.revision > changes[i - 1]!.revision, 'revisions strictly increase');
    }
    assert.equal(await store.currentRevision(), changes[changes.length - 1]!.revision);
  },

  'changes: changesSince honours revision and limit': async ({ store }) => {
    const base = await store.currentRevision();
    for (let i = 0; i < 7; i++) await store.secrets.put(`s${i}`, 'v');
    const all = await store.changesSince(base);
    assert.equal(all.length, 7);
    const page1 = await store.changesSince(base, 3);
    assert.deepEqual(page1, all.slice(0, 3));
    const page2 = await store.changesSince(page1[2]!.revision, 3);
    assert.deepEqual(page2, all.slice(3, 6));
    assert.deepEqual(await store.changesSince(all[6]!.revision), []);
    await rejectsWith(store.changesSince(base, 0), 'bad_request');
    await rejectsWith(store.changesSince(-1), 'bad_request');
  },

  'onLocalChange: fires after commit, not on failure, and unsubscribes': async ({ store }) => {
    const seen: number[] = [];
    const pending: Array<Promise<void>> = [];
    const off = store.onLocalChange(() => {
      // After commit, a fresh read already sees the change.
      pending.push(store.currentRevision().then((r) => void seen.push(r)));
    });
    await store.sockets.create({ name: 'a', type: 'http' });
    await Promise.all(pending);
    assert.deepEqual(seen, [await store.currentRevision()]);
    await rejectsWith(store.sockets.create({ name: 'a', type: 'http' }), 'conflict');
    assert.equal(pending.length, 1);
    off();
    await store.sockets.create({ name: 'b', type: 'http' });
    assert.equal(pending.length, 1);
  },

  'close: idempotent': async ({ store }) => {
    await store.close();
    await store.close();
  },
};
