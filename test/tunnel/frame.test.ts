// The frame layer against its contract, beside frame-decoder.test.ts: stream heads keep every
// latin1 byte and refuse what they cannot carry; the decoder hands DATA on as pieces that add
// up to the payload whatever the chunking, and refuses a bad head before its payload arrives.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  FLAG_END, FLAG_OPEN, FRAME_HEAD_BYTES, FrameDecoder, FrameError, FrameType, MAX_FRAME_PAYLOAD,
  decodeHeaders, encodeFrame, encodeHeaders, frameHead,
} from '../../src/tunnel/frame.js';
import type { FrameErrorReason, MuxHeaders } from '../../src/tunnel/frame.js';

const isFrameError = (reason: FrameErrorReason) => (err: unknown) => err instanceof FrameError && err.reason === reason;

interface Seen {
  /** DATA pieces as delivered, per frame: [stream, pieces, end flag of each piece]. */
  data: { stream: number; pieces: Buffer[]; ends: boolean[] }[];
  frames: { type: number; flags: number; stream: number; payload: string }[];
}

/** A decoder that records what it hands on; DATA pieces are grouped by the frame they belong to. */
function recorder(frameBoundaries: number[]) {
  const seen: Seen = { data: [], frames: [] };
  let current: Seen['data'][number] | undefined;
  let dataIndex = 0;
  const decoder = new FrameDecoder({
    data: (stream, piece, end) => {
      if (!current) current = { stream, pieces: [], ends: [] };
      current.pieces.push(Buffer.from(piece));
      current.ends.push(end);
      // The caller tells how long each DATA frame is, so a frame's last piece is known here.
      const total = current.pieces.reduce((n, p) => n + p.length, 0);
      if (total === frameBoundaries[dataIndex]) {
        seen.data.push(current);
        current = undefined;
        dataIndex++;
      }
    },
    frame: (type, flags, stream, payload) => void seen.frames.push({ type, flags, stream, payload: payload.toString('hex') }),
  });
  return { decoder, seen };
}

const dataPayload = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff));
const input = Buffer.concat([
  encodeFrame(FrameType.headers, FLAG_OPEN, 1, encodeHeaders({ ':path': '/x', 'x-a': ['1', '2'] })),
  encodeFrame(FrameType.data, 0, 1, dataPayload),
  encodeFrame(FrameType.window, 0, 0, Buffer.from([0, 1, 0, 0])),
  encodeFrame(FrameType.data, FLAG_END, 3, dataPayload.subarray(0, 17)),
  encodeFrame(FrameType.data, FLAG_END, 1, Buffer.alloc(0)),
  encodeFrame(FrameType.ping, 0, 0, Buffer.alloc(8, 9)),
]);
const dataLengths = [300, 17, 0];

function checkDecoded(seen: Seen, what: string): void {
  assert.deepEqual(seen.frames.map((f) => [f.type, f.flags, f.stream]), [[FrameType.headers, FLAG_OPEN, 1], [FrameType.window, 0, 0], [FrameType.ping, 0, 0]], what);
  assert.equal(seen.frames[2]!.payload, '09'.repeat(8), what);
  assert.equal(seen.data.length, 3, what);
  const [first, second, empty] = seen.data as [Seen['data'][number], Seen['data'][number], Seen['data'][number]];
  assert.equal(first.stream, 1);
  assert.ok(Buffer.concat(first.pieces).equals(dataPayload), `${what}: the pieces add up to the payload`);
  assert.ok(first.ends.every((end) => !end), `${what}: a frame without END never says end`);
  assert.equal(second.stream, 3);
  assert.ok(Buffer.concat(second.pieces).equals(dataPayload.subarray(0, 17)), what);
  assert.deepEqual(second.ends, [...second.ends.slice(0, -1).map(() => false), true], `${what}: only the last piece of an END frame says end`);
  assert.deepEqual([empty.stream, empty.pieces.map((p) => p.length), empty.ends], [1, [0], [true]], `${what}: a zero-length END frame is one empty piece`);
}

test('frame: a stream head round-trips repeated names, empty values and every latin1 byte', () => {
  const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');
  const head = { ':status': '204', 'set-cookie': ['a=1', '', 'c=3'], empty: '', bytes: everyByte, 'caf\u00e9': 'na\u00efve\u00ff' };
  const decoded = decodeHeaders(encodeHeaders(head));
  assert.deepEqual({ ...decoded }, head);
  const proto = decodeHeaders(encodeHeaders(JSON.parse('{"__proto__":"x"}') as Record<string, string>));
  assert.equal(Object.getPrototypeOf(proto), null, 'a header named __proto__ is a header, not a prototype');
  assert.equal(proto['__proto__'], 'x');
  assert.deepEqual({ ...decodeHeaders(encodeHeaders({})) }, {});
  // The longest name and value the encoding can carry.
  const long = { ['n'.repeat(255)]: 'v'.repeat(0xffff) };
  assert.deepEqual({ ...decodeHeaders(encodeHeaders(long)) }, long);
});

