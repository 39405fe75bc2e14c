// PostgreSQL wire protocol 3.x framing: the untyped startup phase (StartupMessage, SSLRequest,
// GSSENCRequest, CancelRequest) and the typed messages after it, decoded incrementally from
// chunks split anywhere. Length limits are checked as soon as a length is read, so an oversized
// or hostile length costs nothing; typed payloads are decoded lazily by frontend.ts / backend.ts.
import { PayloadReader, PayloadWriter, PgProtocolError } from './codec.js';

export { PgProtocolError } from './codec.js';
export type { PgProtocolErrorReason } from './codec.js';

/** PostgreSQL's own bound on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_LENGTH = 10_000;
/** PostgreSQL's bound on a DataRow, CopyData or Query (PQ_LARGE_MESSAGE_LIMIT). */
export const MAX_MESSAGE_LENGTH = 0x3fffffff;
/** PostgreSQL's bound on the frontend's small control messages (PQ_SMALL_MESSAGE_LIMIT). */
export const MAX_SMALL_MESSAGE_LENGTH = 10_000;

export const PROTOCOL_3_0 = 3 << 16;
const SSL_REQUEST_CODE = (1234 << 16) | 5679;
const GSSENC_REQUEST_CODE = (1234 << 16) | 5680;
const CANCEL_REQUEST_CODE = (1234 << 16) | 5678;
/** Protocol 3.2 lets the cancel key grow to 256 bytes; 3.0 keys are 4. */
const MAX_CANCEL_KEY_BYTES = 256;

export type StartupPacket =
  | { type: 'StartupMessage'; major: number; minor: number; parameters: Record<string, string> }
  | { type: 'SSLRequest' }
  | { type: 'GSSENCRequest' }
  | { type: 'CancelRequest'; processId: number; secretKey: Buffer };

export function decodeStartup(payload: Buffer): StartupPacket {
  const r = new PayloadReader(payload, 'startup packet');
  const code = r.uint32();
  if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
    r.end();
    return { type: code === SSL_REQUEST_CODE ? 'SSLRequest' : 'GSSENCRequest' };
  }
  if (code === CANCEL_REQUEST_CODE) {
    const processId = r.int32();
    const secretKey = r.rest();
    if (secretKey.length < 4 || secretKey.length > MAX_CANCEL_KEY_BYTES) throw r.bad(`a cancel key of ${secretKey.length} bytes`);
    return { type: 'CancelRequest', processId, secretKey };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) throw new PgProtocolError('unsupported_protocol', `frontend protocol ${major}.${minor} is not supported (3.x only)`);
  // Built with fromEntries so that a parameter named __proto__ stays a plain own property.
  const entries: [string, string][] = [];
  const seen = new Set<string>();
  for (;;) {
    const name = r.cstring();
    if (name === '') break;
    if (seen.has(name)) throw r.bad(`parameter "${name}" given twice`);
    seen.add(name);
    entries.push([name, r.cstring()]);
  }
  r.end();
  const parameters: Record<string, string> = Object.fromEntries(entries);
  return { type: 'StartupMessage', major, minor, parameters };
}

export function encodeStartup(packet: StartupPacket): Buffer {
  const w = new PayloadWriter();
  switch (packet.type) {
    case 'SSLRequest': return w.uint32(SSL_REQUEST_CODE).untyped();
    case 'GSSENCRequest': return w.uint32(GSSENC_REQUEST_CODE).untyped();
    case 'CancelRequest': return w.uint32(CANCEL_REQUEST_CODE).int32(packet.processId).bytes(packet.secretKey).untyped();
    case 'StartupMessage': {
      w.uint32((packet.major << 16) | packet.minor);
      for (const [name, value] of Object.entries(packet.parameters)) w.cstring(name).cstring(value);
      return w.int8(0).untyped();
    }
  }
}

/** One typed message as framed on the wire; `raw` is the whole message (type, length, payload), ready to forward. */
export interface PgPacket {
  type: string;
  payload: Buffer;
  raw: Buffer;
}

export const FRONTEND_TYPES = new Set(['Q', 'P', 'B', 'D', 'E', 'S', 'H', 'C', 'd', 'c', 'f', 'X', 'p', 'F']);
export const BACKEND_TYPES = new Set(['R', 'S', 'K', 'Z', 'T', 'D', 'C', 'E', 'N', 'G', 'H', 'W', 'd', 'c', '1', '2', '3', 'I', 's', 'n', 't', 'A', 'V', 'v']);
/** Frontend messages that PostgreSQL reads with its small limit: names and flags only. */
const FRONTEND_SMALL_TYPES = new Set(['D', 'E', 'S', 'H', 'C', 'c', 'X']);

export interface PgDecoderHandler {
  /** A startup-phase packet (frontend side only), decoded. */
  startup?(packet: StartupPacket, raw: Buffer): void;
  /** A typed message, framed but not decoded. */
  message(packet: PgPacket): void;
  /** The server's one-byte answer to an SSLRequest or GSSENCRequest (backend side, after expectEncryptionResponse). */
  encryptionResponse?(accepted: boolean): void;
}

export interface PgDecoderOptions {
  /** Which peer's messages this decoder reads: `frontend` = the client's (starts in the startup phase). */
  side: 'frontend' | 'backend';
  maxStartupLength?: number;
  maxMessageLength?: number;
  maxSmallMessageLength?: number;
}

type Phase = 'startup' | 'typed' | 'encryption-response' | 'cancelled';

/**
 * Incremental decoder for one direction of a connection. push() throws PgProtocolError on a
 * message that breaks the protocol; after that it must not be fed again. finish() throws when
 * the input stopped mid-message.
 */
