// The postern/2 multiplexer over real loopback TCP: streams, half-close, trailers, flow
// control with a reader that stops, many streams, resets both ways, and a peer that breaks
// the framing (each closes that stream or that tunnel with a logged reason, never the process).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { MuxSession } from '../../src/tunnel/mux.js';
import type { MuxStream, MuxWindows } from '../../src/tunnel/mux.js';
import { FLAG_END, FLAG_OPEN, FrameType, MAX_FRAME_PAYLOAD, ResetCode, encodeFrame, encodeHeaders, frameHead, u32 } from '../../src/tunnel/frame.js';
import { PosternError } from '../../src/errors.js';
import { waitFor, withTimeout } from '../helpers/util.js';
import { captureLog, collect, echo, loopbackPair } from './mux-harness.js';

const WINDOWS: MuxWindows = { stream: 64 * 1024, connection: 1024 * 1024 };
const cleanups: (() => void)[] = [];
after(() => cleanups.splice(0).forEach((fn) => fn()));

/** An edge and a connector session; the connector answers every stream with `serve`. */
async function pair(serve: (stream: MuxStream) => void, windows: MuxWindows = WINDOWS) {
  const [a, b] = await loopbackPair(cleanups);
  const log = captureLog();
  const edge = new MuxSession(a, { role: 'edge', logger: log.logger, windows });
  const connector = new MuxSession(b, { role: 'connector', logger: log.logger, windows, onStream: serve });
  cleanups.push(() => (edge.destroy(), connector.destroy()));
  return { edge, connector, log };
}

test('mux: a stream carries its head, its response and bytes both ways, half-closes like TCP, and leaves no trace', async () => {
  const heads: Record<string, unknown>[] = [];
  const { edge, connector } = await pair((stream) => {
    heads.push({ ...stream.headers });
    stream.respond({ ':status': '200', 'set-cookie': ['a=1', 'b=2'] });
    let got = '';
    stream.on('data', (chunk: Buffer) => (got += chunk.toString()));
    // The opener has ended its side; this side still writes, then ends.
    stream.on('end', () => stream.end(`got ${got}`));
  });
  const stream = edge.open({ 'postern-socket': 'web', 'x-multi': ['1', '2'] });
  const [response] = (await once(stream, 'response')) as [Record<string, unknown>];
  assert.deepEqual({ ...response }, { ':status': '200', 'set-cookie': ['a=1', 'b=2'] });
  stream.end('hello');
  const body = await withTimeout(collect(stream), 10_000, 'the response body');
  assert.equal(body.toString(), 'got hello');
  assert.deepEqual(heads, [{ 'postern-socket': 'web', 'x-multi': ['1', '2'] }]);
  await waitFor(() => edge.openStreams === 0 && connector.openStreams === 0, { timeoutMs: 5_000, what: 'both sessions to forget the stream' });
  assert.equal(stream.resetCode, undefined);
});

test('mux: trailers arrive before the end of the body they follow', async () => {
  const seen: string[] = [];
  const { edge } = await pair((stream) => {
    stream.respond({ ':status': '200' }, { endStream: true });
    stream.on('data', () => seen.includes('data') || seen.push('data'));
    stream.on('trailers', (t: Record<string, string>) => seen.push(`trailers ${t['postern-body']}`));
    stream.on('end', () => seen.push('end'));
  });
  const stream = edge.open({});
  stream.resume();
  stream.write(Buffer.alloc(100_000, 1));
  stream.endWithTrailers({ 'postern-body': 'complete' });
  await waitFor(() => seen.includes('end'), { timeoutMs: 5_000, what: 'the end of the body' });
  assert.deepEqual(seen, ['data', 'trailers complete', 'end']);
});