test('frame: a head the encoding cannot carry is refused, never narrowed into other bytes', () => {
  assert.throws(() => encodeHeaders({ '': 'v' }), isFrameError('bad_headers'));
  assert.throws(() => encodeHeaders({ ['n'.repeat(256)]: 'v' }), isFrameError('bad_headers'));
  assert.throws(() => encodeHeaders({ a: 'v'.repeat(0x10000) }), isFrameError('bad_headers'));
  assert.throws(() => encodeHeaders({ a: Array.from({ length: 0x10000 }, () => '') }), isFrameError('bad_headers'));
  // A character above U+00FF has no latin1 byte; writing its low byte would turn "\u0161dmin" into "admin".
  const beyondLatin1: MuxHeaders[] = [{ 'x-auth-email': '\u0161dmin@corp.example' }, { 'x-v': 'a\u010d\u010ab' }, { '\u0101b': 'v' }];
  for (const head of beyondLatin1) {
    let encoded: Buffer;
    try {
      encoded = encodeHeaders(head);
    } catch (err) {
      assert.ok(isFrameError('bad_headers')(err), String(err));
      continue;
    }
    assert.fail(`${JSON.stringify(head)} was encoded, and comes back as ${JSON.stringify({ ...decodeHeaders(encoded) })}`);
  }
});

test('frame: each malformed head is a bad_headers frame error', () => {
  const one = encodeHeaders({ ab: 'xyz' });
  const malformed: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['half a count', Buffer.from([0])],
    ['a count with no headers', Buffer.from([0, 1])],
    ['a zero-length name', Buffer.from([0, 1, 0, 0, 0])],
    ['a name cut short', Buffer.from([0, 1, 5, 97, 98])],
    ['no value length', Buffer.from([0, 1, 2, 97, 98])],
    ['half a value length', Buffer.from([0, 1, 2, 97, 98, 0])],
    ['a value cut short', one.subarray(0, one.length - 1)],
    ['bytes after the last header', Buffer.concat([one, Buffer.from([0])])],
    ['a count above what follows', Buffer.concat([Buffer.from([0, 2]), one.subarray(2)])],
  ];
  for (const [what, payload] of malformed) assert.throws(() => decodeHeaders(payload), isFrameError('bad_headers'), what);
});

test('frame: split at every byte, and at every pair of points, the decoder hands on the same frames', () => {
  const whole = recorder(dataLengths);
  whole.decoder.push(input);
  whole.decoder.finish();
  checkDecoded(whole.seen, 'in one chunk');
  for (let i = 1; i < input.length; i++) {
    for (let j = i; j < input.length; j += 7) {
      const r = recorder(dataLengths);
      r.decoder.push(input.subarray(0, i));
      r.decoder.push(input.subarray(i, j));
      r.decoder.push(input.subarray(j));
      r.decoder.finish();
      checkDecoded(r.seen, `split at ${i} and ${j}`);
    }
  }
  const bytewise = recorder(dataLengths);
  for (let i = 0; i < input.length; i++) bytewise.decoder.push(input.subarray(i, i + 1));
  bytewise.decoder.finish();
  checkDecoded(bytewise.seen, 'byte by byte');
  assert.equal(bytewise.seen.data[0]!.pieces.length, dataPayload.length, 'DATA is handed on as it arrives, not collected');
});

test('frame: a payload of exactly the limit is a frame; one byte more is refused as soon as the head is complete', () => {
  const full = Buffer.alloc(MAX_FRAME_PAYLOAD, 1);
  for (const type of [FrameType.data, FrameType.headers]) {
    const r = recorder([MAX_FRAME_PAYLOAD]);
    r.decoder.push(encodeFrame(type, 0, 1, full));
    r.decoder.finish();
    assert.equal(r.seen.data.length + r.seen.frames.length, 1, `type ${type}`);
  }
  for (const type of [FrameType.data, FrameType.headers, FrameType.ping]) {
    const r = recorder([]);
    const head = frameHead(type, 0, 1, MAX_FRAME_PAYLOAD + 1);
    // Everything but the last head byte is accepted: the length is only known once the head is whole.
    for (let i = 0; i < FRAME_HEAD_BYTES - 1; i++) r.decoder.push(head.subarray(i, i + 1));
    assert.throws(() => r.decoder.push(head.subarray(FRAME_HEAD_BYTES - 1)), isFrameError('frame_too_large'), `type ${type}`);
    assert.deepEqual(r.seen, { data: [], frames: [] });
  }
  const after = recorder([]);
  assert.throws(() => after.decoder.push(Buffer.concat([encodeFrame(FrameType.ping, 0, 0, Buffer.alloc(8)), frameHead(FrameType.data, 0, 1, 0xffffffff)])), isFrameError('frame_too_large'));
  assert.equal(after.seen.frames.length, 1, 'the frame before the bad one was handed on');
});

test('frame: an unknown frame type is refused', () => {
  for (const type of [6, 9, 0x7f, 0xff]) {
    const r = recorder([]);
    assert.throws(() => r.decoder.push(frameHead(type as FrameType, 0, 1, 0)), isFrameError('unknown_frame_type'), `type ${type}`);
    assert.deepEqual(r.seen, { data: [], frames: [] });
  }
});

test('frame: finish() refuses input that stopped mid-head or mid-payload, and accepts a frame boundary', () => {
  const data = encodeFrame(FrameType.data, 0, 1, Buffer.from('abcdef'));
  const ping = encodeFrame(FrameType.ping, 0, 0, Buffer.alloc(8));
  for (const frame of [data, ping]) {
    for (let cut = 1; cut < frame.length; cut++) {
      const r = recorder([6]);
      r.decoder.push(frame.subarray(0, cut));
      assert.throws(() => r.decoder.finish(), isFrameError('truncated_frame'), `cut at ${cut} of ${frame.length}`);
    }
  }
  const r = recorder([6, 0]);
  r.decoder.finish();
  r.decoder.push(Buffer.alloc(0));
  r.decoder.push(Buffer.concat([data, ping, frameHead(FrameType.data, FLAG_END, 1, 0)]));
  r.decoder.finish();
  assert.equal(r.seen.data.length, 2);
  assert.equal(r.seen.frames.length, 1);
});
