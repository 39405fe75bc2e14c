// The postern/2 multiplexer: many byte streams over one transport (the connector's TLS
// connection), each with a head, an optional response head and trailers, per-stream and
// per-connection credit windows, half-close and resets. Only what a proxy needs: no
// priorities, no header compression, no push; a stream's bytes are passed on as the slices
// the transport delivered them in.
import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import {
  FLAG_ACK, FLAG_END, FLAG_OPEN, FrameDecoder, FrameError, FrameType, MAX_FRAME_PAYLOAD, ResetCode,
  decodeHeaders, encodeFrame, encodeHeaders, frameHead, resetCodeName, u32,
} from './frame.js';
import type { FrameHandler, MuxHeaders } from './frame.js';
import { PosternError } from '../errors.js';

export interface MuxWindows {
  /** Bytes one stream may have in flight or unread at the receiver. */
  readonly stream: number;
  /** Bytes all streams together may have in flight or unread at the receiver. */
  readonly connection: number;
}

/**
 * A stream window of 1 MiB keeps a bulk stream at link speed on any loopback or LAN round
 * trip (window/RTT); 64 MiB for the connection lets 64 such streams run without stalling
 * each other while bounding what one tunnel can make the receiving end hold.
 */
export const DEFAULT_WINDOWS: MuxWindows = { stream: 1024 * 1024, connection: 64 * 1024 * 1024 };
const MAX_WINDOW = 0x7fffffff;
const MAX_STREAM_ID = 0x7fffffff;

export interface MuxSessionOptions {
  /** The edge opens odd stream ids, the connector even ones. */
  role: 'edge' | 'connector';
  logger: Logger;
  /** Both ends must use the same windows: each sends as much as it grants. */
  windows?: MuxWindows;
  /** Streams the peer may hold open at once; more are refused. */
  maxStreams?: number;
  onStream?: (stream: MuxStream, headers: MuxHeaders) => void;
}

/** Why a session ended, in logs. */
type ViolationReason = FrameError['reason'] | 'stream_reused' | 'window_overflow' | 'bad_stream_id';

class Violation extends Error {
  constructor(readonly reason: ViolationReason, message: string) {
    super(message);
  }
}

/** One stream broke the protocol: that stream is reset, the session lives on. */
class StreamViolation extends Error {}

interface PendingWrite {
  chunk: Buffer;
  offset: number;
  callback: (err?: Error | null) => void;
}

/**
 * One stream. A Duplex whose writable side becomes DATA frames and whose readable side is
 * the peer's DATA; `allowHalfOpen`, so each direction ends on its own, like TCP.
 */
export class MuxStream extends Duplex {
  /** Head received from the peer as response (opener side) or sent with respond() (responder). */
  private responded = false;
  private remoteHeadSeen = false;
  /** END sent / received on the wire. */
  localEnded = false;
  remoteEnded = false;
  private trailersToSend: MuxHeaders | undefined;
  private reset_: number | undefined;
  /** Send credit granted by the peer. */
  sendWindow: number;
  pending: PendingWrite | undefined;
  /** Bytes received from the peer; of those, credited back on the stream and on the connection. */
  private received = 0;
  private credited = 0;
  private connectionCredited = 0;
  settled = false;

