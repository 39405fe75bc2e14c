// readMessages/writeMessage: newline-delimited JSON framing with schema checks and a line cap.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { z } from 'zod';
import { PosternError } from '../../src/errors.js';
import { readMessages, writeMessage } from '../../src/tunnel/ndjson.js';
import { connectorMessage, edgeMessage } from '../../src/tunnel/protocol.js';

const schema = z.object({ n: z.number() });

function reader(maxLine = 1_000) {
  const source = new PassThrough();
  const messages: { n: number }[] = [];
  const errors: PosternError[] = [];
  readMessages(source, schema, maxLine, (m) => messages.push(m), (e) => errors.push(e));
  return { source, messages, errors };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

test('ndjson: a message split across chunks is delivered once, when complete', async () => {
  const { source, messages, errors } = reader();
  source.write('{"n"');
  source.write(':4');
  await settle();
  assert.deepEqual(messages, []);
  source.write('2}\n');
  await settle();
  assert.deepEqual(messages, [{ n: 42 }]);
  assert.deepEqual(errors, []);
});

test('ndjson: several messages in one chunk, blank lines skipped, tail kept', async () => {
  const { source, messages, errors } = reader();
  source.write('{"n":1}\n\n  \n{"n":2}\n{"n":3}\n{"n":');
  await settle();
  assert.deepEqual(messages, [{ n: 1 }, { n: 2 }, { n: 3 }]);
  source.write('4}\n');
  await settle();
  assert.deepEqual(messages.map((m) => m.n), [1, 2, 3, 4]);
  assert.deepEqual(errors, []);
});

test('ndjson: a multi-byte character split between chunks survives', async () => {
  const source = new PassThrough();
  const got: string[] = [];
  readMessages(source, z.object({ s: z.string() }), 100, (m) => got.push(m.s), assert.fail);
  const bytes = Buffer.from('{"s":"héllo ✓"}\n', 'utf8');
  const cut = bytes.indexOf(0xc3) + 1;
  source.write(bytes.subarray(0, cut));
  source.write(bytes.subarray(cut));
  await settle();
  assert.deepEqual(got, ['héllo ✓']);
});

test('ndjson: invalid JSON is a bad_request error, earlier messages still delivered', async () => {
  const { source, messages, errors } = reader();
  source.write('{"n":1}\nnot json\n{"n":2}\n');
  await settle();
  assert.deepEqual(messages, [{ n: 1 }]);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof PosternError);
  assert.equal(errors[0]!.code, 'bad_request');
  assert.match(errors[0]!.message, /not JSON/);
  assert.ok(errors[0]!.cause instanceof SyntaxError);
});

test('ndjson: valid JSON that fails the schema is a bad_request error', async () => {
  const { source, messages, errors } = reader();
  source.write('{"n":"one"}\n');
  await settle();
  assert.deepEqual(messages, []);
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.code, 'bad_request');
  assert.match(errors[0]!.message, /^control message rejected: /);
});

test('ndjson: a line longer than the cap is an error before its newline arrives', async () => {
  const { source, messages, errors } = reader(64);
  source.write('{"n":1}\n' + 'x'.repeat(40));
  await settle();
  assert.equal(errors.length, 0);
  source.write('y'.repeat(40));
  await settle();
  assert.deepEqual(messages, [{ n: 1 }]);
  assert.ok(errors.length >= 1);
  assert.equal(errors[0]!.code, 'bad_request');
  assert.match(errors[0]!.message, /longer than 64 bytes/);
});

test('ndjson: the protocol schemas accept hello/welcome/drain and reject unknown types', async () => {
  const source = new PassThrough();
  const got: unknown[] = [];
  const errors: PosternError[] = [];
  readMessages(source, connectorMessage, 1_000, (m) => got.push(m), (e) => errors.push(e));
  writeMessage(source, { type: 'hello', connectorId: 'c1', version: '1', sockets: [{ name: 'web', type: 'http' }] });
  writeMessage(source, { type: 'drain' });
  writeMessage(source, { type: 'welcome', edgeId: 'e', accepted: [], rejected: [] });
  await settle();
  assert.deepEqual(got, [
    { type: 'hello', connectorId: 'c1', version: '1', sockets: [{ name: 'web', type: 'http' }] },
    { type: 'drain' },
  ]);
  assert.equal(errors.length, 1);
  assert.equal(edgeMessage.safeParse({ type: 'welcome', edgeId: 'e', accepted: ['a'], rejected: [{ name: 'b', reason: 'r' }] }).success, true);
});

test('protocol: a hello may announce ssh sockets; unknown socket types are refused', () => {
  const hello = (type: string) => connectorMessage.safeParse({ type: 'hello', connectorId: 'c1', version: '1', sockets: [{ name: 'prod', type }] }).success;
  assert.deepEqual(['http', 'https', 'tls', 'ssh', 'sshd', ''].map(hello), [true, true, true, true, false, false]);
});

test('writeMessage: one JSON line per message, nothing after end or destroy', async () => {
  const sink = new PassThrough();
  let text = '';
  sink.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  writeMessage(sink, { a: 1 });
  writeMessage(sink, { b: 'line\nbreak' });
  sink.end();
  writeMessage(sink, { c: 3 });
  await settle();
  assert.equal(text, '{"a":1}\n{"b":"line\\nbreak"}\n');
  const destroyed = new PassThrough();
  destroyed.destroy();
  assert.doesNotThrow(() => writeMessage(destroyed, { d: 4 }));
});
