// The postern/2 multiplexer against its API, over real loopback TCP, beside mux-session.test.ts:
// streams the connector opens, trailers both ways, credit on many long-lived streams, the peer
// stream limit, resets and teardown codes, close(), and an edge-role session facing a raw
// connector that breaks the protocol (each ends that stream or that tunnel, logged, never the process).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { MuxSession } from '../../src/tunnel/mux.js';
import type { MuxSessionOptions, MuxStream, MuxWindows } from '../../src/tunnel/mux.js';
import { FLAG_END, FLAG_OPEN, FrameDecoder, FrameType, MAX_FRAME_PAYLOAD, ResetCode, encodeFrame, encodeHeaders, frameHead } from '../../src/tunnel/frame.js';
import type { MuxHeaders } from '../../src/tunnel/frame.js';
import { isPosternError } from '../../src/errors.js';
import { waitFor, withTimeout } from '../helpers/util.js';
import { captureLog, collect, echo, loopbackPair } from './mux-harness.js';

const WINDOWS: MuxWindows = { stream: 64 * 1024, connection: 1024 * 1024 };
const BOUND = { timeout: 60_000 };
const cleanups: (() => void)[] = [];
after(() => cleanups.splice(0).forEach((fn) => fn()));

type Serve = (stream: MuxStream, headers: MuxHeaders) => void;

interface PairOptions {
  windows?: MuxWindows;
  edge?: Serve;
  connector?: Serve;
  edgeMaxStreams?: number;
  connectorMaxStreams?: number;
}

async function pair(options: PairOptions = {}) {
  const [edgeEnd, connectorEnd] = await loopbackPair(cleanups);
  const log = captureLog();
  const windows = options.windows ?? WINDOWS;
  const edge = new MuxSession(edgeEnd, { role: 'edge', logger: log.logger, windows, onStream: options.edge, maxStreams: options.edgeMaxStreams });
  const connector = new MuxSession(connectorEnd, { role: 'connector', logger: log.logger, windows, onStream: options.connector, maxStreams: options.connectorMaxStreams });
  cleanups.push(() => (edge.destroy(), connector.destroy()));
  return { edge, connector, edgeEnd, connectorEnd, log };
}

function pattern(size: number, salt: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + salt) % 251;
  return out;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function roundTrip(opener: MuxSession, what: string): Promise<void> {
  const stream = opener.open({ 'x-what': what });
  stream.end(`still here: ${what}`);
  assert.equal((await withTimeout(collect(stream), 10_000, what)).toString(), `still here: ${what}`);
}

const refusedWith = (code: string) => (err: unknown) => isPosternError(err) && err.code === code;

test('mux: a stream the connector opens carries its head, its answer and bytes both ways, half-closes each way, and closes on both ends', BOUND, async () => {
  let served: MuxStream | undefined;
  let servedHead: MuxHeaders | undefined;
  const { edge, connector } = await pair({
    edge: (stream, headers) => {
      served = stream;
      servedHead = headers;
      stream.respond({ ':status': '200', 'x-r': ['a', 'b'] });
      const got: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => got.push(chunk));
      // The opener's side has ended; this side keeps writing, then ends its own.
      stream.on('end', () => {
        stream.write('got ');
        setImmediate(() => stream.end(Buffer.concat(got)));
      });
    },
  });
  const head = { 'postern-socket': 'db', 'x-multi': ['1', '', '3'], 'x-latin': 'caf\u00e9\u00ff', empty: '' };
  const stream = connector.open(head);
  assert.equal(stream.id % 2, 0, 'the connector opens even ids');
  assert.equal(stream.headersSent, true);
  const response = once(stream, 'response') as Promise<[MuxHeaders]>;
  stream.write('hello ');
  stream.end('world');
  const [answer] = await withTimeout(response, 5_000, 'the response head');
  assert.deepEqual({ ...answer }, { ':status': '200', 'x-r': ['a', 'b'] });
  const closedHere = once(stream, 'close');
  assert.equal((await withTimeout(collect(stream), 10_000, 'the answer body')).toString(), 'got hello world');
  assert.deepEqual({ ...servedHead }, head);
  assert.deepEqual({ ...served!.headers }, head);
  assert.equal(served!.id, stream.id);
  await withTimeout(Promise.all([closedHere, served!.closed ? Promise.resolve() : once(served!, 'close')]), 5_000, "'close' on both ends");
  assert.equal(stream.resetCode, undefined);
  assert.equal(served!.resetCode, undefined);
  await waitFor(() => edge.openStreams === 0 && connector.openStreams === 0, { timeoutMs: 5_000, what: 'both sessions to forget the stream' });
  assert.equal(edge.bufferedBytes + connector.bufferedBytes, 0);
});