  constructor(
    private readonly session: MuxSession,
    readonly id: number,
    readonly headers: MuxHeaders,
    readonly opener: boolean,
    private readonly windows: MuxWindows,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024 });
    this.sendWindow = windows.stream;
  }

  get headersSent(): boolean {
    return this.opener || this.responded;
  }

  get resetCode(): number | undefined {
    return this.reset_;
  }

  /** The responder's answer head; sent once, before any data. */
  respond(headers: MuxHeaders, options: { endStream?: boolean } = {}): void {
    if (this.opener) throw new PosternError('internal', 'only the side that did not open a stream responds on it');
    if (this.responded || this.settled) return;
    let head: Buffer;
    try {
      head = encodeHeaders(headers);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      return this.session.failStream(this, ResetCode.internal, 'unencodable_head', err.message);
    }
    this.responded = true;
    this.session.sendHeaders(this.id, head, options.endStream === true, false);
    if (options.endStream) this.endLocally();
  }

  /** Ends the writable side with a trailing head (after every byte written so far). */
  endWithTrailers(trailers: MuxHeaders): void {
    this.trailersToSend = trailers;
    this.end();
  }

  /** Aborts both directions; the peer learns `code`. */
  reset(code: number = ResetCode.cancel): void {
    if (!this.settled) {
      this.reset_ = code;
      this.session.sendReset(this, code);
    }
    this.destroy();
  }

  /** Called by the session: the side has already sent its END with its head. */
  endLocally(): void {
    this.localEnded = true;
    this.end();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.settled || this.localEnded) return callback();
    if (!this.headersSent) return callback(new PosternError('internal', 'a stream writes data before its response head'));
    this.pending = { chunk, offset: 0, callback };
    this.session.pump(this);
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (!this.settled && !this.localEnded) {
      this.localEnded = true;
      if (this.trailersToSend) this.session.sendHeaders(this.id, encodeHeaders(this.trailersToSend), true, false);
      else this.session.sendEnd(this);
    }
    callback();
    this.session.maybeSettle(this);
  }

  /**
   * Credit follows what the reader took. Readable calls _read before it takes the chunk, and
   * not again until something is pushed, so the count is taken here, after every read.
   */
  override read(size?: number): unknown {
    const chunk: unknown = super.read(size);
    this.credit();
    return chunk;
  }

  /** Nothing to fetch: the peer's bytes are pushed as they arrive, and read() counts the credit. */
  override _read(): void {}

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.settled) {
      this.reset_ = ResetCode.cancel;
      this.session.sendReset(this, ResetCode.cancel);
    }
    const pending = this.pending;
    this.pending = undefined;
    pending?.callback();
    callback(err);
  }

  /** Bytes delivered by the session. */
  receive(piece: Buffer, end: boolean): void {
    if (this.opener && !this.remoteHeadSeen) throw new StreamViolation(`stream ${this.id} sent data before its response head`);
    if (this.remoteEnded) throw new StreamViolation(`stream ${this.id} sent data after its end`);
    if (piece.length > 0) {
      this.received += piece.length;
      if (this.received - this.credited > this.windows.stream) {
        throw new StreamViolation(`stream ${this.id} sent past its window of ${this.windows.stream} bytes`);
      }
      this.push(piece);
    }
    if (end) this.remoteEnd();
    this.credit();
  }

  /** The peer's head after the opening one: the response, or trailers that end its side. */
  receiveHead(headers: MuxHeaders, end: boolean): void {
    if (this.remoteEnded) throw new StreamViolation(`stream ${this.id} sent a head after its end`);
    if (this.opener && !this.remoteHeadSeen) {
      this.remoteHeadSeen = true;
      this.emit('response', headers);
    } else if (end) {
      this.emit('trailers', headers);
    } else {
      throw new StreamViolation(`stream ${this.id} got a second head that does not end it`);
    }
    if (end) this.remoteEnd();
  }

  remoteEnd(): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    this.push(null);
    this.session.maybeSettle(this);
  }

  /** The peer reset the stream, or the tunnel went away. */
  abort(code: number): void {
    if (this.reset_ === undefined) this.reset_ = code;
    this.settled = true;
    this.destroy();
  }

  /**
   * Returns credit for what the reader consumed (buffered bytes are still the tunnel's to
   * hold): to the connection for every byte, which batches on its own, and to the stream in
   * batches of a quarter window. Connection credit must not wait for the stream's batch, or
   * many streams each holding a little less than a batch would starve the whole tunnel.
   */
  credit(): void {
    // A settled stream's unread bytes were given back to the connection when it left the session.
    if (this.settled) return;
    const consumed = this.received - this.readableLength;
    if (consumed > this.connectionCredited) {
      this.session.creditConnection(consumed - this.connectionCredited);
      this.connectionCredited = consumed;
    }
    const owed = consumed - this.credited;
    if (owed <= 0 || this.remoteEnded || owed < Math.max(1, this.windows.stream >> 2)) return;
    this.credited = consumed;
    this.session.creditStream(this.id, owed);
  }

  /** The stream left the session: whatever it still holds unread is no longer the tunnel's. */
  releaseConnectionCredit(): number {
    const owed = this.received - this.connectionCredited;
    this.connectionCredited = this.received;
    return owed;
  }
}


