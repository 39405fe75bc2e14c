// Who the client really is when Postern sits behind load balancers: X-Forwarded-For is believed
// only as far as a chain of trusted proxies vouches for it, and PROXY protocol v1/v2 headers are
// parsed from the first bytes of a connection. Pure: the caller owns sockets and buffering.
import { canonicalIp, foldMapped, formatIp, normalizeIp, parseIp } from './cidr.js';
import type { CompiledCidrs } from './cidr.js';

/** An X-Forwarded-For item: a bare address, `[v6]`, `[v6]:port` or `v4:port`. */
function forwardedAddress(item: string): string | undefined {
  const text = item.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(text);
  if (bracketed) return normalizeIp(bracketed[1]!);
  const v4WithPort = /^([\d.]+):\d{1,5}$/.exec(text);
  return normalizeIp(v4WithPort ? v4WithPort[1]! : text);
}

/**
 * The client's address: the direct peer unless it is a trusted proxy, in which case
 * X-Forwarded-For is walked right to left and the first untrusted hop is the client. A garbage
 * entry stops the walk at the last hop that was vouched for, so a client cannot smuggle a
 * spoofed value past one. When every hop is trusted the leftmost one is the answer.
 */
export function clientAddress(remoteIp: string, forwardedFor: string | undefined, trusted: CompiledCidrs): string {
  let client = canonicalIp(remoteIp);
  if (forwardedFor === undefined || forwardedFor.trim() === '' || !trusted.matches(client)) return client;
  const hops = forwardedFor.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = forwardedAddress(hops[i]!);
    if (hop === undefined) return client;
    client = hop;
    if (!trusted.matches(hop)) return hop;
  }
  return client;
}

export interface ProxyTlv {
  readonly type: number;
  readonly value: Buffer;
}

export type ProxyHeader =
  /** Too few bytes yet to tell; read more (the header fits in 16 + 65535 bytes, v1 in 107). */
  | { readonly kind: 'incomplete' }
  /** The stream does not start with a PROXY header. */
  | { readonly kind: 'none' }
  | {
      readonly kind: 'proxy';
      readonly source: string;
      readonly sourcePort: number;
      readonly destination: string;
      readonly destinationPort: number;
      /** Bytes to strip before the client's own data. */
      readonly headerLength: number;
      /** v2 type-length-value extensions (authority, TLS info…); empty for v1. */
      readonly tlvs: readonly ProxyTlv[];
    }
  /** A header without addresses (v2 LOCAL, v1 UNKNOWN, unix sockets): strip it, keep the peer. */
  | { readonly kind: 'local'; readonly headerLength: number }
  | { readonly kind: 'invalid'; readonly reason: string };

const V1_PREFIX = Buffer.from('PROXY ', 'ascii');
const V1_MAX_LENGTH = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED_LENGTH = 16;
const PORT = /^(0|[1-9]\d{0,4})$/;

const invalid = (reason: string): ProxyHeader => ({ kind: 'invalid', reason });

/** Whether `buf` could still turn into `signature` with more bytes (or already starts with it). */
function startsLike(buf: Buffer, signature: Buffer): boolean {
  const n = Math.min(buf.length, signature.length);
  return buf.subarray(0, n).equals(signature.subarray(0, n));
}

