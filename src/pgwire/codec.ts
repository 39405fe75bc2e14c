// Byte-level reading and writing of PostgreSQL wire payloads: big-endian integers and
// NUL-terminated strings. A short or malformed payload is a PgProtocolError, never a RangeError.

export type PgProtocolErrorReason =
  | 'message_too_large'
  | 'bad_length'
  | 'truncated_message'
  | 'unknown_message_type'
  | 'unsupported_protocol'
  | 'unexpected_message'
  | 'bad_message';

/** The peer broke the wire protocol: the connection cannot be trusted past this point. */
export class PgProtocolError extends Error {
  override readonly name = 'PgProtocolError';
  /** What PostgreSQL itself answers such a client with: protocol_violation. */
  readonly sqlstate = '08P01';
  constructor(readonly reason: PgProtocolErrorReason, message: string) {
    super(message);
  }
}

export class PayloadReader {
  private at = 0;
  constructor(private readonly buf: Buffer, private readonly what: string) {}

  private need(n: number): void {
    if (this.at + n > this.buf.length) throw this.bad(`needs ${n} more byte(s) at offset ${this.at}`);
  }

  bad(problem: string): PgProtocolError {
    return new PgProtocolError('bad_message', `malformed ${this.what}: ${problem}`);
  }

  int8(): number {
    this.need(1);
    return this.buf[this.at++]!;
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.at);
    this.at += 2;
    return v;
  }

  /** A count: an int16 that must not be negative. */
  count(): number {
    const n = this.int16();
    if (n < 0) throw this.bad(`negative count ${n}`);
    return n;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.at);
    this.at += 4;
    return v;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }

  cstring(): string {
    const end = this.buf.indexOf(0, this.at);
    if (end < 0) throw this.bad('a string is missing its NUL terminator');
    const s = this.buf.toString('utf8', this.at, end);
    this.at = end + 1;
    return s;
  }

  bytes(n: number): Buffer {
    if (n < 0) throw this.bad(`negative length ${n}`);
    this.need(n);
    const b = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }

  /** An int32 length then that many bytes; -1 is SQL NULL. */
  nullableBytes(): Buffer | null {
    const n = this.int32();
    return n === -1 ? null : this.bytes(n);
  }

  rest(): Buffer {
    const b = this.buf.subarray(this.at);
    this.at = this.buf.length;
    return b;
  }

  get remaining(): number {
    return this.buf.length - this.at;
  }

  end(): void {
    if (this.at !== this.buf.length) throw this.bad(`${this.buf.length - this.at} byte(s) after the last field`);
  }
}

/** Collects fields, then frames them once: the length is known only at the end. */
export class PayloadWriter {
  private readonly parts: Buffer[] = [];
  private size = 0;

  private push(b: Buffer): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }

  int8(v: number): this {
    return this.push(Buffer.from([v & 0xff]));
  }

  int16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(v, 0);
    return this.push(b);
  }

  int32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(v, 0);
    return this.push(b);
  }

  uint32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v >>> 0, 0);
    return this.push(b);
  }

  cstring(s: string): this {
    if (s.includes('\0')) throw new PgProtocolError('bad_message', 'a protocol string cannot hold a NUL character');
    return this.push(Buffer.from(`${s}\0`, 'utf8'));
  }

  bytes(b: Buffer): this {
    return this.push(b);
  }

  nullableBytes(b: Buffer | null): this {
    if (b === null) return this.int32(-1);
    return this.int32(b.length).push(b);
  }

  /** A typed message: type byte, int32 length (counting itself), payload. */
  typed(type: string): Buffer {
    const out = Buffer.allocUnsafe(5 + this.size);
    out[0] = type.charCodeAt(0);
    out.writeUInt32BE(4 + this.size, 1);
    Buffer.concat(this.parts, this.size).copy(out, 5);
    return out;
  }

  /** A startup-phase message: int32 length (counting itself), payload; no type byte. */
  untyped(): Buffer {
    const out = Buffer.allocUnsafe(4 + this.size);
    out.writeUInt32BE(4 + this.size, 0);
    Buffer.concat(this.parts, this.size).copy(out, 4);
    return out;
  }
}