/**
 * Events: `close` (once, the transport is gone), `goaway` (the peer asked that nothing new be
 * opened). Frames are written through one corked pass per tick, so a burst of small frames
 * costs one TLS record.
 */
export class MuxSession extends EventEmitter {
  private readonly streams = new Map<number, MuxStream>();
  private readonly windows: MuxWindows;
  private readonly decoder: FrameDecoder;
  private nextId: number;
  /** Highest id the peer has opened: a lower or equal one again is a reused id. */
  private lastPeerId = 0;
  private sendWindow: number;
  /** Bytes received on the connection and not yet credited back. */
  private connectionUncredited = 0;
  /** Bytes the peer has sent and not had credited back: at most the connection window. */
  private peerInFlight = 0;
  /** Streams the peer opened that are still open (what maxStreams limits). */
  private peerOpened = 0;
  /** Streams with data waiting for connection credit, in the order they blocked. */
  private readonly blocked = new Set<MuxStream>();
  private readonly drainWaiters: ((err?: Error | null) => void)[] = [];
  private readonly pings = new Map<number, { sentAt: number; callback: (err?: Error, rttMs?: number) => void }>();
  private nextPing = 1;
  private corked = false;
  private closing_ = false;
  private destroyed_ = false;

  constructor(private readonly transport: Duplex, private readonly options: MuxSessionOptions) {
    super();
    this.windows = options.windows ?? DEFAULT_WINDOWS;
    this.sendWindow = this.windows.connection;
    this.nextId = options.role === 'edge' ? 1 : 2;
    this.decoder = new FrameDecoder(this.handler());
    const socket = transport as Duplex & { setNoDelay?: (on: boolean) => void };
    // Small frames (a request head, a credit) must not wait for Nagle: they are what a round trip waits on.
    socket.setNoDelay?.(true);
    transport.on('data', (chunk: Buffer) => this.onData(chunk));
    transport.on('end', () => {
      try {
        this.decoder.finish();
      } catch (err) {
        if (err instanceof FrameError) this.logViolation(err.reason, err.message);
      }
      this.destroy();
    });
    transport.on('drain', () => this.releaseDrainWaiters());
    transport.on('error', (err) => options.logger.debug({ err }, 'tunnel transport error'));
    transport.on('close', () => this.destroy());
  }

  get closing(): boolean {
    return this.closing_;
  }

