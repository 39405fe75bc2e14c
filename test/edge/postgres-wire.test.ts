// The PostgreSQL wire layer on its own: every message both ways round-trips, the decoder gives
// the same messages at every split point, each way a stream can break the protocol is a typed
// PgProtocolError, and a seeded bounded fuzz run finds nothing else.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commandTagRows, commandTagVerb, decodeBackend, encodeBackend, errorResponse, SqlState } from '../../src/pgwire/backend.js';
import type { BackendMessage } from '../../src/pgwire/backend.js';
import { decodeFrontend, decodePasswordMessage, decodeSaslInitialResponse, encodeFrontend, encodePasswordMessage, encodeSaslInitialResponse, encodeSaslResponse } from '../../src/pgwire/frontend.js';
import type { FrontendMessage } from '../../src/pgwire/frontend.js';
import { MAX_SMALL_MESSAGE_LENGTH, MAX_STARTUP_LENGTH, PgDecoder, PgProtocolError, PROTOCOL_3_0, decodeStartup, encodeStartup } from '../../src/pgwire/wire.js';
import type { PgDecoderOptions, PgPacket, StartupPacket } from '../../src/pgwire/wire.js';

const FRONTEND: FrontendMessage[] = [
  { type: 'Query', sql: 'SELECT \'é\'; SELECT 2' },
  { type: 'Parse', name: 's1', sql: 'SELECT $1::int', parameterTypes: [23, 4294967295] },
  { type: 'Bind', portal: '', statement: 's1', parameterFormats: [0, 1], parameters: [Buffer.from('42'), null, Buffer.alloc(0)], resultFormats: [1] },
  { type: 'Describe', target: 'S', name: 's1' },
  { type: 'Describe', target: 'P', name: '' },
  { type: 'Execute', portal: '', maxRows: 100 },
  { type: 'Close', target: 'P', name: 'p1' },
  { type: 'Sync' },
  { type: 'Flush' },
  { type: 'CopyData', data: Buffer.from('1\tone\n') },
  { type: 'CopyDone' },
  { type: 'CopyFail', message: 'client gave up' },
  { type: 'FunctionCall', functionOid: 1598, argumentFormats: [0], arguments: [Buffer.from('x'), null], resultFormat: 0 },
  { type: 'AuthenticationResponse', data: Buffer.from('secret\0') },
  { type: 'Terminate' },
];

const BACKEND: BackendMessage[] = [
  { type: 'AuthenticationOk' },
  { type: 'AuthenticationCleartextPassword' },
  { type: 'AuthenticationMD5Password', salt: Buffer.from([1, 2, 3, 4]) },
  { type: 'AuthenticationGSS' },
  { type: 'AuthenticationGSSContinue', data: Buffer.from('gss') },
  { type: 'AuthenticationSSPI' },
  { type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] },
  { type: 'AuthenticationSASLContinue', data: Buffer.from('r=abc,s=def,i=4096') },
  { type: 'AuthenticationSASLFinal', data: Buffer.from('v=xyz') },
  { type: 'ParameterStatus', name: 'server_version', value: '16.4' },
  { type: 'BackendKeyData', processId: 4242, secretKey: Buffer.from([9, 8, 7, 6]) },
  { type: 'BackendKeyData', processId: 7, secretKey: Buffer.alloc(32, 5) },
  { type: 'ReadyForQuery', status: 'I' },
  { type: 'ReadyForQuery', status: 'T' },
  { type: 'ReadyForQuery', status: 'E' },
  { type: 'RowDescription', fields: [{ name: 'id', tableOid: 16384, columnNumber: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }, { name: 'note', tableOid: 0, columnNumber: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 1 }] },
  { type: 'DataRow', values: [Buffer.from('1'), null, Buffer.alloc(0)] },
  { type: 'CommandComplete', tag: 'INSERT 0 5' },
  { type: 'ErrorResponse', fields: { S: 'ERROR', V: 'ERROR', C: '42501', M: 'permission denied', D: 'detail', H: 'hint', P: '8' } },
  { type: 'NoticeResponse', fields: { S: 'NOTICE', V: 'NOTICE', C: '00000', M: 'hello' } },
  { type: 'CopyInResponse', format: 0, columnFormats: [0, 0] },
  { type: 'CopyOutResponse', format: 1, columnFormats: [1] },
  { type: 'CopyBothResponse', format: 0, columnFormats: [] },
  { type: 'CopyData', data: Buffer.from('row\n') },
  { type: 'CopyDone' },
  { type: 'ParseComplete' },
  { type: 'BindComplete' },
  { type: 'CloseComplete' },
  { type: 'EmptyQueryResponse' },
  { type: 'PortalSuspended' },
  { type: 'NoData' },
  { type: 'ParameterDescription', typeOids: [23, 25] },
  { type: 'NotificationResponse', processId: 12, channel: 'orders', payload: 'changed' },
  { type: 'FunctionCallResponse', result: Buffer.from('ok') },
  { type: 'FunctionCallResponse', result: null },
  { type: 'NegotiateProtocolVersion', newestMinor: 0, unrecognizedOptions: ['_pq_.compression'] },
];

