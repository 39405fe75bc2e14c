// Store suite cases for policies (versions, history, no-op re-apply), the append-only audit
// trail (ids in order, filters, cursors) and live connections (heartbeat, prune, kill changes).

import assert from 'node:assert/strict';
import { loadSnapshot } from '../../src/store/index.js';
import { rejectsWith } from './helpers.js';
import type { StoreCase } from './helpers.js';

const doc = (methods: string[]) => ({ name: 'web', rules: [{ effect: 'allow', what: { http: { methods } } }] });

export const auditCases: Record<string, StoreCase> = {
  'policies: put creates then versions; an identical document changes nothing; delete keeps the history': async ({ store }) => {
    const base = await store.currentRevision();
    const first = await store.policies.put('corp', 'web', doc(['GET']), 'ana@corp.example');
    assert.equal(first.changed, true);
    assert.equal(first.record.version, 1);
    assert.match(first.record.id, /^pol_/);
    const same = await store.policies.put('corp', 'web', doc(['GET']), 'ana@corp.example');
    assert.deepEqual([same.changed, same.record.version], [false, 1]);
    const second = await store.policies.put('corp', 'web', doc(['GET', 'HEAD']), 'bob@corp.example');
    assert.deepEqual([second.changed, second.record.version, second.previous?.version], [true, 2, 1]);
    assert.deepEqual(second.record.document, doc(['GET', 'HEAD']));
    await store.policies.put('', 'web', doc(['POST']), 'ana@corp.example');
    assert.deepEqual((await store.policies.list()).map((p) => [p.namespace, p.name, p.version]), [['', 'web', 1], ['corp', 'web', 2]]);
    assert.deepEqual((await loadSnapshot(store)).policies.map((p) => p.namespace), ['', 'corp']);

    const deleted = await store.policies.delete('corp', 'web', 'bob@corp.example');
    assert.equal(deleted.version, 2);
    assert.equal(await store.policies.get('corp', 'web'), undefined);
    await rejectsWith(store.policies.delete('corp', 'web', 'x'), 'not_found');
    const history = await store.policies.versions('corp', 'web');
    assert.deepEqual(history.map((v) => [v.version, v.author, v.document === null]), [[1, 'ana@corp.example', false], [2, 'bob@corp.example', false], [3, 'bob@corp.example', true]]);
    const changes = (await store.changesSince(base, 100)).map((c) => [c.entity, c.op]);
    assert.deepEqual(changes, [['policy', 'create'], ['policy', 'update'], ['policy', 'create'], ['policy', 'delete']]);
  },

  'audit: append assigns increasing ids, filters narrow, cursors resume, and nothing records a change': async ({ store }) => {
    const base = await store.currentRevision();
    const written = await store.audit.append([
      { type: 'access.denied', actor: 'eve@other.example', socket: 'db', decision: 'deny', reason: 'eve is not allowed', at: '2026-01-01T10:00:00Z' },
      { type: 'connection.open', actor: 'ana@corp.example', socket: 'db', connectionId: 'conn_1', at: '2026-01-01T11:00:00Z' },
      { type: 'connection.close', actor: 'ana@corp.example', socket: 'db', connectionId: 'conn_1', details: { bytesUp: 10, bytesDown: 20 }, at: '2026-01-01T12:00:00Z' },
    ]);
    assert.equal(written.length, 3);
    assert.ok(written[0]!.id < written[1]!.id && written[1]!.id < written[2]!.id);
    assert.deepEqual(written[2]!.details, { bytesUp: 10, bytesDown: 20 });
    assert.equal(written[0]!.at, '2026-01-01T10:00:00.000Z');
    assert.equal(written[1]!.decision, '');
    const ids = (events: { id: number }[]) => events.map((e) => e.id);
    assert.deepEqual(ids(await store.audit.list()), ids(written));
    assert.deepEqual(ids(await store.audit.list({ actor: 'ana@corp.example' })), ids(written.slice(1)));
    assert.deepEqual(ids(await store.audit.list({ decision: 'deny' })), [written[0]!.id]);
    assert.deepEqual(ids(await store.audit.list({ type: 'connection.close' })), [written[2]!.id]);
    assert.deepEqual(ids(await store.audit.list({ since: '2026-01-01T11:00:00Z', until: '2026-01-01T12:00:00Z' })), [written[1]!.id]);
    assert.deepEqual(ids(await store.audit.list({ afterId: written[0]!.id, limit: 1 })), [written[1]!.id]);
    assert.deepEqual(ids(await store.audit.list({ newestFirst: true, limit: 2 })), [written[2]!.id, written[1]!.id]);
    await rejectsWith(store.audit.list({ limit: 0 }), 'bad_request');
    await rejectsWith(store.audit.list({ since: 'yesterday' }), 'bad_request');
    await rejectsWith(store.audit.append([{ type: '' }]), 'bad_request');

    assert.equal(await store.audit.cursor('webhook'), 0);
    await store.audit.setCursor('webhook', written[1]!.id);
    await store.audit.setCursor('webhook', written[2]!.id);
    assert.equal(await store.audit.cursor('webhook'), written[2]!.id);
    await rejectsWith(store.audit.setCursor('webhook', -1), 'bad_request');
    assert.equal(await store.currentRevision(), base, 'audit writes are not changes');
  },

  'audit: oversized details are cut to a marker, never refused': async ({ store }) => {
    const [event] = await store.audit.append([{ type: 'http.request', details: { blob: 'x'.repeat(40_000) } }]);
    assert.deepEqual(event!.details, { truncated: true, bytes: 40_011 });
  },

  'live connections: upsert refreshes bytes and activity, list by freshness, prune drops the stale, kill is a change': async ({ store }) => {
    const row = { id: 'conn_a', edgeId: 'edge-1', protocol: 'tls', socket: 'db', userId: 'usr_1', email: 'ana@corp.example', sessionId: 'ses_1', clientIp: '127.0.0.1', country: '', startedAt: new Date().toISOString(), bytesUp: 1, bytesDown: 2, activity: '', activitySince: null };
    await store.liveConnections.upsert([row, { ...row, id: 'conn_b', socket: 'web', userId: 'usr_2' }]);
    await store.liveConnections.upsert([{ ...row, bytesUp: 100, bytesDown: 200, activity: 'select pg_sleep(30)', activitySince: '2026-01-01T10:00:00.000Z' }]);
    const past = new Date(Date.now() - 60_000).toISOString();
    const listed = await store.liveConnections.list({ freshSince: past });
    assert.deepEqual(listed.map((c) => [c.id, c.bytesUp, c.bytesDown, c.activity, c.activitySince]), [['conn_a', 100, 200, 'select pg_sleep(30)', '2026-01-01T10:00:00.000Z'], ['conn_b', 1, 2, '', null]]);
    assert.deepEqual((await store.liveConnections.list({ freshSince: past, socket: 'web' })).map((c) => c.id), ['conn_b']);
    assert.deepEqual((await store.liveConnections.list({ freshSince: past, userId: 'usr_1' })).map((c) => c.id), ['conn_a']);
    assert.deepEqual(await store.liveConnections.list({ freshSince: new Date(Date.now() + 60_000).toISOString() }), []);
    await store.liveConnections.remove(['conn_b']);
    assert.equal(await store.liveConnections.prune(past), 0);
    assert.equal(await store.liveConnections.prune(new Date(Date.now() + 60_000).toISOString()), 1);

    const base = await store.currentRevision();
    await store.liveConnections.requestKill('user:usr_1');
    assert.deepEqual((await store.changesSince(base)).map((c) => [c.entity, c.entityId, c.op]), [['kill', 'user:usr_1', 'delete']]);
  },
};