test('mux: trailers follow the body in both directions, each before its end', BOUND, async () => {
  const atResponder: string[] = [];
  let responderBytes = 0;
  const { edge } = await pair({
    connector: (stream) => {
      stream.respond({ ':status': '200' });
      stream.on('data', (chunk: Buffer) => {
        if (responderBytes === 0) atResponder.push('data');
        responderBytes += chunk.length;
      });
      stream.on('trailers', (t: MuxHeaders) => atResponder.push(`trailers ${String(t['postern-body'])}`));
      stream.on('end', () => {
        atResponder.push('end');
        stream.write(pattern(50_000, 1));
        stream.endWithTrailers({ 'postern-status': 'ok', 'x-list': ['1', '2'] });
      });
    },
  });
  const atOpener: string[] = [];
  let openerBytes = 0;
  const stream = edge.open({});
  stream.on('response', () => atOpener.push('response'));
  stream.on('data', (chunk: Buffer) => {
    if (openerBytes === 0) atOpener.push('data');
    openerBytes += chunk.length;
  });
  stream.on('trailers', (t: MuxHeaders) => atOpener.push(`trailers ${String(t['postern-status'])} ${JSON.stringify(t['x-list'])}`));
  const ended = once(stream, 'end');
  stream.write(pattern(100_000, 2));
  stream.endWithTrailers({ 'postern-body': 'complete' });
  await withTimeout(ended, 10_000, 'the end of the answer');
  assert.deepEqual(atResponder, ['data', 'trailers complete', 'end']);
  assert.equal(responderBytes, 100_000);
  assert.deepEqual(atOpener, ['response', 'data', 'trailers ok ["1","2"]']);
  assert.equal(openerBytes, 50_000);
});

test('mux: a reader that stops holds up only its stream; the receiver buffers at most its window meanwhile; then every byte arrives in order', BOUND, async () => {
  const served: MuxStream[] = [];
  const { edge, connector } = await pair({
    edge: (stream) => {
      stream.respond({ ':status': '200' });
      served.push(stream);
    },
  });
  const slow = connector.open({ 'x-n': 'slow' });
  const fast = connector.open({ 'x-n': 'fast' });
  await waitFor(() => served.length === 2, { timeoutMs: 5_000, what: 'both streams at the edge' });
  const [slowEnd, fastEnd] = served as [MuxStream, MuxStream];
  slowEnd.pause();
  let peak = 0;
  const sample = () => (peak = Math.max(peak, edge.bufferedBytes));
  const sampler = setInterval(sample, 1);
  try {
    const slowData = pattern(8 * WINDOWS.stream, 3);
    let slowDrained = false;
    const accepted = slow.write(slowData);
    slow.once('drain', () => (slowDrained = true));
    slow.end();
    const fastHash = createHash('sha256');
    let fastBytes = 0;
    fastEnd.on('data', (chunk: Buffer) => {
      fastHash.update(chunk);
      fastBytes += chunk.length;
      sample();
    });
    const fastDone = once(fastEnd, 'end');
    const sent = createHash('sha256');
    for (let i = 0; i < 64; i++) {
      const block = pattern(256 * 1024, i);
      sent.update(block);
      if (!fast.write(block)) await withTimeout(once(fast, 'drain'), 10_000, `drain of the fast stream at block ${i}`);
    }
    fast.end();
    await withTimeout(fastDone, 30_000, 'the fast stream beside the stalled one');
    assert.equal(fastBytes, 16 * 1024 * 1024);
    assert.equal(fastHash.digest('hex'), sent.digest('hex'));
    assert.equal(accepted, false, "the stalled stream's writer sees backpressure");
    assert.equal(slowDrained, false, "the stalled stream's writer is still waiting for 'drain'");
    assert.ok(peak <= WINDOWS.stream + MAX_FRAME_PAYLOAD, `the edge held ${peak} bytes unread (window ${WINDOWS.stream})`);
    const got = await withTimeout(collect(slowEnd), 10_000, 'the stalled stream once it reads again');
    assert.equal(sha256(got), sha256(slowData));
  } finally {
    clearInterval(sampler);
  }
});

