// The audit page's filters: URL query round trip, time range checks, the API query they make;
// and its rows: first page, older pages, live events on top within a bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditEventView } from '../../src/control/audit-types.js';
import { EMPTY_FILTERS, apiFilter, filterProblem, filtersFromSearch, filtersToSearch, firstPage, localTime, withLiveEvent, withOlderPage } from '../../web/src/lib/audit-filter.js';

test('filters round-trip through the URL query; unknown decisions and blanks are dropped', () => {
  const filters = { ...EMPTY_FILTERS, user: 'ana@corp.example', type: 'http.request', decision: 'deny' as const, from: '2026-01-02T10:00', q: 'admin path' };
  const search = filtersToSearch(filters);
  assert.equal(search, '?user=ana%40corp.example&type=http.request&decision=deny&from=2026-01-02T10%3A00&q=admin+path');
  assert.deepEqual(filtersFromSearch(new URLSearchParams(search)), filters);
  assert.equal(filtersToSearch(EMPTY_FILTERS), '');
  assert.deepEqual(filtersFromSearch(new URLSearchParams('decision=maybe&socket=%20db%20')), { ...EMPTY_FILTERS, socket: 'db' });
});

test('a time range must be real times with from before to', () => {
  assert.equal(filterProblem(EMPTY_FILTERS), undefined);
  assert.equal(filterProblem({ ...EMPTY_FILTERS, from: '2026-01-02T10:00', to: '2026-01-02T11:00' }), undefined);
  assert.match(filterProblem({ ...EMPTY_FILTERS, from: '2026-01-02T11:00', to: '2026-01-02T11:00' }) ?? '', /before/);
  assert.match(filterProblem({ ...EMPTY_FILTERS, from: 'yesterday' }) ?? '', /"From" is not a date/);
  assert.match(filterProblem({ ...EMPTY_FILTERS, to: '2026-13-45T99:00' }) ?? '', /"To" is not a date/);
});

test('the API query carries set fields only, times as UTC instants', () => {
  assert.deepEqual(apiFilter(EMPTY_FILTERS), {});
  const from = '2026-01-02T10:00';
  assert.deepEqual(apiFilter({ ...EMPTY_FILTERS, socket: 'db', decision: 'allow', from, q: 'x' }), { socket: 'db', decision: 'allow', since: new Date(from).toISOString(), q: 'x' });
});

const event = (id: number): AuditEventView => ({ id, type: 'admin.change', at: new Date(id * 1000).toISOString(), actor: 'root@corp.example', socket: '', clientIp: '', country: '', decision: '', rule: '', reason: `change ${id}`, connectionId: '', sessionId: '', details: {} });
const ids = (rows: { events: readonly AuditEventView[] }) => rows.events.map((e) => e.id);

test('pages stack newest first; the tail starts after the first page\'s newest event; an overlapping older page adds nothing twice', () => {
  const rows = firstPage('k', { events: [event(9), event(8)], nextBefore: 8 });
  assert.deepEqual({ ...rows, events: ids(rows) }, { key: 'k', events: [9, 8], nextBefore: 8, tailAfter: 9 });
  const older = withOlderPage(rows, { events: [event(8), event(7), event(6)], nextBefore: null });
  assert.deepEqual(ids(older), [9, 8, 7, 6]);
  assert.equal(older.nextBefore, null);
  assert.equal(firstPage('k', { events: [], nextBefore: null }).tailAfter, 0, 'an empty filter tails from the start: nothing it selects is shown yet');
});

test('a live event goes on top once; past the bound the oldest rows go and "Load older" continues below the last row kept', () => {
  const rows = firstPage('k', { events: [event(5), event(4), event(3)], nextBefore: null });
  const live = withLiveEvent(rows, event(6), 4);
  assert.deepEqual(ids(live), [6, 5, 4, 3]);
  assert.equal(live.nextBefore, null);
  assert.equal(withLiveEvent(live, event(6), 4), live, 'an event already shown is not added again');
  const trimmed = withLiveEvent(live, event(7), 4);
  assert.deepEqual(ids(trimmed), [7, 6, 5, 4]);
  assert.equal(trimmed.nextBefore, 4, 'the dropped row 3 comes back with "Load older"');
  assert.equal(trimmed.tailAfter, 5);
});