  get destroyed(): boolean {
    return this.destroyed_;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Bytes received on this session's streams that their readers have not taken yet. */
  get bufferedBytes(): number {
    let total = 0;
    for (const stream of this.streams.values()) total += stream.readableLength;
    return total;
  }

  open(headers: MuxHeaders, options: { endStream?: boolean } = {}): MuxStream {
    if (this.closing_ || this.destroyed_) throw new PosternError('tunnel_closed', 'the tunnel is closing', { retryable: true });
    if (this.nextId > MAX_STREAM_ID) {
      this.close();
      throw new PosternError('tunnel_closed', 'the tunnel ran out of stream ids', { retryable: true });
    }
    // Encoded first: a head the frame cannot carry throws before any stream exists.
    const head = encodeHeaders(headers);
    const stream = new MuxStream(this, this.nextId, headers, true, this.windows);
    this.nextId += 2;
    this.streams.set(stream.id, stream);
    this.sendHeaders(stream.id, head, options.endStream === true, true);
    if (options.endStream) stream.endLocally();
    return stream;
  }

  /** Measures a round trip; calls back with an error if the session ends first. */
  ping(callback: (err?: Error, rttMs?: number) => void): void {
    if (this.destroyed_) return void process.nextTick(callback, new PosternError('tunnel_closed', 'the tunnel is closed'));
    const id = this.nextPing++ >>> 0;
    this.pings.set(id, { sentAt: performance.now(), callback });
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(id, 4);
    this.send(encodeFrame(FrameType.ping, 0, 0, payload));
  }

  /** No new streams either way; the transport ends once the open ones are done. */
  close(): void {
    if (this.closing_ || this.destroyed_) return;
    this.closing_ = true;
    this.sendGoaway(ResetCode.none, 'closing');
    this.endIfIdle();
  }

  destroy(): void {
    this.teardown();
    this.transport.destroy();
  }

  /** Stops the session; the transport is left to the caller (to destroy, or to flush a GOAWAY first). */
  private teardown(): void {
    if (this.destroyed_) return;
    this.destroyed_ = true;
    this.closing_ = true;
    for (const stream of [...this.streams.values()]) stream.abort(ResetCode.tunnelClosed);
    this.streams.clear();
    this.blocked.clear();
    for (const { callback } of this.pings.values()) callback(new PosternError('tunnel_closed', 'the tunnel closed before the ping was answered'));
    this.pings.clear();
    this.releaseDrainWaiters();
    this.emit('close');
  }

  // ---- sending ----

  private send(frame: Buffer): void {
    if (this.destroyed_) return;
    this.cork();
    this.transport.write(frame);
  }

  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.transport.cork();
    process.nextTick(() => {
      this.corked = false;
      this.transport.uncork();
    });
  }

  sendHeaders(id: number, head: Buffer, end: boolean, open: boolean): void {
    const flags = (end ? FLAG_END : 0) | (open ? FLAG_OPEN : 0);
    this.send(encodeFrame(FrameType.headers, flags, id, head));
  }

  /** One stream went wrong (a peer breaking the protocol on it, a head that cannot be sent): it alone is reset, logged. */
  failStream(stream: MuxStream, code: ResetCode, reason: string, detail: string): void {
    this.options.logger.warn({ stream: stream.id, reason, detail }, 'tunnel stream failed; resetting it');
    stream.reset(code);
  }

  sendEnd(stream: MuxStream): void {
    this.send(frameHead(FrameType.data, FLAG_END, stream.id, 0));
  }

  sendReset(stream: MuxStream, code: number): void {
    if (stream.settled) return;
    this.send(encodeFrame(FrameType.reset, 0, stream.id, u32(code)));
    this.forget(stream);
  }

  private sendGoaway(code: number, reason: string): void {
    const payload = Buffer.concat([u32(this.lastPeerId), u32(code), Buffer.from(reason.slice(0, 200), 'utf8')]);
    this.send(encodeFrame(FrameType.goaway, 0, 0, payload));
  }

  /** Sends as much of the stream's pending write as both windows allow. */
  pump(stream: MuxStream): void {
    const pending = stream.pending;
    if (!pending || this.destroyed_) return;
    const { chunk } = pending;
    while (pending.offset < chunk.length) {
      const size = Math.min(chunk.length - pending.offset, stream.sendWindow, this.sendWindow, MAX_FRAME_PAYLOAD);
      if (size <= 0) {
        if (this.sendWindow <= 0) this.blocked.add(stream);
        return;
      }
      this.cork();
      this.transport.write(frameHead(FrameType.data, 0, stream.id, size));
      this.transport.write(pending.offset === 0 && size === chunk.length ? chunk : chunk.subarray(pending.offset, pending.offset + size));
      pending.offset += size;
      stream.sendWindow -= size;
      this.sendWindow -= size;
    }
    stream.pending = undefined;
    this.blocked.delete(stream);
    // The transport's own buffer is the last bound: a write completes when it has room again.
    if (this.transport.writableNeedDrain) this.drainWaiters.push(pending.callback);
    else pending.callback();
  }

  private releaseDrainWaiters(): void {
    const waiters = this.drainWaiters.splice(0);
    for (const callback of waiters) callback();
  }

  creditStream(id: number, bytes: number): void {
    this.send(encodeFrame(FrameType.window, 0, id, u32(bytes)));
  }