test('mux: many long-lived streams that each carried a little data leave the tunnel room to flow', BOUND, async () => {
  // Each stream's reader consumed everything it got; none of them ended. The connection window
  // is 256 KiB: unless credit follows what readers consumed, 40 × 8 KiB exhaust it for good.
  const windows: MuxWindows = { stream: 64 * 1024, connection: 256 * 1024 };
  let received = 0;
  const { edge } = await pair({
    windows,
    connector: (stream) => {
      stream.respond({ ':status': '200' });
      stream.on('data', (chunk: Buffer) => (received += chunk.length));
      stream.on('end', () => stream.end());
    },
  });
  const streams = Array.from({ length: 40 }, (_, i) => edge.open({ 'x-n': String(i) }));
  for (const stream of streams) {
    stream.resume();
    stream.write(Buffer.alloc(8 * 1024, 1));
  }
  await waitFor(() => received === 40 * 8 * 1024, { timeoutMs: 5_000, what: '40 × 8 KiB on open streams' }).catch((err: Error) => {
    throw new Error(`${err.message}; arrived ${received} of ${40 * 8 * 1024} bytes`);
  });
  const last = edge.open({});
  last.resume();
  last.end(Buffer.alloc(1024));
  await withTimeout(once(last, 'end'), 5_000, 'one more stream beside the long-lived ones');
});

test('mux: 10,000 streams the connector opens, 100 at a time, leave both sessions at zero with no listener warnings', BOUND, async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    const { edge, connector } = await pair({ edge: echo, connector: echo });
    const one = async (n: number) => {
      const stream = connector.open({ 'x-n': String(n) });
      stream.end(`payload ${n}`);
      assert.equal((await collect(stream)).toString(), `payload ${n}`);
    };
    for (let batch = 0; batch < 100; batch++) {
      await withTimeout(Promise.all(Array.from({ length: 100 }, (_, i) => one(batch * 100 + i))), 20_000, `batch ${batch}`);
    }
    await waitFor(() => edge.openStreams === 0 && connector.openStreams === 0, { timeoutMs: 5_000, what: 'every stream forgotten on both sides' });
    assert.equal(edge.bufferedBytes, 0);
    await roundTrip(connector, 'after 10,000 from the connector');
    await roundTrip(edge, 'after 10,000, from the edge');
    assert.deepEqual(warnings.map((w) => `${w.name}: ${w.message}`), []);
  } finally {
    process.off('warning', onWarning);
  }
});

