// The postern/2 frame layer: a 10-byte head (payload length u32, type u8, flags u8, stream
// id u32) and a payload of at most MAX_FRAME_PAYLOAD bytes. Heads are parsed incrementally
// from whatever chunks TLS hands over; DATA payloads are handed on as slices of those chunks
// (no copy), every other frame is small and is delivered whole.

export const FRAME_HEAD_BYTES = 10;
/**
 * Large enough that bulk data costs few heads, small enough that one stream cannot hog the
 * wire for long; it also bounds what a control frame (collected whole) can make the peer buffer.
 */
export const MAX_FRAME_PAYLOAD = 64 * 1024;

export const FrameType = {
  data: 0,
  headers: 1,
  reset: 2,
  window: 3,
  ping: 4,
  goaway: 5,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** DATA / HEADERS: the sender's side of the stream ends with this frame. */
export const FLAG_END = 0x1;
/** HEADERS: this frame opens the stream (the opener's request head). */
export const FLAG_OPEN = 0x2;
/** PING: this is the answer. */
export const FLAG_ACK = 0x1;

/** Why a stream was reset, or a session went away (RESET and GOAWAY payloads). */
export const ResetCode = {
  none: 0,
  protocol: 1,
  internal: 2,
  cancel: 3,
  refused: 4,
  connect: 5,
  tunnelClosed: 6,
} as const;
export type ResetCode = (typeof ResetCode)[keyof typeof ResetCode];

export function resetCodeName(code: number): string {
  for (const [name, value] of Object.entries(ResetCode)) if (value === code) return name;
  return `code ${code}`;
}

/** A stream head: names are lower-case; a repeated header is an array. */
export type MuxHeaders = Record<string, string | string[]>;

export type FrameErrorReason = 'frame_too_large' | 'unknown_frame_type' | 'bad_frame' | 'truncated_frame' | 'bad_headers';

/** The peer broke the framing: the session cannot be trusted past this point. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(readonly reason: FrameErrorReason, message: string) {
    super(message);
  }
}

function writeHead(target: Buffer, type: FrameType, flags: number, stream: number, length: number): void {
  target.writeUInt32BE(length, 0);
  target[4] = type;
  target[5] = flags;
  target.writeUInt32BE(stream, 6);
}

export function frameHead(type: FrameType, flags: number, stream: number, length: number): Buffer {
  const head = Buffer.allocUnsafe(FRAME_HEAD_BYTES);
  writeHead(head, type, flags, stream, length);
  return head;
}

/** A whole frame in one buffer (control frames; DATA goes as head + the caller's own chunk). */
export function encodeFrame(type: FrameType, flags: number, stream: number, payload?: Buffer): Buffer {
  const length = payload?.length ?? 0;
  const frame = Buffer.allocUnsafe(FRAME_HEAD_BYTES + length);
  writeHead(frame, type, flags, stream, length);
  if (payload) payload.copy(frame, FRAME_HEAD_BYTES);
  return frame;
}

export function u32(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

/**
 * Headers as `count u16, then per header: name length u8, name, value length u16, value`,
 * latin1 both, one entry per value. No compression: heads are small and this costs one pass.
 */
const NOT_LATIN1 = /[^\x00-\xff]/;

export function encodeHeaders(headers: MuxHeaders): Buffer {
  let size = 2;
  let count = 0;
  for (const name in headers) {
    const value = headers[name]!;
    if (Array.isArray(value)) {
      for (const v of value) size += 3 + name.length + Buffer.byteLength(v, 'latin1');
      count += value.length;
    } else {
      size += 3 + name.length + Buffer.byteLength(value, 'latin1');
      count++;
    }
  }
  if (count > 0xffff) throw new FrameError('bad_headers', `a stream head has ${count} headers (at most 65535)`);
  const out = Buffer.allocUnsafe(size);
  out.writeUInt16BE(count, 0);
  let at = 2;
  const put = (name: string, value: string) => {
    if (name.length === 0 || name.length > 0xff) throw new FrameError('bad_headers', `header name of ${name.length} bytes`);
    if (value.length > 0xffff) throw new FrameError('bad_headers', `header "${name}" is longer than 65535 bytes`);
    // latin1 keeps only a character's low byte: anything above U+00FF would arrive as another character.
    if (NOT_LATIN1.test(name) || NOT_LATIN1.test(value)) throw new FrameError('bad_headers', `header "${name.replace(NOT_LATIN1, '?')}" holds a character a stream head cannot carry`);
    out[at++] = name.length;
    at += out.write(name, at, 'latin1');
    out.writeUInt16BE(value.length, at);
    at += 2;
    at += out.write(value, at, 'latin1');
  };
  for (const name in headers) {
    const value = headers[name]!;
    if (Array.isArray(value)) for (const v of value) put(name, v);
    else put(name, value);
  }
  return out;
}

export function decodeHeaders(payload: Buffer): MuxHeaders {
  const bad = (what: string) => new FrameError('bad_headers', `malformed stream head: ${what}`);
  if (payload.length < 2) throw bad('no header count');
  const count = payload.readUInt16BE(0);
  const headers: MuxHeaders = Object.create(null) as MuxHeaders;
  let at = 2;
  for (let i = 0; i < count; i++) {
    if (at + 1 > payload.length) throw bad('header cut short');
    const nameLength = payload[at++]!;
    if (nameLength === 0 || at + nameLength + 2 > payload.length) throw bad('header name cut short');
    const name = payload.toString('latin1', at, at + nameLength);
    at += nameLength;
    const valueLength = payload.readUInt16BE(at);
    at += 2;
    if (at + valueLength > payload.length) throw bad('header value cut short');
    const value = payload.toString('latin1', at, at + valueLength);
    at += valueLength;
    const seen = headers[name];
    if (seen === undefined) headers[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else headers[name] = [seen, value];
  }
  if (at !== payload.length) throw bad('bytes after the last header');
  return headers;
}

export interface FrameHandler {
  /** A piece of a DATA frame's payload, in order; `end` is true on the last piece of a frame flagged END. */
  data(stream: number, piece: Buffer, end: boolean): void;
  /** Any other frame, whole. */
  frame(type: FrameType, flags: number, stream: number, payload: Buffer): void;
}

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

/**
 * Incremental decoder. push() throws FrameError on a frame that breaks the framing; after
 * that it must not be fed again. finish() throws when the input stopped mid-frame.
 */
export class FrameDecoder {
  private readonly head = Buffer.allocUnsafe(FRAME_HEAD_BYTES);
  private headFill = 0;
  /** Bytes of the current frame's payload still to come; -1 while reading a head. */
  private remaining = -1;
  private type: FrameType = FrameType.data;
  private flags = 0;
  private stream = 0;
  private control: Buffer[] = [];

  constructor(private readonly handler: FrameHandler) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.remaining < 0) {
        const take = Math.min(FRAME_HEAD_BYTES - this.headFill, chunk.length - at);
        chunk.copy(this.head, this.headFill, at, at + take);
        this.headFill += take;
        at += take;
        if (this.headFill < FRAME_HEAD_BYTES) return;
        this.headFill = 0;
        this.startFrame();
        if (this.remaining === 0) this.completeFrame(Buffer.alloc(0));
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - at);
      const piece = chunk.subarray(at, at + take);
      at += take;
      this.remaining -= take;
      if (this.type === FrameType.data) {
        const last = this.remaining === 0;
        if (last) this.remaining = -1;
        this.handler.data(this.stream, piece, last && (this.flags & FLAG_END) !== 0);
      } else {
        this.control.push(piece);
        if (this.remaining === 0) {
          const payload = this.control.length === 1 ? this.control[0]! : Buffer.concat(this.control);
          this.control = [];
          this.completeFrame(payload);
        }
      }
    }
  }

  /** The transport ended: anything half-read is a truncated frame. */
  finish(): void {
    if (this.headFill > 0 || this.remaining >= 0) {
      throw new FrameError('truncated_frame', 'the tunnel ended in the middle of a frame');
    }
  }

  private startFrame(): void {
    const length = this.head.readUInt32BE(0);
    const type = this.head[4]!;
    if (!KNOWN_TYPES.has(type)) throw new FrameError('unknown_frame_type', `unknown frame type ${type}`);
    if (length > MAX_FRAME_PAYLOAD) throw new FrameError('frame_too_large', `a frame of ${length} bytes (at most ${MAX_FRAME_PAYLOAD})`);
    this.type = type as FrameType;
    this.flags = this.head[5]!;
    this.stream = this.head.readUInt32BE(6);
    this.remaining = length;
  }

  private completeFrame(payload: Buffer): void {
    this.remaining = -1;
    if (this.type === FrameType.data) this.handler.data(this.stream, payload, (this.flags & FLAG_END) !== 0);
    else this.handler.frame(this.type, this.flags, this.stream, payload);
  }
}
