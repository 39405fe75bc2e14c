// The audit page's filters: URL query round trip, time range checks, the API query they make.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EMPTY_FILTERS, apiFilter, filterProblem, filtersFromSearch, filtersToSearch, localTime } from '../../web/src/lib/audit-filter.js';

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