test('mux: a reader that stops holds up only its own stream, and the receiver buffers at most its window', async () => {
  const streams: MuxStream[] = [];
  const { edge, connector } = await pair((stream) => {
    stream.respond({ ':status': '200' });
    streams.push(stream);
  });
  const slow = edge.open({ 'x-n': 'slow' });
  const fast = edge.open({ 'x-n': 'fast' });
  await waitFor(() => streams.length === 2, { timeoutMs: 5_000, what: 'both streams' });
  const [slowEnd, fastEnd] = streams as [MuxStream, MuxStream];
  slowEnd.pause();
  // The slow stream's writer offers 8 windows; the fast one moves 16 MiB meanwhile.
  const slowData = Buffer.alloc(8 * WINDOWS.stream);
  for (let i = 0; i < slowData.length; i++) slowData[i] = i % 251;
  let slowBlocked = false;
  if (!slow.write(slowData)) slowBlocked = true;
  slow.end();
  let fastBytes = 0;
  let peak = 0;
  const fastDone = new Promise<void>((resolve) => {
    fastEnd.on('data', (chunk: Buffer) => {
      fastBytes += chunk.length;
      peak = Math.max(peak, connector.bufferedBytes);
    });
    fastEnd.on('end', resolve);
  });
  const block = Buffer.alloc(256 * 1024, 7);
  for (let i = 0; i < 64; i++) if (!fast.write(block)) await once(fast, 'drain');
  fast.end();
  await withTimeout(fastDone, 30_000, 'the fast stream to finish beside the stalled one');
  assert.equal(fastBytes, 64 * block.length);
  assert.ok(slowBlocked, 'the slow stream\'s writer saw backpressure');
  assert.ok(slowEnd.readableLength <= WINDOWS.stream, `the stalled stream holds ${slowEnd.readableLength} bytes (window ${WINDOWS.stream})`);
  assert.ok(peak <= WINDOWS.stream + MAX_FRAME_PAYLOAD, `the receiver held at most ${peak} bytes unread`);
  // Once it reads again, every byte arrives, in order.
  const got = await withTimeout(collect(slowEnd), 10_000, 'the slow stream to drain');
  assert.ok(got.equals(slowData));
});

test('mux: 10,000 streams opened and closed leave both sessions at zero, and the tunnel still works', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    const { edge, connector } = await pair(echo);
    const one = async (n: number) => {
      const stream = edge.open({ 'x-n': String(n) });
      stream.end(`ping ${n}`);
      assert.equal((await collect(stream)).toString(), `ping ${n}`);
    };
    for (let batch = 0; batch < 100; batch++) {
      await withTimeout(Promise.all(Array.from({ length: 100 }, (_, i) => one(batch * 100 + i))), 20_000, `batch ${batch}`);
    }
    await waitFor(() => edge.openStreams === 0 && connector.openStreams === 0, { timeoutMs: 5_000, what: 'every stream to be forgotten' });
    assert.equal(connector.bufferedBytes, 0);
    await one(10_001);
    assert.deepEqual(warnings.map((w) => w.name), []);
  } finally {
    process.off('warning', onWarning);
  }
});

test('mux: a reset mid-body reaches the other side in both directions, and the session lives on', async () => {
  let served: MuxStream | undefined;
  const { edge, connector } = await pair((stream) => {
    served = stream;
    stream.respond({ ':status': '200' });
    stream.on('data', () => undefined);
  });
  // The opener resets while the responder streams.
  const first = edge.open({});
  first.resume();
  await waitFor(() => served !== undefined, { timeoutMs: 5_000, what: 'the first stream' });
  const responder = served!;
  responder.write(Buffer.alloc(200_000));
  first.reset(ResetCode.cancel);
  await withTimeout(once(responder, 'close'), 5_000, 'the responder to see the reset');
  assert.equal(responder.resetCode, ResetCode.cancel);
  // The responder resets while the opener streams.
  served = undefined;
  const second = edge.open({});
  second.resume();
  await waitFor(() => served !== undefined, { timeoutMs: 5_000, what: 'the second stream' });
  second.write(Buffer.alloc(200_000));
  served!.reset(ResetCode.internal);
  await withTimeout(once(second, 'close'), 5_000, 'the opener to see the reset');
  assert.equal(second.resetCode, ResetCode.internal);
  await waitFor(() => edge.openStreams === 0 && connector.openStreams === 0, { timeoutMs: 5_000, what: 'both streams forgotten' });
  served = undefined;
  const third = edge.open({}, { endStream: true });
  await withTimeout(once(third, 'response'), 5_000, 'a stream after the resets');
});

