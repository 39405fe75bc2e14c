// The pure parts of database transcripts, cancel keys and the front door's plain CancelRequest:
// how a result is rendered (a bounded psql table, tags, errors with SQLSTATE, COPY), that no
// control character reaches whoever replays it, and how keys map back to their sessions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { postgresCancelRequest } from '../../src/edge/front-door.js';
import { CancelKeys } from '../../src/edge/postgres/cancel-keys.js';
import { SessionTranscript, cellText, printable, promptLine, renderCopy, renderNotice, renderTable } from '../../src/edge/postgres/transcript.js';
import type { RecordingHandle } from '../../src/reporting/index.js';
import { encodeBackend } from '../../src/pgwire/backend.js';
import type { BackendMessage } from '../../src/pgwire/backend.js';
import { encodeStartup } from '../../src/pgwire/wire.js';
import type { PgPacket } from '../../src/pgwire/wire.js';

const packet = (message: BackendMessage): PgPacket => {
  const raw = encodeBackend(message);
  return { type: String.fromCharCode(raw[0]!), payload: raw.subarray(5), raw };
};

const field = (name: string, typeOid = 25) => ({ name, tableOid: 0, columnNumber: 0, typeOid, typeSize: -1, typeModifier: -1, format: 0 });

class FakeRecording implements RecordingHandle {
  readonly id = 'rec_test';
  readonly out: string[] = [];
  readonly typed: string[] = [];
  ended: string | undefined;
  output(data: Buffer): void {
    this.out.push(data.toString());
  }
  input(data: Buffer): void {
    this.typed.push(data.toString());
  }
  resize(): void {}
  end(details: { reason?: string } = {}): void {
    this.ended = details.reason;
  }
}

test('the prompt line is psql\'s: =>, =# for a superuser, =*> in a transaction, =!> in a failed one; a semicolon added, long statements cut', () => {
  assert.equal(promptLine('orders', false, 'I', 'select 1'), 'orders=> select 1;\r\n');
  assert.equal(promptLine('orders', true, 'I', 'select 1;'), 'orders=# select 1;\r\n');
  assert.equal(promptLine('orders', false, 'T', 'insert into t\nvalues (1)'), 'orders=*> insert into t\r\nvalues (1);\r\n');
  assert.equal(promptLine('orders', false, 'E', 'rollback'), 'orders=!> rollback;\r\n');
  assert.equal(promptLine('orders', false, 'I', `select '${'x'.repeat(30)}'`, 10), 'orders=> select \'xx … (29 more characters)\r\n');
});

test('a result renders as psql\'s aligned table: centred headers, numbers to the right, rows beyond the bound counted', () => {
  const table = renderTable([{ name: 'id', numeric: true }, { name: 'name', numeric: false }], [['1', 'apple'], ['22', 'pear']], 5);
  assert.equal(table, [' id | name', '----+-------', '  1 | apple', ' 22 | pear', '… 3 more rows not recorded', '(5 rows)', '', ''].join('\r\n'));
  assert.equal(renderTable([{ name: 'n', numeric: true }], [['1']], 1, 2), [' n', '---', ' 1', '… 2 more columns not recorded', '(1 row)', '', ''].join('\r\n'));
});

test('cells: NULL is empty, binary values are hex, newlines and escape sequences are shown, not played, long cells cut', () => {
  assert.equal(cellText(null, 0, 40), '');
  assert.equal(cellText(Buffer.from([0xde, 0xad]), 1, 40), '\\xdead');
  assert.equal(cellText(Buffer.from('a\nb'), 0, 40), 'a\\nb');
  assert.equal(cellText(Buffer.from('\x1b[2Jgone'), 0, 40), '\\x1b[2Jgone');
  assert.equal(cellText(Buffer.from('abcdefghij'), 0, 5), 'abcd…');
  assert.equal(printable('bell\x07 c1\x9b tab\t'), 'bell\\x07 c1\\x9b tab    ');
});

test('errors and notices carry severity and SQLSTATE, with detail and hint; COPY shows its bounded lines and tag', () => {
  assert.equal(renderNotice({ S: 'ERROR', V: 'ERROR', C: '42P01', M: 'relation "nope" does not exist' }), 'ERROR:  42P01: relation "nope" does not exist\r\n');
  assert.equal(renderNotice({ V: 'NOTICE', M: 'skipping', D: 'why', H: 'do this' }), 'NOTICE:  skipping\r\nDETAIL:  why\r\nHINT:  do this\r\n');
  assert.equal(renderCopy(['1', '2'], 4, 'COPY 4'), '1\r\n2\r\n… 2 more lines not recorded\r\nCOPY 4\r\n');
});