const STARTUP: StartupPacket = { type: 'StartupMessage', major: 3, minor: 0, parameters: { user: 'ana@corp.com', database: 'orders', application_name: 'psql', options: '-c search_path=x' } };

type Event = { startup: StartupPacket } | { message: string; payload: string } | { encryption: boolean };

function decodeAll(options: PgDecoderOptions, input: Buffer, cuts: number[]): { events: Event[]; packets: PgPacket[]; error?: PgProtocolError } {
  const events: Event[] = [];
  const packets: PgPacket[] = [];
  const decoder = new PgDecoder(options, {
    startup: (packet) => events.push({ startup: packet }),
    message: (packet) => {
      packets.push(packet);
      events.push({ message: packet.type, payload: packet.payload.toString('hex') });
    },
  });
  try {
    let at = 0;
    for (const cut of [...cuts, input.length]) {
      decoder.push(input.subarray(at, cut));
      at = cut;
    }
    decoder.finish();
    return { events, packets };
  } catch (err) {
    assert.ok(err instanceof PgProtocolError, String(err));
    return { events, packets, error: err };
  }
}

const frontendSide: PgDecoderOptions = { side: 'frontend' };
const backendSide: PgDecoderOptions = { side: 'backend' };

test('postgres wire: every frontend message round-trips through the decoder, raw bytes intact', () => {
  const input = Buffer.concat([encodeStartup(STARTUP), ...FRONTEND.map(encodeFrontend)]);
  const { events, packets, error } = decodeAll(frontendSide, input, []);
  assert.equal(error, undefined);
  assert.deepEqual(events[0], { startup: STARTUP });
  assert.deepEqual(packets.map((p) => decodeFrontend(p)), FRONTEND);
  assert.deepEqual(Buffer.concat([encodeStartup(STARTUP), ...packets.map((p) => p.raw)]), input);
});

test('postgres wire: every backend message round-trips through the decoder', () => {
  const input = Buffer.concat(BACKEND.map(encodeBackend));
  const { packets, error } = decodeAll(backendSide, input, []);
  assert.equal(error, undefined);
  assert.deepEqual(packets.map((p) => decodeBackend(p)), BACKEND);
});

test('postgres wire: the decoder gives the same messages at every split point and byte by byte', () => {
  for (const [options, input] of [
    [frontendSide, Buffer.concat([encodeStartup({ type: 'SSLRequest' }), encodeStartup(STARTUP), ...FRONTEND.map(encodeFrontend)])],
    [backendSide, Buffer.concat(BACKEND.map(encodeBackend))],
  ] as const) {
    const whole = decodeAll(options, input, []);
    assert.equal(whole.error, undefined);
    for (let cut = 1; cut < input.length; cut++) assert.deepEqual(decodeAll(options, input, [cut]).events, whole.events, `${options.side} split at ${cut}`);
    const bytewise = decodeAll(options, input, Array.from({ length: input.length - 1 }, (_, i) => i + 1));
    assert.deepEqual(bytewise.events, whole.events);
    assert.deepEqual(Buffer.concat(bytewise.packets.map((p) => p.raw)), Buffer.concat(whole.packets.map((p) => p.raw)));
  }
});