  creditConnection(bytes: number): void {
    this.connectionUncredited += bytes;
    if (this.connectionUncredited < Math.max(1, this.windows.connection >> 2)) return;
    this.send(encodeFrame(FrameType.window, 0, 0, u32(this.connectionUncredited)));
    this.peerInFlight -= this.connectionUncredited;
    this.connectionUncredited = 0;
  }

  // ---- stream lifecycle ----

  /** Both directions ended on the wire: the stream leaves the session. */
  maybeSettle(stream: MuxStream): void {
    if (stream.settled || !stream.localEnded || !stream.remoteEnded) return;
    this.forget(stream);
    // A stream whose reader never attached still has to end, or it would never close.
    if (stream.readableLength === 0) stream.read(0);
  }

  private forget(stream: MuxStream): void {
    stream.settled = true;
    if (!this.streams.delete(stream.id)) return;
    this.blocked.delete(stream);
    if (!stream.opener) this.peerOpened--;
    // What the stream still holds unread is no longer the tunnel's: the connection gets its credit back.
    const owed = stream.releaseConnectionCredit();
    if (owed > 0) this.creditConnection(owed);
    this.endIfIdle();
  }

  private endIfIdle(): void {
    if (this.closing_ && !this.destroyed_ && this.streams.size === 0) this.transport.end();
  }

  // ---- receiving ----