test('a session transcript: prompt and statement at the start, the table at CommandComplete, errors, COPY out and in; undecodable messages are skipped', () => {
  const recording = new FakeRecording();
  const transcript = new SessionTranscript(recording, { database: 'orders', superuser: false }, { maxRows: 2, maxCellChars: 40, maxColumns: 20, maxStatementChars: 4096 });
  transcript.statement('select id, name from t', 'I');
  assert.deepEqual(recording.typed, ['select id, name from t']);
  transcript.fromServer(packet({ type: 'RowDescription', fields: [field('id', 23), field('name')] }));
  for (const [id, name] of [['1', 'a'], ['2', 'b'], ['3', 'c']]) transcript.fromServer(packet({ type: 'DataRow', values: [Buffer.from(id!), Buffer.from(name!)] }));
  transcript.fromServer(packet({ type: 'CommandComplete', tag: 'SELECT 3' }));
  transcript.fromServer(packet({ type: 'ReadyForQuery', status: 'I' }));
  transcript.statement('insert into t values (4)', 'I');
  transcript.fromServer(packet({ type: 'CommandComplete', tag: 'INSERT 0 1' }));
  transcript.statement('select nope', 'I');
  transcript.fromServer(packet({ type: 'ErrorResponse', fields: { S: 'ERROR', V: 'ERROR', C: '42703', M: 'column "nope" does not exist' } }));
  transcript.fromServer({ type: 'D', payload: Buffer.from([0xff]), raw: Buffer.alloc(0) });
  transcript.statement('copy t to stdout', 'I');
  transcript.fromServer(packet({ type: 'CopyOutResponse', format: 0, columnFormats: [0] }));
  for (const line of ['1\ta\n', '2\tb\n', '3\tc\n']) transcript.fromServer(packet({ type: 'CopyData', data: Buffer.from(line) }));
  transcript.fromServer(packet({ type: 'CopyDone' }));
  transcript.fromServer(packet({ type: 'CommandComplete', tag: 'COPY 3' }));
  transcript.statement('copy t from stdin', 'I');
  transcript.fromServer(packet({ type: 'CopyInResponse', format: 0, columnFormats: [0] }));
  transcript.copyIn(Buffer.from('7\tg\n8\th\n9\ti\n'));
  transcript.fromServer(packet({ type: 'CommandComplete', tag: 'COPY 3' }));
  transcript.end('client closed');
  assert.deepEqual(recording.out, [
    'orders=> select id, name from t;\r\n',
    [' id | name', '----+------', '  1 | a', '  2 | b', '… 1 more row not recorded', '(3 rows)', '', ''].join('\r\n'),
    'orders=> insert into t values (4);\r\n',
    'INSERT 0 1\r\n',
    'orders=> select nope;\r\n',
    'ERROR:  42703: column "nope" does not exist\r\n',
    'orders=> copy t to stdout;\r\n',
    '1    a\r\n2    b\r\n… 1 more line not recorded\r\nCOPY 3\r\n',
    'orders=> copy t from stdin;\r\n',
    '7    g\r\n8    h\r\n… 1 more line not recorded\r\nCOPY 3\r\n',
  ]);
  assert.equal(recording.ended, 'client closed');
});

test('cancel keys: random and positive, mapped back to their session only on its socket, released at its end, bounded', () => {
  let next = 0;
  const draws = [Buffer.from('ffffffff00000001', 'hex'), Buffer.from('ffffffff00000001', 'hex'), Buffer.from('0000000000000002', 'hex')];
  const keys = new CancelKeys({ max: 2, random: () => draws[next++]! });
  const cancelled: string[] = [];
  const first = keys.issue({ socket: 'orders', cancel: () => cancelled.push('first') });
  assert.deepEqual(first, { processId: 0x7fffffff, secretKey: Buffer.from('00000001', 'hex') });
  const second = keys.issue({ socket: 'orders', cancel: () => cancelled.push('second') });
  assert.deepEqual(second, { processId: 1, secretKey: Buffer.from('00000002', 'hex') }, 'a colliding draw is drawn again; a zero process id becomes 1');
  assert.equal(keys.issue({ socket: 'orders', cancel: () => undefined }), undefined, 'a full table issues no key');
  assert.equal(keys.cancel(first!.processId, Buffer.from('00000009', 'hex')), false, 'a wrong secret cancels nothing');
  assert.equal(keys.cancel(first!.processId, first!.secretKey, 'billing'), false, 'a key of another socket cancels nothing');
  assert.equal(keys.cancel(first!.processId, first!.secretKey, 'orders'), true);
  assert.equal(keys.cancel(second!.processId, second!.secretKey), true, 'a plain request names no socket');
  assert.deepEqual(cancelled, ['first', 'second']);
  keys.release(first!);
  assert.equal(keys.size, 1);
  assert.equal(keys.cancel(first!.processId, first!.secretKey), false, 'a released key is unknown');
});

test('the front door reads a plain CancelRequest, waits for the rest of one, and leaves other first bytes alone', () => {
  const request = encodeStartup({ type: 'CancelRequest', processId: 4242, secretKey: Buffer.from('0a0b0c0d', 'hex') });
  assert.deepEqual(postgresCancelRequest(request), { processId: 4242, secretKey: Buffer.from('0a0b0c0d', 'hex') });
  assert.equal(postgresCancelRequest(request.subarray(0, 10)), 'incomplete');
  assert.equal(postgresCancelRequest(encodeStartup({ type: 'SSLRequest' })), undefined);
  assert.equal(postgresCancelRequest(Buffer.from([0x16, 3, 1])), undefined);
});
