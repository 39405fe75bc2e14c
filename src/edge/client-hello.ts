// Reads the server name (SNI) and ALPN list from a TLS ClientHello without terminating TLS,
// so the edge can pick which TLS server (and which client-certificate policy) gets the bytes.

export interface ClientHelloInfo {
  readonly serverName?: string;
  readonly alpn: readonly string[];
}

export type PeekResult =
  | { readonly kind: 'hello'; readonly info: ClientHelloInfo }
  /** More bytes are needed (the record is not complete yet). */
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly reason: string };

const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
/** The largest first record we wait for; a ClientHello fits in one 16 KiB record. */
export const MAX_HELLO_BYTES = 16 * 1024 + 5;

class Reader {
  offset = 0;
  constructor(private readonly buf: Buffer, private readonly end = buf.length) {}

  need(n: number): void {
    if (this.offset + n > this.end) throw new RangeError('truncated');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  u24(): number {
    this.need(3);
    const v = this.buf.readUIntBE(this.offset, 3);
    this.offset += 3;
    return v;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  sub(n: number): Reader {
    this.need(n);
    const reader = new Reader(this.buf, this.offset + n);
    reader.offset = this.offset;
    this.offset += n;
    return reader;
  }

  get remaining(): number {
    return this.end - this.offset;
  }
}

/** Parses the first TLS record; `incomplete` until the whole record has arrived. */
export function peekClientHello(data: Buffer): PeekResult {
  if (data.length < 5) return { kind: 'incomplete' };
  if (data[0] !== HANDSHAKE) return { kind: 'invalid', reason: 'not a TLS handshake' };
  const recordLength = data.readUInt16BE(3);
  if (recordLength > 16 * 1024) return { kind: 'invalid', reason: 'TLS record too long' };
  if (data.length < 5 + recordLength) return { kind: 'incomplete' };
  try {
    const record = new Reader(data, 5 + recordLength);
    record.offset = 5;
    if (record.u8() !== CLIENT_HELLO) return { kind: 'invalid', reason: 'first handshake message is not a ClientHello' };
    const hello = record.sub(record.u24());
    hello.bytes(2 + 32);
    hello.bytes(hello.u8());
    hello.bytes(hello.u16());
    hello.bytes(hello.u8());
    let serverName: string | undefined;
    let alpn: string[] = [];
    if (hello.remaining === 0) return { kind: 'hello', info: { alpn } };
    const extensions = hello.sub(hello.u16());
    while (extensions.remaining > 0) {
      const type = extensions.u16();
      const body = extensions.sub(extensions.u16());
      if (type === EXT_SERVER_NAME) serverName = readServerName(body);
      else if (type === EXT_ALPN) alpn = readAlpn(body);
    }
    return { kind: 'hello', info: { ...(serverName !== undefined ? { serverName } : {}), alpn } };
  } catch {
    return { kind: 'invalid', reason: 'malformed ClientHello' };
  }
}

function readServerName(body: Reader): string | undefined {
  const list = body.sub(body.u16());
  while (list.remaining > 0) {
    const nameType = list.u8();
    const name = list.bytes(list.u16());
    if (nameType === 0) {
      const host = name.toString('ascii').toLowerCase();
      return /^[a-z0-9.-]{1,253}$/.test(host) ? host : undefined;
    }
  }
  return undefined;
}

function readAlpn(body: Reader): string[] {
  const list = body.sub(body.u16());
  const protocols: string[] = [];
  while (list.remaining > 0) protocols.push(list.bytes(list.u8()).toString('latin1'));
  return protocols;
}