test('mux: a reset mid-body ends the other side with its code and releases writes waiting for credit, both directions', BOUND, async () => {
  let served: MuxStream | undefined;
  const { edge, connector } = await pair({
    connector: (stream) => {
      served = stream;
      stream.respond({ ':status': '200' });
    },
  });
  const next = async (): Promise<[MuxStream, MuxStream]> => {
    served = undefined;
    const opener = edge.open({});
    await waitFor(() => served, { timeoutMs: 5_000, what: 'the responder' });
    return [opener, served!];
  };

  // The opener resets while the responder streams more than a window to it (the opener is not reading).
  const [opener1, responder1] = await next();
  let released1 = false;
  responder1.write(pattern(8 * WINDOWS.stream, 4), () => (released1 = true));
  await waitFor(() => opener1.readableLength > 0, { timeoutMs: 5_000, what: 'data at the opener' });
  opener1.reset();
  await withTimeout(once(responder1, 'close'), 5_000, 'the responder to see the reset');
  assert.equal(responder1.resetCode, ResetCode.cancel);
  assert.equal(opener1.resetCode, ResetCode.cancel);
  await waitFor(() => released1, { timeoutMs: 5_000, what: 'the write waiting for credit to be released' });
  const afterReset = await new Promise<Error | null | undefined>((resolve) => responder1.write('more', resolve));
  assert.ok(afterReset instanceof Error, 'a write after the reset fails');

  // The responder resets while the opener streams more than a window to it (the responder is not reading).
  const [opener2, responder2] = await next();
  responder2.pause();
  let released2 = false;
  opener2.resume();
  opener2.write(pattern(8 * WINDOWS.stream, 5), () => (released2 = true));
  await waitFor(() => responder2.readableLength > 0, { timeoutMs: 5_000, what: 'data at the responder' });
  responder2.reset(ResetCode.internal);
  await withTimeout(once(opener2, 'close'), 5_000, 'the opener to see the reset');
  assert.equal(opener2.resetCode, ResetCode.internal);
  assert.equal(responder2.resetCode, ResetCode.internal);
  await waitFor(() => released2, { timeoutMs: 5_000, what: 'the write waiting for credit to be released' });

  // destroy() without an error is a reset with cancel.
  const [opener3, responder3] = await next();
  opener3.resume();
  responder3.destroy();
  await withTimeout(once(opener3, 'close'), 5_000, 'the opener to see the destroy');
  assert.equal(opener3.resetCode, ResetCode.cancel);

  await waitFor(() => edge.openStreams === 0 && connector.openStreams === 0, { timeoutMs: 5_000, what: 'every reset stream forgotten' });
  served = undefined;
  const fourth = edge.open({}, { endStream: true });
  await withTimeout(once(fourth, 'response'), 5_000, 'a stream after the resets');
});

test('mux: destroying a session ends every stream on both ends with tunnelClosed, and fails its pings and opens', BOUND, async () => {
  let served: MuxStream | undefined;
  const { edge, connector } = await pair({
    connector: (stream) => {
      served = stream;
      stream.respond({ ':status': '200' });
    },
  });
  const opener = edge.open({});
  opener.resume();
  await waitFor(() => served, { timeoutMs: 5_000, what: 'the responder' });
  const responder = served!;
  responder.resume();
  const edgeClosed = once(edge, 'close');
  const pinged = new Promise<Error | undefined>((resolve) => edge.ping((err) => resolve(err)));
  connector.destroy();
  assert.equal(connector.destroyed, true);
  assert.equal(connector.closing, true);
  assert.equal(responder.resetCode, ResetCode.tunnelClosed);
  await withTimeout(edgeClosed, 5_000, 'the edge session to close with its transport');
  assert.equal(opener.resetCode, ResetCode.tunnelClosed);
  const pingErr = await withTimeout(pinged, 5_000, 'the pending ping');
  // The answer may have raced the teardown; what matters is that the callback came.
  if (pingErr !== undefined) assert.ok(refusedWith('tunnel_closed')(pingErr), String(pingErr));
  assert.equal(edge.openStreams + connector.openStreams, 0);
  assert.throws(() => edge.open({}), refusedWith('tunnel_closed'));
  assert.throws(() => connector.open({}), refusedWith('tunnel_closed'));
});

test('mux: ping measures a round trip; a ping on a destroyed session, or one the peer never answers, calls back with an error', BOUND, async () => {
  const { edge, connector } = await pair();
  for (const session of [edge, connector]) {
    const rtt = await withTimeout(new Promise<number>((resolve, reject) => session.ping((err, ms) => (err ? reject(err) : resolve(ms!)))), 5_000, 'a ping');
    assert.ok(Number.isFinite(rtt) && rtt >= 0, String(rtt));
  }
  edge.destroy();
  const err = await withTimeout(new Promise<Error | undefined>((resolve) => edge.ping((e) => resolve(e))), 5_000, 'a ping on a destroyed session');
  assert.ok(refusedWith('tunnel_closed')(err), String(err));

  const { raw, session } = await rawConnector();
  const unanswered = new Promise<Error | undefined>((resolve) => session.ping((e) => resolve(e)));
  raw.destroy();
  const lost = await withTimeout(unanswered, 5_000, 'a ping the peer never answered');
  assert.ok(refusedWith('tunnel_closed')(lost), String(lost));
});