export class PgDecoder {
  private phase: Phase;
  private readonly head = Buffer.allocUnsafe(5);
  private headFill = 0;
  /** Payload bytes of the current message still to come; -1 while reading a head. */
  private remaining = -1;
  private type = '';
  private parts: Buffer[] = [];
  private readonly known: ReadonlySet<string>;
  private readonly maxStartup: number;
  private readonly maxMessage: number;
  private readonly maxSmall: number;

  constructor(private readonly options: PgDecoderOptions, private readonly handler: PgDecoderHandler) {
    this.phase = options.side === 'frontend' ? 'startup' : 'typed';
    this.known = options.side === 'frontend' ? FRONTEND_TYPES : BACKEND_TYPES;
    this.maxStartup = options.maxStartupLength ?? MAX_STARTUP_LENGTH;
    this.maxMessage = options.maxMessageLength ?? MAX_MESSAGE_LENGTH;
    this.maxSmall = options.maxSmallMessageLength ?? MAX_SMALL_MESSAGE_LENGTH;
  }

  /** True once the frontend sent its StartupMessage (typed messages follow). */
  get started(): boolean {
    return this.phase === 'typed';
  }

  /** The next byte from the server answers an SSLRequest/GSSENCRequest: 'S'/'G' yes, 'N' no. */
  expectEncryptionResponse(): void {
    if (this.options.side !== 'backend' || this.headFill > 0 || this.remaining >= 0) {
      throw new PgProtocolError('unexpected_message', 'an encryption answer can only be awaited between backend messages');
    }
    this.phase = 'encryption-response';
  }

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.phase === 'cancelled') throw new PgProtocolError('unexpected_message', 'data after a CancelRequest');
      if (this.phase === 'encryption-response') {
        const answer = String.fromCharCode(chunk[at++]!);
        if (answer !== 'S' && answer !== 'G' && answer !== 'N') {
          throw new PgProtocolError('unexpected_message', `the server answered an encryption request with byte 0x${answer.charCodeAt(0).toString(16)}`);
        }
        this.phase = 'typed';
        this.handler.encryptionResponse?.(answer !== 'N');
        continue;
      }
      if (this.remaining < 0) {
        const headLength = this.phase === 'startup' ? 4 : 5;
        const start = at;
        if (this.headFill === 0 && chunk.length - at >= headLength) {
          // Fast path: the head is in this chunk, and often the whole message too (forwarded without a copy).
          const length = this.startMessage(chunk, at);
          const total = length + headLength - 4;
          if (chunk.length - at >= total) {
            at += total;
            this.remaining = -1;
            this.complete(chunk.subarray(start + headLength, at), chunk.subarray(start, at));
            continue;
          }
          this.head.set(chunk.subarray(at, at + headLength));
          at += headLength;
        } else {
          const take = Math.min(headLength - this.headFill, chunk.length - at);
          chunk.copy(this.head, this.headFill, at, at + take);
          this.headFill += take;
          at += take;
          if (this.headFill < headLength) return;
          this.headFill = 0;
          this.startMessage(this.head, 0);
        }
        if (this.remaining === 0) this.completeBuffered();
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - at);
      this.parts.push(chunk.subarray(at, at + take));
      at += take;
      this.remaining -= take;
      if (this.remaining === 0) this.completeBuffered();
    }
  }

  /** The transport ended: anything half-read is a truncated message. */
  finish(): void {
    if (this.headFill > 0 || this.remaining >= 0) {
      const what = this.phase === 'startup' ? 'startup packet' : `message '${this.type}'`;
      throw new PgProtocolError('truncated_message', `the connection ended in the middle of a ${what}`);
    }
  }

  /** Reads and checks a head at `buf[at]`; returns the length field and sets `remaining` to the payload size. */
  private startMessage(buf: Buffer, at: number): number {
    if (this.phase === 'startup') {
      const length = buf.readUInt32BE(at);
      if (length < 8) throw new PgProtocolError('bad_length', `a startup packet of length ${length} (at least 8)`);
      if (length > this.maxStartup) throw new PgProtocolError('message_too_large', `a startup packet of ${length} bytes (at most ${this.maxStartup})`);
      this.type = '';
      this.remaining = length - 4;
      return length;
    }
    const type = String.fromCharCode(buf[at]!);
    const length = buf.readUInt32BE(at + 1);
    if (!this.known.has(type)) throw new PgProtocolError('unknown_message_type', `unknown ${this.options.side} message type 0x${buf[at]!.toString(16)}`);
    if (length < 4) throw new PgProtocolError('bad_length', `message '${type}' with length ${length} (at least 4)`);
    const max = this.options.side === 'frontend' && FRONTEND_SMALL_TYPES.has(type) ? this.maxSmall : this.maxMessage;
    if (length > max) throw new PgProtocolError('message_too_large', `message '${type}' of ${length} bytes (at most ${max})`);
    this.type = type;
    this.remaining = length - 4;
    return length;
  }

  private completeBuffered(): void {
    const headLength = this.phase === 'startup' ? 4 : 5;
    const payload = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    this.remaining = -1;
    this.complete(payload, Buffer.concat([this.head.subarray(0, headLength), payload]));
  }

  private complete(payload: Buffer, raw: Buffer): void {
    if (this.phase !== 'startup') {
      this.handler.message({ type: this.type, payload, raw });
      return;
    }
    const packet = decodeStartup(payload);
    if (packet.type === 'StartupMessage') this.phase = 'typed';
    else if (packet.type === 'CancelRequest') this.phase = 'cancelled';
    this.handler.startup?.(packet, raw);
  }
}
