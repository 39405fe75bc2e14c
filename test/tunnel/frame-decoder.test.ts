// The frame layer on its own: head encoding, stream heads, the incremental decoder at every
// split point, each way a frame can be malformed, and a bounded fuzz run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FLAG_END, FLAG_OPEN, FrameDecoder, FrameError, FrameType, MAX_FRAME_PAYLOAD, decodeHeaders, encodeFrame, encodeHeaders, frameHead } from '../../src/tunnel/frame.js';
import { fuzzDecoder } from './frame-fuzz.js';

type Event = [string, number, string, boolean?];

function decodeAll(input: Buffer, split: number[]): { events: Event[]; error?: FrameError } {
  const events: Event[] = [];
  const decoder = new FrameDecoder({
    data: (stream, piece, end) => events.push(['data', stream, piece.toString('hex'), end]),
    frame: (type, flags, stream, payload) => events.push([`type ${type} flags ${flags}`, stream, payload.toString('hex')]),
  });
  try {
    let at = 0;
    for (const cut of [...split, input.length]) {
      decoder.push(input.subarray(at, cut));
      at = cut;
    }
    decoder.finish();
    return { events };
  } catch (err) {
    assert.ok(err instanceof FrameError);
    return { events, error: err };
  }
}

/** Joins consecutive DATA pieces of one frame, so different splits compare equal. */
function merged(events: Event[]): Event[] {
  const out: Event[] = [];
  for (const e of events) {
    const last = out.at(-1);
    if (e[0] === 'data' && last?.[0] === 'data' && last[1] === e[1] && !last[3]) out[out.length - 1] = ['data', e[1], last[2] + e[2], e[3]];
    else out.push(e);
  }
  return out;
}

test('frame: stream heads round-trip, repeated names as arrays, latin1 kept byte for byte', () => {
  const head = { ':status': '200', 'set-cookie': ['a=1', 'b=2'], empty: '', latin: 'caf\u00e9' };
  assert.deepEqual({ ...decodeHeaders(encodeHeaders(head)) }, head);
  assert.deepEqual({ ...decodeHeaders(encodeHeaders({})) }, {});
  for (const bad of [Buffer.alloc(0), Buffer.from([0, 1]), Buffer.from([0, 1, 3, 97]), Buffer.from([0, 1, 1, 97, 0, 5, 98]), Buffer.from([0, 0, 9]), Buffer.from([0, 1, 0, 0, 0])]) {
    assert.throws(() => decodeHeaders(bad), (err: unknown) => err instanceof FrameError && err.reason === 'bad_headers', bad.toString('hex'));
  }
});

test('frame: the decoder gives the same frames whatever the chunking', () => {
  const input = Buffer.concat([
    encodeFrame(FrameType.headers, FLAG_OPEN, 1, encodeHeaders({ ':path': '/' })),
    encodeFrame(FrameType.data, 0, 1, Buffer.from('hello world')),
    encodeFrame(FrameType.data, FLAG_END, 1, Buffer.alloc(0)),
    encodeFrame(FrameType.ping, 0, 0, Buffer.alloc(8, 1)),
  ]);
  const whole = decodeAll(input, []);
  assert.equal(whole.error, undefined);
  assert.deepEqual(whole.events.map((e) => e[0]), ['type 1 flags 2', 'data', 'data', 'type 4 flags 0']);
  assert.deepEqual(whole.events[2], ['data', 1, '', true]);
  for (let cut = 1; cut < input.length; cut++) assert.deepEqual(merged(decodeAll(input, [cut]).events), merged(whole.events), `split at ${cut}`);
  const bytewise = decodeAll(input, Array.from({ length: input.length - 1 }, (_, i) => i + 1));
  assert.deepEqual(merged(bytewise.events), merged(whole.events));
  assert.ok(bytewise.events.filter((e) => e[0] === 'data').every((e) => e[3] !== true || e[2].length <= 2), 'only the last piece of an END frame is flagged');
});

test('frame: an oversized length is refused as soon as its head is read', () => {
  const { error, events } = decodeAll(frameHead(FrameType.data, 0, 1, MAX_FRAME_PAYLOAD + 1), []);
  assert.equal(error?.reason, 'frame_too_large');
  assert.deepEqual(events, []);
});

test('frame: an unknown type, and input that stops mid-head or mid-payload, are frame errors', () => {
  assert.equal(decodeAll(frameHead(9 as FrameType, 0, 1, 0), []).error?.reason, 'unknown_frame_type');
  const frame = encodeFrame(FrameType.data, 0, 1, Buffer.from('abcdef'));
  assert.equal(decodeAll(frame.subarray(0, 5), []).error?.reason, 'truncated_frame');
  assert.equal(decodeAll(frame.subarray(0, 12), []).error?.reason, 'truncated_frame');
  assert.equal(decodeAll(frame, []).error, undefined);
});

test('frame: fuzzing the decoder finds nothing but frame errors', () => {
  const seeds = [1, Date.now() >>> 0];
  for (const seed of seeds) {
    const result = fuzzDecoder(10_000, seed, 20_000);
    assert.ok(result.inputs > 0, `seed ${seed}`);
    assert.ok(result.frameErrors > 0 && result.frames > 0, `seed ${seed}: both outcomes were exercised (${JSON.stringify(result)})`);
  }
});