test('mux: close() sends GOAWAY, refuses new streams on both ends, lets open streams finish both ways, then ends the transport', BOUND, async () => {
  const { edge, connector, edgeEnd } = await pair({ edge: echo, connector: echo });
  const fromEdge = edge.open({ 'x-n': 'edge' });
  const fromConnector = connector.open({ 'x-n': 'connector' });
  await withTimeout(Promise.all([once(fromEdge, 'response'), once(fromConnector, 'response')]), 5_000, 'both streams answered');
  const goaway = once(connector, 'goaway');
  const edgeClosed = once(edge, 'close');
  const connectorClosed = once(connector, 'close');
  edge.close();
  assert.equal(edge.closing, true);
  assert.throws(() => edge.open({}), refusedWith('tunnel_closed'));
  const [code] = (await withTimeout(goaway, 5_000, 'the GOAWAY at the connector')) as [number];
  assert.equal(code, ResetCode.none);
  assert.equal(connector.closing, true);
  assert.throws(() => connector.open({}), refusedWith('tunnel_closed'));
  // Both streams still carry bytes both ways.
  fromEdge.write('one ');
  fromConnector.write('two ');
  fromEdge.end('last');
  assert.equal((await withTimeout(collect(fromEdge), 5_000, 'the edge stream to finish')).toString(), 'one last');
  assert.equal(edgeEnd.writableEnded, false, 'the transport stays up while a stream is open');
  assert.equal(edge.destroyed, false);
  fromConnector.end('last');
  assert.equal((await withTimeout(collect(fromConnector), 5_000, 'the connector stream to finish')).toString(), 'two last');
  await withTimeout(Promise.all([edgeClosed, connectorClosed]), 5_000, 'both sessions to close after the last stream');
  assert.equal(fromEdge.resetCode, undefined);
  assert.equal(fromConnector.resetCode, undefined);
});

test('mux: maxStreams refuses peer-opened streams beyond it, and counts only those', BOUND, async () => {
  const held: MuxStream[] = [];
  const hold: Serve = (stream) => {
    stream.respond({ ':status': '200' });
    held.push(stream);
  };
  const { edge, connector } = await pair({ edge: hold, connector: hold, connectorMaxStreams: 2 });
  const a = edge.open({});
  const b = edge.open({});
  await withTimeout(Promise.all([once(a, 'response'), once(b, 'response')]), 5_000, 'two streams within the limit');
  const c = edge.open({});
  c.resume();
  await withTimeout(once(c, 'close'), 5_000, 'the third stream to be refused');
  assert.equal(c.resetCode, ResetCode.refused);
  for (const stream of [a, b]) stream.reset();
  await waitFor(() => edge.openStreams === 0 && connector.openStreams === 0, { timeoutMs: 5_000, what: 'the streams reset' });

  // Streams the connector opened itself are not the edge's to count against the connector's limit.
  const own = [connector.open({}), connector.open({})];
  await withTimeout(Promise.all(own.map((s) => once(s, 'response'))), 5_000, 'two streams the connector opened');
  const d = edge.open({});
  d.resume();
  const outcome = await withTimeout(Promise.race([once(d, 'response').then(() => 'answered'), once(d, 'close').then(() => `reset ${String(d.resetCode)}`)]), 5_000, 'the edge stream');
  assert.equal(outcome, 'answered', `a peer-opened stream within the limit was refused while the connector held ${own.length} streams of its own`);
});

// ---- an edge-role session facing a raw connector ----