test('postgres wire: a message whole in one chunk is handed on without a copy', () => {
  const chunk = Buffer.concat([encodeFrontend({ type: 'Query', sql: 'SELECT 1' }), encodeFrontend({ type: 'Sync' })]);
  const { packets } = decodeAll({ side: 'frontend' }, Buffer.concat([encodeStartup(STARTUP), chunk]), [encodeStartup(STARTUP).length]);
  assert.equal(packets.length, 2);
  assert.equal(packets[0]!.raw.buffer, packets[1]!.raw.buffer, 'both are views of the one chunk');
});

test('postgres wire: startup packets — SSLRequest, GSSENCRequest, CancelRequest (3.0 and 3.2 keys), StartupMessage', () => {
  for (const packet of [
    { type: 'SSLRequest' }, { type: 'GSSENCRequest' },
    { type: 'CancelRequest', processId: 4242, secretKey: Buffer.from([1, 2, 3, 4]) },
    { type: 'CancelRequest', processId: 1, secretKey: Buffer.alloc(32, 7) },
    STARTUP,
    { type: 'StartupMessage', major: 3, minor: 2, parameters: { user: 'u' } },
  ] as StartupPacket[]) {
    assert.deepEqual(decodeStartup(encodeStartup(packet).subarray(4)), packet);
  }
  assert.equal(encodeStartup({ type: 'SSLRequest' }).toString('hex'), '0000000804d2162f', 'the bytes libpq sends');
  assert.equal(encodeStartup(STARTUP).readUInt32BE(4), PROTOCOL_3_0);
  // After an SSLRequest the client may go on in the clear with its StartupMessage; after a CancelRequest nothing may follow.
  const afterCancel = decodeAll(frontendSide, Buffer.concat([encodeStartup({ type: 'CancelRequest', processId: 1, secretKey: Buffer.alloc(4) }), encodeFrontend({ type: 'Sync' })]), []);
  assert.equal(afterCancel.error?.reason, 'unexpected_message');
});

test('postgres wire: malformed startup packets are typed protocol errors', () => {
  const length = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
  assert.equal(decodeAll(frontendSide, length(MAX_STARTUP_LENGTH + 1), []).error?.reason, 'message_too_large', 'refused on its length alone');
  assert.equal(decodeAll(frontendSide, length(0xffffffff), []).error?.reason, 'message_too_large');
  assert.equal(decodeAll({ side: 'frontend', maxStartupLength: 64 }, encodeStartup({ ...STARTUP, parameters: { user: 'x'.repeat(80) } }), []).error?.reason, 'message_too_large');
  assert.equal(decodeAll(frontendSide, length(4), []).error?.reason, 'bad_length');
  const startup = encodeStartup(STARTUP);
  assert.equal(decodeAll(frontendSide, startup.subarray(0, 3), []).error?.reason, 'truncated_message');
  assert.equal(decodeAll(frontendSide, startup.subarray(0, startup.length - 1), []).error?.reason, 'truncated_message');
  const v2 = Buffer.concat([length(12), Buffer.from([0, 2, 0, 0]), Buffer.from('user')]);
  assert.equal(decodeAll(frontendSide, v2, []).error?.reason, 'unsupported_protocol');
  const unterminated = Buffer.concat([length(13), Buffer.from([0, 3, 0, 0]), Buffer.from('user\0')]);
  assert.equal(decodeAll(frontendSide, unterminated, []).error?.reason, 'bad_message');
  const twice = encodeStartup(STARTUP).toString('latin1').replace('database\0orders', 'user\0xxxxxxxxxxx');
  assert.equal(decodeAll(frontendSide, Buffer.from(twice, 'latin1'), []).error?.reason, 'bad_message');
  const shortKey = Buffer.concat([length(14), Buffer.from([0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 9, 9])]);
  assert.equal(decodeAll(frontendSide, shortKey, []).error?.reason, 'bad_message');
  const sslWithBody = Buffer.concat([length(9), Buffer.from([0x04, 0xd2, 0x16, 0x2f, 0])]);
  assert.equal(decodeAll(frontendSide, sslWithBody, []).error?.reason, 'bad_message');
});

