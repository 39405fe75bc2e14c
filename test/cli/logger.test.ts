// Log lines: short human lines on a terminal, JSON when piped or asked for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PosternError } from '../../src/errors.js';
import { humanLine, logFormat } from '../../src/cli/logger.js';

test('logFormat: human on a terminal, JSON otherwise; the flag (POSTERN_LOG_FORMAT) wins', () => {
  assert.equal(logFormat({}, true), 'human');
  assert.equal(logFormat({}, false), 'json');
  assert.equal(logFormat({ POSTERN_LOG_FORMAT: 'json' }, true), 'json');
  assert.equal(logFormat({ POSTERN_LOG_FORMAT: 'human' }, false), 'human');
  assert.throws(() => logFormat({ POSTERN_LOG_FORMAT: 'xml' }, true), (err) => err instanceof PosternError && err.code === 'config_invalid');
});

test('humanLine: time, level, message, then the fields (quoted when needed), without pid or hostname', () => {
  const at = new Date(2026, 11, 2, 9, 4, 5).getTime();
  const line = humanLine({ level: 40, time: at, pid: 12, hostname: 'h', msg: 'tunnel 0 reconnected after 3.2 s', slot: 0, downMs: 3200, edge: 'localhost:8443', err: { message: 'socket hang up' }, note: 'two words' });
  assert.equal(line, '09:04:05 warn  tunnel 0 reconnected after 3.2 s  slot=0 downMs=3200 edge=localhost:8443 err="socket hang up" note="two words"\n');
  assert.equal(humanLine({ level: 30, time: at, msg: 'draining tunnels' }), '09:04:05 info  draining tunnels\n');
});