test('mux: ping measures a round trip; a ping on a closed session fails', async () => {
  const { edge } = await pair(echo);
  const rtt = await new Promise<number>((resolve, reject) => edge.ping((err, ms) => (err ? reject(err) : resolve(ms!))));
  assert.ok(rtt >= 0);
  edge.destroy();
  const err = await new Promise<Error | undefined>((resolve) => edge.ping((e) => resolve(e)));
  assert.ok(err instanceof PosternError);
});

test('mux: close() refuses new streams, lets open ones finish, then ends the transport', async () => {
  const { edge, connector } = await pair(echo);
  const open = edge.open({});
  await once(open, 'response');
  edge.close();
  assert.throws(() => edge.open({}), (err: unknown) => err instanceof PosternError && err.code === 'tunnel_closed');
  await waitFor(() => connector.closing, { timeoutMs: 5_000, what: 'the GOAWAY to reach the connector' });
  const closed = once(edge, 'close');
  open.end('last words');
  assert.equal((await collect(open)).toString(), 'last words');
  await withTimeout(closed, 5_000, 'the session to end after its last stream');
});

/** A connector session facing a raw peer that writes hand-made frames. */
async function rawEdge(windows: MuxWindows = WINDOWS) {
  const [raw, b] = await loopbackPair(cleanups);
  const log = captureLog();
  const opened: MuxStream[] = [];
  const session = new MuxSession(b, {
    role: 'connector', logger: log.logger, windows,
    onStream: (stream) => {
      opened.push(stream);
      stream.respond({ ':status': '200' });
      stream.pause();
    },
  });
  cleanups.push(() => session.destroy());
  const received: Buffer[] = [];
  raw.on('data', (chunk: Buffer) => received.push(chunk));
  raw.on('error', () => undefined);
  const goaway = () => {
    const all = Buffer.concat(received);
    for (let at = 0; at + 10 <= all.length; at += 10 + all.readUInt32BE(at)) if (all[at + 4] === FrameType.goaway) return all.readUInt32BE(at + 14);
    return undefined;
  };
  const openFrame = (id: number) => encodeFrame(FrameType.headers, FLAG_OPEN, id, encodeHeaders({ 'x-id': String(id) }));
  return { raw, session, log, opened, goaway, openFrame };
}

for (const [name, reason, frames] of [
  ['an oversized length', 'frame_too_large', () => [frameHead(FrameType.data, 0, 1, MAX_FRAME_PAYLOAD + 1)]],
  ['an unknown frame type', 'unknown_frame_type', () => [frameHead(9 as FrameType, 0, 1, 0)]],
  ['a stream id opened twice', 'stream_reused', (open: (id: number) => Buffer) => [open(1), open(1)]],
  ['a stream id that is not the opener\'s', 'bad_stream_id', (open: (id: number) => Buffer) => [open(2)]],
] as const) {
  test(`mux: ${name} closes the tunnel with a GOAWAY and a logged reason`, async () => {
    const { raw, session, log, goaway, openFrame } = await rawEdge();
    const closed = once(session, 'close');
    for (const frame of frames(openFrame)) raw.write(frame);
    await withTimeout(closed, 5_000, 'the session to close');
    assert.ok(log.has(reason), JSON.stringify(log.lines));
    await waitFor(() => goaway() !== undefined, { timeoutMs: 5_000, what: 'a GOAWAY' });
    assert.equal(goaway(), ResetCode.protocol);
  });
}

test('mux: a frame cut short by the end of the transport is a logged truncated frame', async () => {
  const { raw, session, log } = await rawEdge();
  const closed = once(session, 'close');
  raw.end(encodeFrame(FrameType.headers, FLAG_OPEN, 1, encodeHeaders({ a: 'b' })).subarray(0, 14));
  await withTimeout(closed, 5_000, 'the session to close');
  assert.ok(log.has('truncated_frame'), JSON.stringify(log.lines));
});