function parseV1(buf: Buffer): ProxyHeader {
  const end = buf.subarray(0, V1_MAX_LENGTH).indexOf('\r\n');
  if (end < 0) return buf.length < V1_MAX_LENGTH ? { kind: 'incomplete' } : invalid('v1 header longer than 107 bytes');
  const headerLength = end + 2;
  const fields = buf.subarray(V1_PREFIX.length, end).toString('latin1').split(' ');
  if (fields[0] === 'UNKNOWN') return { kind: 'local', headerLength };
  const [family, source, destination, sourcePort, destinationPort, extra] = fields;
  if (family !== 'TCP4' && family !== 'TCP6') return invalid(`v1 family "${family ?? ''}" is not TCP4, TCP6 or UNKNOWN`);
  if (extra !== undefined || destinationPort === undefined) return invalid('v1 header needs exactly 5 fields');
  const src = parseIp(source!);
  const dst = parseIp(destination!);
  // Mapped addresses fold to IPv4, so the family is checked on the spelling, not the result.
  const spelled = (text: string): string => (text.includes(':') ? 'TCP6' : 'TCP4');
  if (src === undefined || dst === undefined || spelled(source!) !== family || spelled(destination!) !== family) {
    return invalid(`v1 addresses are not ${family}`);
  }
  const ports = [sourcePort!, destinationPort].map((p) => (PORT.test(p) ? Number(p) : NaN));
  if (!ports.every((p) => p <= 65535)) return invalid('v1 ports must be 0-65535');
  return {
    kind: 'proxy',
    source: formatIp(src),
    sourcePort: ports[0]!,
    destination: formatIp(dst),
    destinationPort: ports[1]!,
    headerLength,
    tlvs: [],
  };
}

function parseTlvs(buf: Buffer): ProxyTlv[] | undefined {
  const tlvs: ProxyTlv[] = [];
  for (let offset = 0; offset < buf.length; ) {
    if (offset + 3 > buf.length) return undefined;
    const length = buf.readUInt16BE(offset + 1);
    if (offset + 3 + length > buf.length) return undefined;
    tlvs.push({ type: buf[offset]!, value: Buffer.from(buf.subarray(offset + 3, offset + 3 + length)) });
    offset += 3 + length;
  }
  return tlvs;
}

function readAddress(buf: Buffer, offset: number, bytes: 4 | 16): string {
  let value = 0n;
  for (let i = 0; i < bytes; i++) value = (value << 8n) | BigInt(buf[offset + i]!);
  return formatIp(foldMapped({ version: bytes === 4 ? 4 : 6, value }));
}

function parseV2(buf: Buffer): ProxyHeader {
  if (buf.length < V2_FIXED_LENGTH) return { kind: 'incomplete' };
  const version = buf[12]! >> 4;
  const command = buf[12]! & 0x0f;
  const family = buf[13]! >> 4;
  const length = buf.readUInt16BE(14);
  if (version !== 2) return invalid(`v2 header with version ${version}`);
  if (command > 1) return invalid(`v2 header with unknown command ${command}`);
  const headerLength = V2_FIXED_LENGTH + length;
  if (buf.length < headerLength) return { kind: 'incomplete' };
  // LOCAL is the proxy's own health check; UNSPEC and UNIX carry no IP to believe.
  if (command === 0 || family === 0 || family === 3) return { kind: 'local', headerLength };
  if (family !== 1 && family !== 2) return invalid(`v2 header with unknown address family ${family}`);
  const bytes = family === 1 ? 4 : 16;
  const addressLength = 2 * bytes + 4;
  if (length < addressLength) return invalid(`v2 header too short for its ${family === 1 ? 'IPv4' : 'IPv6'} addresses`);
  const body = buf.subarray(V2_FIXED_LENGTH, headerLength);
  const tlvs = parseTlvs(body.subarray(addressLength));
  if (tlvs === undefined) return invalid('v2 TLV runs past the end of the header');
  return {
    kind: 'proxy',
    source: readAddress(body, 0, bytes),
    destination: readAddress(body, bytes, bytes),
    sourcePort: body.readUInt16BE(2 * bytes),
    destinationPort: body.readUInt16BE(2 * bytes + 2),
    headerLength,
    tlvs,
  };
}

/** Classifies the first bytes of a connection as a PROXY protocol v1 or v2 header, or not one. */
export function parseProxyHeader(buf: Buffer): ProxyHeader {
  if (buf.length === 0) return { kind: 'incomplete' };
  if (startsLike(buf, V2_SIGNATURE)) {
    return buf.length < V2_SIGNATURE.length ? { kind: 'incomplete' } : parseV2(buf);
  }
  if (startsLike(buf, V1_PREFIX)) {
    return buf.length < V1_PREFIX.length ? { kind: 'incomplete' } : parseV1(buf);
  }
  return { kind: 'none' };
}