test('postgres wire: oversized lengths, unknown types and truncated typed messages are typed protocol errors', () => {
  const head = (type: string, length: number) => {
    const b = Buffer.alloc(5);
    b[0] = type.charCodeAt(0);
    b.writeUInt32BE(length, 1);
    return b;
  };
  const started = encodeStartup(STARTUP);
  const afterStartup = (bytes: Buffer, options: PgDecoderOptions = frontendSide) => decodeAll(options, Buffer.concat([started, bytes]), []);
  assert.equal(afterStartup(head('Q', 0x7fffffff)).error?.reason, 'message_too_large');
  assert.equal(afterStartup(head('d', 1025), { side: 'frontend', maxMessageLength: 1024 }).error?.reason, 'message_too_large');
  assert.equal(afterStartup(head('d', 1024), { side: 'frontend', maxMessageLength: 1024 }).error?.reason, 'truncated_message', 'at the limit it is read');
  assert.equal(afterStartup(head('S', MAX_SMALL_MESSAGE_LENGTH + 1)).error?.reason, 'message_too_large', 'a Sync is small');
  assert.equal(afterStartup(head('Q', 3)).error?.reason, 'bad_length');
  assert.equal(afterStartup(head('Z', 5)).error?.reason, 'unknown_message_type', 'a backend type from the client');
  assert.equal(afterStartup(Buffer.from([0x00, 0, 0, 0, 4])).error?.reason, 'unknown_message_type');
  assert.equal(decodeAll(backendSide, head('Q', 10), []).error?.reason, 'unknown_message_type', 'a frontend type from the server');
  assert.equal(decodeAll(backendSide, head('D', 0x40000000), []).error?.reason, 'message_too_large', 'a DataRow over 1 GiB');
  assert.equal(afterStartup(encodeFrontend({ type: 'Query', sql: 'SELECT 1' }).subarray(0, 7)).error?.reason, 'truncated_message');
  assert.equal(afterStartup(head('Q', 4).subarray(0, 3)).error?.reason, 'truncated_message');
});

test('postgres wire: payloads that lie about their contents are bad_message, never a RangeError', () => {
  const bad: [string, number[]][] = [
    ['B', [0, 0, 0, 1, 0]], // Bind cut short in its format count
    ['B', [0, 0, 0xff, 0xff]], // negative count
    ['B', [0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 1]], // a parameter longer than the message
    ['D', [0x58, 0]], // Describe of neither S nor P
    ['E', [0, 0, 0]], // Execute without its row count
    ['Q', [0x61]], // no NUL terminator
    ['Q', [0x61, 0, 0x62]], // bytes after the last field
    ['S', [1]], // Sync with a body
  ];
  for (const [type, bytes] of bad) {
    assert.throws(() => decodeFrontend({ type, payload: Buffer.from(bytes) }), (err: unknown) => err instanceof PgProtocolError && err.reason === 'bad_message', `${type} ${bytes.join(',')}`);
  }
  const backendBad: [string, number[]][] = [['R', [0, 0, 0, 99]], ['R', [0, 0, 0, 5, 1]], ['Z', [0x58]], ['K', [0, 0, 0, 1, 2]], ['T', [0, 1, 0x61, 0]], ['E', [0x43, 0x61]], ['v', [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]]];
  for (const [type, bytes] of backendBad) {
    assert.throws(() => decodeBackend({ type, payload: Buffer.from(bytes) }), (err: unknown) => err instanceof PgProtocolError && err.reason === 'bad_message', `${type} ${bytes.join(',')}`);
  }
});