interface RawFrame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** An edge session on one end; the test writes hand-made frames on the other and reads the answers. */
async function rawConnector(windows: MuxWindows = WINDOWS, extra: Partial<MuxSessionOptions> = {}) {
  const [edgeEnd, raw] = await loopbackPair(cleanups);
  const log = captureLog();
  const opened: MuxStream[] = [];
  const streamErrors: Error[] = [];
  const session = new MuxSession(edgeEnd, {
    role: 'edge', logger: log.logger, windows,
    onStream: (stream) => {
      opened.push(stream);
      stream.on('error', (err) => streamErrors.push(err));
      stream.respond({ ':status': '200' });
      stream.pause();
    },
    ...extra,
  });
  cleanups.push(() => session.destroy());
  const frames: RawFrame[] = [];
  const decoder = new FrameDecoder({
    data: (stream, piece, end) => frames.push({ type: FrameType.data, flags: end ? FLAG_END : 0, stream, payload: Buffer.from(piece) }),
    frame: (type, flags, stream, payload) => frames.push({ type, flags, stream, payload: Buffer.from(payload) }),
  });
  let rawEnded = false;
  raw.on('data', (chunk: Buffer) => decoder.push(chunk));
  raw.on('end', () => (rawEnded = true));
  raw.on('error', () => undefined);
  const goawayCode = () => {
    const frame = frames.find((f) => f.type === FrameType.goaway);
    return frame && frame.payload.readUInt32BE(4);
  };
  const resetCodeOf = (id: number) => {
    const frame = frames.find((f) => f.type === FrameType.reset && f.stream === id);
    return frame && frame.payload.readUInt32BE(0);
  };
  const openFrame = (id: number, flags = 0) => encodeFrame(FrameType.headers, FLAG_OPEN | flags, id, encodeHeaders({ 'x-id': String(id) }));
  return { raw, session, log, opened, streamErrors, frames, goawayCode, resetCodeOf, openFrame, rawEnded: () => rawEnded };
}

const MALFORMED: [string, string, (open: (id: number, flags?: number) => Buffer) => Buffer[], MuxWindows?][] = [
  ['a head with length MAX_FRAME_PAYLOAD + 1', 'frame_too_large', () => [frameHead(FrameType.headers, FLAG_OPEN, 2, MAX_FRAME_PAYLOAD + 1)]],
  ['an unknown frame type 9', 'unknown_frame_type', () => [frameHead(9 as FrameType, 0, 2, 0)]],
  ['HEADERS|OPEN reusing a stream id', 'stream_reused', (open) => [open(2), open(2)]],
  ['HEADERS|OPEN with an id below the last one opened', 'stream_reused', (open) => [open(4), open(2)]],
  ['HEADERS|OPEN with an odd id, which is the edge\'s to open', 'bad_stream_id', (open) => [open(3)]],
  ['DATA beyond the connection window', 'window_overflow', (open) => [open(2), open(4), encodeFrame(FrameType.data, 0, 2, Buffer.alloc(30 * 1024)), encodeFrame(FrameType.data, 0, 4, Buffer.alloc(30 * 1024))], { stream: 32 * 1024, connection: 48 * 1024 }],
];

for (const [name, reason, frames, windows] of MALFORMED) {
  test(`mux: ${name} from a raw connector closes the edge session with a GOAWAY and a logged ${reason}`, BOUND, async () => {
    const peer = await rawConnector(windows);
    const closed = once(peer.session, 'close');
    for (const frame of frames(peer.openFrame)) peer.raw.write(frame);
    await withTimeout(closed, 5_000, 'the session to close');
    assert.ok(peer.log.warned(reason), peer.log.dump());
    await waitFor(() => peer.goawayCode() !== undefined, { timeoutMs: 5_000, what: 'a GOAWAY at the raw peer' });
    assert.equal(peer.goawayCode(), ResetCode.protocol);
    await waitFor(() => peer.rawEnded(), { timeoutMs: 5_000, what: 'the session to end the transport' });
    assert.ok(peer.opened.every((s) => s.resetCode === ResetCode.tunnelClosed), 'open streams end with the tunnel');
  });
}

test('mux: a frame cut short and then FIN from a raw connector closes the session with a logged truncated_frame', BOUND, async () => {
  const { raw, session, log, opened, openFrame } = await rawConnector();
  raw.write(openFrame(2));
  await waitFor(() => opened.length === 1, { timeoutMs: 5_000, what: 'the stream' });
  const closed = once(session, 'close');
  raw.end(encodeFrame(FrameType.data, 0, 2, Buffer.alloc(100)).subarray(0, 50));
  await withTimeout(closed, 5_000, 'the session to close');
  assert.ok(log.warned('truncated_frame'), log.dump());
  assert.equal(opened[0]!.resetCode, ResetCode.tunnelClosed);
});