test('mux: data past the connection window closes the tunnel; past one stream\'s window resets only that stream', async () => {
  const windows: MuxWindows = { stream: 16 * 1024, connection: 32 * 1024 };
  {
    const { raw, session, log, goaway, openFrame } = await rawEdge({ stream: 64 * 1024, connection: 32 * 1024 });
    const closed = once(session, 'close');
    raw.write(openFrame(1));
    raw.write(openFrame(3));
    raw.write(encodeFrame(FrameType.data, 0, 1, Buffer.alloc(30 * 1024)));
    raw.write(encodeFrame(FrameType.data, 0, 3, Buffer.alloc(30 * 1024)));
    await withTimeout(closed, 5_000, 'the session to close');
    assert.ok(log.has('window_overflow'), JSON.stringify(log.lines));
    await waitFor(() => goaway() !== undefined, { timeoutMs: 5_000, what: 'a GOAWAY' });
  }
  {
    const { raw, session, log, opened, openFrame } = await rawEdge(windows);
    raw.write(openFrame(1));
    raw.write(encodeFrame(FrameType.data, 0, 1, Buffer.alloc(20 * 1024)));
    await waitFor(() => log.has('stream_protocol'), { timeoutMs: 5_000, what: 'the stream violation to be logged' });
    assert.equal(opened[0]!.resetCode, ResetCode.protocol);
    assert.equal(session.destroyed, false);
    raw.write(encodeFrame(FrameType.headers, FLAG_OPEN | FLAG_END, 3, encodeHeaders({})));
    await waitFor(() => opened.length === 2, { timeoutMs: 5_000, what: 'a second stream on the same tunnel' });
    assert.equal(session.destroyed, false);
  }
});

test('mux: a malformed stream head resets that stream, or a malformed opening head closes the tunnel, each logged', async () => {
  const { raw, session, log, opened, openFrame } = await rawEdge();
  raw.write(openFrame(1));
  await waitFor(() => opened.length === 1, { timeoutMs: 5_000, what: 'the stream' });
  // A trailing head whose header count promises more than it holds.
  raw.write(encodeFrame(FrameType.headers, FLAG_END, 1, Buffer.from([0, 5, 1])));
  await waitFor(() => log.has('stream_protocol'), { timeoutMs: 5_000, what: 'the bad head to be logged' });
  assert.equal(opened[0]!.resetCode, ResetCode.protocol);
  assert.equal(session.destroyed, false);
  const closed = once(session, 'close');
  raw.write(encodeFrame(FrameType.headers, FLAG_OPEN, 3, Buffer.from([0, 5, 1])));
  await withTimeout(closed, 5_000, 'the session to close');
  assert.ok(log.has('bad_headers'), JSON.stringify(log.lines));
});

test('mux: late frames for a stream already gone are dropped, and their bytes still return connection credit', async () => {
  const { raw, session, opened, openFrame } = await rawEdge({ stream: 16 * 1024, connection: 64 * 1024 });
  raw.write(openFrame(1));
  await waitFor(() => opened.length === 1, { timeoutMs: 5_000, what: 'the stream' });
  opened[0]!.reset(ResetCode.cancel);
  // The peer had not seen the reset yet: four windows' worth of late data would overflow the connection if uncredited.
  for (let i = 0; i < 8; i++) raw.write(encodeFrame(FrameType.data, 0, 1, Buffer.alloc(15 * 1024)));
  raw.write(encodeFrame(FrameType.window, 0, 1, u32(100)));
  raw.write(encodeFrame(FrameType.headers, FLAG_OPEN | FLAG_END, 3, encodeHeaders({})));
  await waitFor(() => opened.length === 2, { timeoutMs: 5_000, what: 'a stream after the late frames' });
  assert.equal(session.destroyed, false);
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  opened[1]!.pipe(sink);
});