  private onData(chunk: Buffer): void {
    if (this.destroyed_) return;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      if (err instanceof FrameError || err instanceof Violation) {
        this.logViolation(err.reason, err.message);
        this.sendGoaway(ResetCode.protocol, err.message);
      } else {
        this.options.logger.error({ err }, 'tunnel stream handler failed; closing the tunnel');
        this.sendGoaway(ResetCode.internal, 'internal error');
      }
      this.teardown();
      // The GOAWAY is the peer's only clue why: flush it, then give the transport a moment to go.
      if (this.corked) {
        this.corked = false;
        this.transport.uncork();
      }
      this.transport.end();
      setTimeout(() => this.transport.destroy(), 1000).unref();
    }
  }

  private logViolation(reason: string, message: string): void {
    this.options.logger.warn({ reason, detail: message }, 'tunnel protocol violation; closing the tunnel');
  }

  private handler(): FrameHandler {
    return {
      data: (id, piece, end) => this.onStreamData(id, piece, end),
      frame: (type, flags, id, payload) => {
        switch (type) {
          case FrameType.headers: return this.onHeaders(id, flags, payload);
          case FrameType.reset: return this.onReset(id, payload);
          case FrameType.window: return this.onWindow(id, payload);
          case FrameType.ping: return this.onPing(flags, payload);
          case FrameType.goaway: return this.onGoaway(payload);
          default: throw new FrameError('unknown_frame_type', `unexpected frame type ${type}`);
        }
      },
    };
  }

  private onStreamData(id: number, piece: Buffer, end: boolean): void {
    if (id === 0) throw new Violation('bad_stream_id', 'DATA on stream 0');
    if (piece.length > 0) {
      this.peerInFlight += piece.length;
      if (this.peerInFlight > this.windows.connection) {
        throw new Violation('window_overflow', `the peer sent past the connection window of ${this.windows.connection} bytes`);
      }
    }
    const stream = this.streams.get(id);
    if (!stream) {
      this.checkKnownId(id);
      // A late frame for a stream already gone: dropped, but its bytes still count as returned.
      if (piece.length > 0) this.creditConnection(piece.length);
      return;
    }
    try {
      stream.receive(piece, end);
    } catch (err) {
      this.failViolatingStream(stream, err);
    }
  }

  private onHeaders(id: number, flags: number, payload: Buffer): void {
    if (id === 0) throw new Violation('bad_stream_id', 'HEADERS on stream 0');
    const end = (flags & FLAG_END) !== 0;
    if (flags & FLAG_OPEN) return this.onOpen(id, decodeHeaders(payload), end);
    const stream = this.streams.get(id);
    if (!stream) return this.checkKnownId(id);
    try {
      stream.receiveHead(decodeHeaders(payload), end);
    } catch (err) {
      this.failViolatingStream(stream, err);
    }
  }

  /** The peer broke the protocol on one stream (a malformed head counts): that stream is reset; anything else propagates. */
  private failViolatingStream(stream: MuxStream, err: unknown): void {
    if (!(err instanceof StreamViolation) && !(err instanceof FrameError)) throw err;
    this.failStream(stream, ResetCode.protocol, 'stream_protocol', err.message);
  }

  private onOpen(id: number, headers: MuxHeaders, end: boolean): void {
    const peerParity = this.options.role === 'edge' ? 0 : 1;
    if (id % 2 !== peerParity) throw new Violation('bad_stream_id', `the peer opened stream ${id}, which is not its to open`);
    if (id <= this.lastPeerId) throw new Violation('stream_reused', `the peer opened stream ${id} again`);
    this.lastPeerId = id;
    const onStream = this.options.onStream;
    if (this.closing_ || !onStream || this.peerOpened >= (this.options.maxStreams ?? Infinity)) {
      this.send(encodeFrame(FrameType.reset, 0, id, u32(ResetCode.refused)));
      return;
    }
    const stream = new MuxStream(this, id, headers, false, this.windows);
    this.streams.set(id, stream);
    this.peerOpened++;
    if (end) stream.remoteEnd();
    onStream(stream, headers);
  }

  /** A frame for an id that is not open: fine if the stream existed once, a violation if it never did. */
  private checkKnownId(id: number): void {
    const ours = id % 2 === (this.options.role === 'edge' ? 1 : 0);
    const everOpened = ours ? id < this.nextId : id <= this.lastPeerId;
    if (!everOpened) throw new Violation('bad_stream_id', `a frame for stream ${id}, which was never opened`);
  }

  private onReset(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new FrameError('bad_frame', `RESET with a ${payload.length}-byte payload`);
    const stream = this.streams.get(id);
    if (!stream) return this.checkKnownId(id);
    const code = payload.readUInt32BE(0);
    this.options.logger.debug({ stream: id, code: resetCodeName(code) }, 'tunnel stream reset by the peer');
    this.forget(stream);
    stream.abort(code);
  }

  private onWindow(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new FrameError('bad_frame', `WINDOW with a ${payload.length}-byte payload`);
    const increment = payload.readUInt32BE(0);
    if (increment === 0) throw new FrameError('bad_frame', 'WINDOW of 0 bytes');
    if (id === 0) {
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW) throw new Violation('window_overflow', 'the peer granted more than 2^31 bytes of connection credit');
      for (const stream of [...this.blocked]) {
        this.blocked.delete(stream);
        this.pump(stream);
        if (this.sendWindow <= 0) break;
      }
      return;
    }
    const stream = this.streams.get(id);
    if (!stream) return this.checkKnownId(id);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) throw new Violation('window_overflow', `the peer granted more than 2^31 bytes of credit on stream ${id}`);
    this.pump(stream);
  }

  private onPing(flags: number, payload: Buffer): void {
    if (payload.length !== 8) throw new FrameError('bad_frame', `PING with a ${payload.length}-byte payload`);
    if ((flags & FLAG_ACK) === 0) return this.send(encodeFrame(FrameType.ping, FLAG_ACK, 0, payload));
    const id = payload.readUInt32BE(4);
    const ping = this.pings.get(id);
    if (!ping) return;
    this.pings.delete(id);
    ping.callback(undefined, performance.now() - ping.sentAt);
  }

  private onGoaway(payload: Buffer): void {
    if (payload.length < 8) throw new FrameError('bad_frame', `GOAWAY with a ${payload.length}-byte payload`);
    const code = payload.readUInt32BE(4);
    const reason = payload.toString('utf8', 8);
    if (code !== ResetCode.none) this.options.logger.warn({ code: resetCodeName(code), detail: reason }, 'the tunnel peer reports a protocol error');
    this.closing_ = true;
    this.emit('goaway', code, reason);
    this.endIfIdle();
  }
}
