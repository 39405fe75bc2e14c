// The recordings page's URL state and its time format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiFilters, filtersFrom, formatOffset } from '../../web/src/lib/recording-filters.js';

test('filters come from the URL, trimmed; the API gets only the set ones and never q', () => {
  const filters = filtersFrom(new URLSearchParams('user=%20ana@corp.example%20&socket=prod&q=rm%20-rf&extra=1'));
  assert.deepEqual(filters, { user: 'ana@corp.example', socket: 'prod', since: '', until: '', q: 'rm -rf' });
  assert.deepEqual(apiFilters(filters), { user: 'ana@corp.example', socket: 'prod' });
  assert.deepEqual(apiFilters(filtersFrom(new URLSearchParams(''))), {});
});

test('moments read as m:ss.s, and h:mm:ss.s past an hour', () => {
  assert.equal(formatOffset(0), '0:00.0');
  assert.equal(formatOffset(7.25), '0:07.3');
  assert.equal(formatOffset(59.96), '1:00.0');
  assert.equal(formatOffset(125.4), '2:05.4');
  assert.equal(formatOffset(3723.5), '1:02:03.5');
  assert.equal(formatOffset(-3), '0:00.0');
});
