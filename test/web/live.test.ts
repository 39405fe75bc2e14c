import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyLiveEvent, chartGeometry, emptyLive, groupLive, markKilling, niceCeiling, parseLiveEvent } from '../../web/src/lib/live.js';
import type { LiveConnectionView, SessionSummary } from '../../src/control/live-types.js';

const session = (id: string, createdAt: string): SessionSummary => ({
  id, kind: 'browser', provider: 'local', clientIp: '127.0.0.1', userAgent: 'test', createdAt, expiresAt: '2030-01-01T00:00:00.000Z', revokedAt: null,
});

const connection = (id: string, email: string, sessionId = '', extra: Partial<LiveConnectionView> = {}): LiveConnectionView => ({
  id, edgeId: 'edge-1', protocol: 'tls', socket: 'db', userId: `u-${email}`, email, sessionId, clientIp: '127.0.0.1', country: '',
  startedAt: '2026-01-01T10:00:00.000Z', bytesUp: 0, bytesDown: 0, activity: '', activitySince: null, updatedAt: '2026-01-01T10:00:00.000Z',
  session: sessionId ? session(sessionId, '2026-01-01T09:00:00.000Z') : null, ...extra,
});

describe('live sessions: applying the stream', () => {
  it('starts from the snapshot, adds what opens once, moves counters, and drops what closes', () => {
    const a = connection('c1', 'ana@corp.example');
    const b = connection('c2', 'bob@corp.example');
    let state = applyLiveEvent(emptyLive, { type: 'snapshot', connections: [a] });
    assert.deepEqual(state.connections.map((c) => c.id), ['c1']);
    state = applyLiveEvent(state, { type: 'opened', connection: b });
    state = applyLiveEvent(state, { type: 'opened', connection: b });
    assert.deepEqual(state.connections.map((c) => c.id), ['c1', 'c2']);
    state = applyLiveEvent(state, { type: 'updated', id: 'c2', bytesUp: 10, bytesDown: 2048, activity: 'select pg_sleep(30)', activitySince: '2026-01-01T10:00:04.000Z', updatedAt: '2026-01-01T10:00:05.000Z' });
    assert.deepEqual([state.connections[1]?.bytesUp, state.connections[1]?.bytesDown, state.connections[1]?.activity, state.connections[1]?.activitySince], [10, 2048, 'select pg_sleep(30)', '2026-01-01T10:00:04.000Z']);
    assert.equal(state.connections[0], a, 'untouched rows keep their identity');
    state = applyLiveEvent(state, { type: 'closed', id: 'c1' });
    assert.deepEqual(state.connections.map((c) => c.id), ['c2']);
    assert.equal(applyLiveEvent(state, { type: 'closed', id: 'gone' }), state, 'a close of an unknown connection changes nothing');
  });

  it('a kill marks its live connections until their close arrives; a new snapshot forgets kills of rows it no longer has', () => {
    let state = applyLiveEvent(emptyLive, { type: 'snapshot', connections: [connection('c1', 'a@x.example'), connection('c2', 'a@x.example')] });
    state = markKilling(state, ['c1', 'not-live']);
    assert.deepEqual([...state.killing], ['c1']);
    state = applyLiveEvent(state, { type: 'killed', ids: ['c2'], actor: 'root@x.example', reason: 'killed', at: '2026-01-01T10:00:00.000Z' });
    assert.deepEqual([...state.killing].sort(), ['c1', 'c2']);
    state = applyLiveEvent(state, { type: 'closed', id: 'c1' });
    assert.deepEqual([...state.killing], ['c2']);
    state = applyLiveEvent(state, { type: 'snapshot', connections: [connection('c3', 'a@x.example')] });
    assert.equal(state.killing.size, 0);
  });

  it('reads only events it knows from the stream', () => {
    assert.equal(parseLiveEvent('{"type":"closed","id":"c1"}')?.type, 'closed');
    assert.equal(parseLiveEvent('{"type":"exploded"}'), undefined);
    assert.equal(parseLiveEvent('not json'), undefined);
    assert.equal(parseLiveEvent('null'), undefined);
  });
});

describe('live sessions: grouping', () => {
  it('groups by user (by email), then by sign-in (oldest first, connections without one last)', () => {
    const groups = groupLive([
      connection('c1', 'zed@corp.example', 's-z'),
      connection('c2', 'ana@corp.example'),
      connection('c3', 'ana@corp.example', 's-late', { session: session('s-late', '2026-01-01T09:30:00.000Z') }),
      connection('c4', 'ana@corp.example', 's-early', { session: session('s-early', '2026-01-01T08:00:00.000Z') }),
      connection('c5', 'ana@corp.example', 's-late', { session: session('s-late', '2026-01-01T09:30:00.000Z') }),
    ]);
    assert.deepEqual(groups.map((g) => [g.email, g.connectionCount]), [['ana@corp.example', 4], ['zed@corp.example', 1]]);
    assert.deepEqual(groups[0]?.sessions.map((s) => [s.sessionId, s.connections.map((c) => c.id)]), [['s-early', ['c4']], ['s-late', ['c3', 'c5']], ['', ['c2']]]);
  });
});

describe('overview chart', () => {
  it('rounds the top of the axis up to 1, 2 or 5 times a power of ten', () => {
    assert.deepEqual([0, 1, 3, 7, 10, 11, 180, 501].map(niceCeiling), [1, 1, 5, 10, 10, 20, 200, 1000]);
  });

  it('draws both series across the width, zero at the bottom', () => {
    const buckets = [
      { start: '2026-01-01T10:00:00.000Z', allow: 0, deny: 0 },
      { start: '2026-01-01T10:05:00.000Z', allow: 4, deny: 1 },
      { start: '2026-01-01T10:10:00.000Z', allow: 2, deny: 5 },
    ];
    const chart = chartGeometry(buckets, 200, 50);
    assert.equal(chart.top, 5);
    assert.equal(chart.allow, '0,50 100,10 200,30');
    assert.equal(chart.deny, '0,50 100,40 200,0');
    assert.equal(chartGeometry([], 200, 50).allow, '');
  });
});