test('postgres wire: authentication responses — password, SASL initial and continuing responses', () => {
  const read = (raw: Buffer) => decodeFrontend(decodeAll(frontendSide, Buffer.concat([encodeStartup(STARTUP), raw]), []).packets[0]!);
  const password = read(encodePasswordMessage('hunter2'));
  assert.ok(password.type === 'AuthenticationResponse');
  assert.equal(decodePasswordMessage(password.data), 'hunter2');
  const initial = read(encodeSaslInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=abc')));
  assert.ok(initial.type === 'AuthenticationResponse');
  assert.deepEqual(decodeSaslInitialResponse(initial.data), { mechanism: 'SCRAM-SHA-256', response: Buffer.from('n,,n=,r=abc') });
  const none = read(encodeSaslInitialResponse('SCRAM-SHA-256', null));
  assert.ok(none.type === 'AuthenticationResponse');
  assert.equal(decodeSaslInitialResponse(none.data).response, null);
  const next = read(encodeSaslResponse(Buffer.from('c=biws,r=abc,p=xyz')));
  assert.ok(next.type === 'AuthenticationResponse');
  assert.equal(next.data.toString(), 'c=biws,r=abc,p=xyz');
});

test('postgres wire: the server\'s one-byte answer to an SSLRequest, then typed messages', () => {
  for (const [byte, accepted] of [['S', true], ['N', false], ['G', true]] as const) {
    const seen: Event[] = [];
    const decoder = new PgDecoder(backendSide, { message: (p) => seen.push({ message: p.type, payload: p.payload.toString('hex') }), encryptionResponse: (yes) => seen.push({ encryption: yes }) });
    decoder.expectEncryptionResponse();
    decoder.push(Buffer.concat([Buffer.from(byte), encodeBackend({ type: 'ReadyForQuery', status: 'I' })]));
    decoder.finish();
    assert.deepEqual(seen, [{ encryption: accepted }, { message: 'Z', payload: '49' }]);
  }
  const decoder = new PgDecoder(backendSide, { message: () => undefined });
  decoder.expectEncryptionResponse();
  assert.throws(() => decoder.push(Buffer.from('E')), (err: unknown) => err instanceof PgProtocolError && err.reason === 'unexpected_message');
  assert.throws(() => new PgDecoder(frontendSide, { message: () => undefined }).expectEncryptionResponse(), PgProtocolError);
});

test('postgres wire: CommandComplete tags give their rows; the proxy\'s own ErrorResponses carry SQLSTATE and severity', () => {
  const tags: [string, number | undefined, string][] = [
    ['INSERT 0 5', 5, 'INSERT'], ['SELECT 3', 3, 'SELECT'], ['UPDATE 0', 0, 'UPDATE'], ['DELETE 12', 12, 'DELETE'], ['MERGE 2', 2, 'MERGE'],
    ['FETCH 10', 10, 'FETCH'], ['MOVE 1', 1, 'MOVE'], ['COPY 1000000', 1000000, 'COPY'], ['CREATE TABLE', undefined, 'CREATE TABLE'], ['BEGIN', undefined, 'BEGIN'], ['SET', undefined, 'SET'],
  ];
  for (const [tag, rows, verb] of tags) {
    assert.equal(commandTagRows(tag), rows, tag);
    assert.equal(commandTagVerb(tag), verb, tag);
  }
  const refusal = decodeBackend({ type: 'E', payload: errorResponse({ severity: 'ERROR', code: SqlState.insufficientPrivilege, message: 'postern: DELETE writes rows (read-only by corp/db#1)', hint: 'ask for write access' }).subarray(5) });
  assert.deepEqual(refusal, { type: 'ErrorResponse', fields: { S: 'ERROR', V: 'ERROR', C: '42501', M: 'postern: DELETE writes rows (read-only by corp/db#1)', H: 'ask for write access' } });
  const kill = decodeBackend({ type: 'E', payload: errorResponse({ severity: 'FATAL', code: SqlState.adminShutdown, message: 'postern: session killed by admin' }).subarray(5) });
  assert.ok(kill.type === 'ErrorResponse' && kill.fields.S === 'FATAL' && kill.fields.C === '57P01');
  assert.equal(SqlState.invalidAuthorization, '28000');
  assert.throws(() => errorResponse({ severity: 'ERROR', code: '4250', message: 'x' }), PgProtocolError);
  assert.throws(() => encodeFrontend({ type: 'Query', sql: 'SELECT 1\0; DELETE FROM t' }), PgProtocolError, 'a NUL cannot smuggle a second statement');
});

/** mulberry32: small, fast, and the same sequence for the same seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fuzz(seed: number, iterations: number, maxMs: number): { inputs: number; errors: number; messages: number } {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const result = { inputs: 0, errors: 0, messages: 0 };
  const deadline = Date.now() + maxMs;
  const limits = { maxMessageLength: 4096, maxStartupLength: 512 };
  for (let i = 0; i < iterations && Date.now() < deadline; i++) {
    const side = rand() < 0.5 ? 'frontend' : 'backend';
    const valid = side === 'frontend'
      ? Buffer.concat([encodeStartup(STARTUP), ...Array.from({ length: 1 + int(6) }, () => encodeFrontend(FRONTEND[int(FRONTEND.length)]!))])
      : Buffer.concat(Array.from({ length: 1 + int(6) }, () => encodeBackend(BACKEND[int(BACKEND.length)]!)));
    const input = rand() < 0.2 ? Buffer.from(Array.from({ length: int(200) }, () => int(256))) : Buffer.from(valid);
    for (let m = 0, n = int(4); m < n && input.length > 0; m++) {
      const at = int(input.length);
      if (rand() < 0.5) input[at] = int(256);
      else if (at + 4 <= input.length) input.writeUInt32BE(rand() < 0.5 ? int(0x100000000) : int(64), at);
    }
    result.inputs++;
    const fail = (what: string) => new Error(`postgres wire fuzz seed ${seed} input ${i} (${side}): ${what}; input ${input.toString('hex')}`);
    const decoder = new PgDecoder({ side, ...limits }, {
      startup: () => result.messages++,
      message: (packet) => {
        result.messages++;
        if (packet.payload.length > limits.maxMessageLength) throw fail(`a payload of ${packet.payload.length} bytes`);
        if (packet.raw.length !== packet.payload.length + 5) throw fail('raw and payload disagree');
        try {
          if (side === 'frontend') decodeFrontend(packet);
          else decodeBackend(packet);
        } catch (err) {
          if (!(err instanceof PgProtocolError)) throw fail(`decoding threw ${String(err)}`);
        }
      },
    });
    try {
      for (let at = 0; at < input.length;) {
        const size = 1 + int(48);
        decoder.push(input.subarray(at, at + size));
        at += size;
      }
      decoder.finish();
    } catch (err) {
      if (!(err instanceof PgProtocolError)) throw err instanceof Error && err.message.startsWith('postgres wire fuzz') ? err : fail(`threw ${String(err)}`);
      result.errors++;
    }
  }
  return result;
}

test('postgres wire: fuzzing the decoder and the codecs finds nothing but protocol errors', () => {
  for (const seed of [1, 2, Date.now() >>> 0]) {
    const result = fuzz(seed, 5000, 10_000);
    assert.ok(result.inputs > 0, `seed ${seed}`);
    assert.ok(result.errors > 0 && result.messages > 0, `seed ${seed}: both outcomes were exercised (${JSON.stringify(result)})`);
  }
});