test('mux: DATA beyond one stream\'s window resets only that stream; a second stream still works', BOUND, async () => {
  const { raw, session, log, opened, frames, resetCodeOf, openFrame } = await rawConnector({ stream: 16 * 1024, connection: 1024 * 1024 });
  raw.write(openFrame(2));
  raw.write(encodeFrame(FrameType.data, 0, 2, Buffer.alloc(10 * 1024)));
  raw.write(encodeFrame(FrameType.data, 0, 2, Buffer.alloc(10 * 1024)));
  await waitFor(() => resetCodeOf(2) !== undefined, { timeoutMs: 5_000, what: 'a RESET for the stream' });
  assert.equal(resetCodeOf(2), ResetCode.protocol);
  assert.equal(opened[0]!.resetCode, ResetCode.protocol);
  assert.ok(log.warned('stream_protocol'), log.dump());
  assert.equal(session.destroyed, false);
  raw.write(openFrame(4, FLAG_END));
  await waitFor(() => frames.some((f) => f.type === FrameType.headers && f.stream === 4), { timeoutMs: 5_000, what: 'the answer on a second stream' });
  assert.equal(session.destroyed, false);
  assert.equal(frames.some((f) => f.type === FrameType.goaway), false);
});

test('mux: a stream head that is not a valid head is refused with a logged reason, and nothing crashes', BOUND, async () => {
  const { raw, session, log, opened, resetCodeOf } = await rawConnector();
  const closed = once(session, 'close');
  raw.write(encodeFrame(FrameType.headers, FLAG_OPEN, 2, Buffer.from([0, 3, 1, 97])));
  await waitFor(() => session.destroyed || resetCodeOf(2) !== undefined, { timeoutMs: 5_000, what: 'the stream reset or the session closed' });
  if (session.destroyed) await withTimeout(closed, 5_000, 'close');
  assert.ok(log.lines.some((l) => (l.level as number) >= 40 && typeof l.reason === 'string'), log.dump());
  assert.equal(opened.length, 0, 'no stream was handed on with a broken head');
});

test('mux: DATA after the peer ended its side is a stream protocol error, not a stream error', BOUND, async () => {
  const { raw, session, log, opened, streamErrors, resetCodeOf, openFrame } = await rawConnector();
  raw.write(openFrame(2, FLAG_END));
  await waitFor(() => opened.length === 1, { timeoutMs: 5_000, what: 'the stream' });
  raw.write(encodeFrame(FrameType.data, 0, 2, Buffer.from('after the end')));
  await waitFor(() => resetCodeOf(2) !== undefined, { timeoutMs: 5_000, what: 'a RESET for the stream' });
  assert.deepEqual(streamErrors.map((e) => (e as NodeJS.ErrnoException).code ?? e.message), [], 'the peer\'s mistake surfaced as an error on the local stream');
  assert.equal(resetCodeOf(2), ResetCode.protocol);
  assert.ok(log.warned('stream_protocol'), log.dump());
  assert.equal(session.destroyed, false);
});

test('mux: DATA before the response head resets that stream with protocol; the session lives on', BOUND, async () => {
  const { raw, session, log, frames, resetCodeOf } = await rawConnector();
  const stream = session.open({ 'x-n': 'early' });
  stream.resume();
  await waitFor(() => frames.some((f) => f.type === FrameType.headers && f.stream === stream.id), { timeoutMs: 5_000, what: 'the opening head at the raw peer' });
  raw.write(encodeFrame(FrameType.data, 0, stream.id, Buffer.from('too early')));
  await withTimeout(once(stream, 'close'), 5_000, 'the stream to be reset');
  assert.equal(stream.resetCode, ResetCode.protocol);
  await waitFor(() => resetCodeOf(stream.id) !== undefined, { timeoutMs: 5_000, what: 'a RESET at the raw peer' });
  assert.equal(resetCodeOf(stream.id), ResetCode.protocol);
  assert.ok(log.warned('stream_protocol'), log.dump());
  assert.equal(session.destroyed, false);
  assert.equal(session.openStreams, 0);
});
