// IP addresses and CIDR ranges as bigints: strict parsing (IPv4, IPv6, IPv4-mapped IPv6 folded
// to IPv4 so `::ffff:10.0.0.1` matches `10.0.0.0/8`), canonical formatting, and range lists
// compiled once. Pure; used to decide whom to believe (trusted proxies) and what is public.
import { PosternError } from '../errors.js';

export interface ParsedIp {
  readonly version: 4 | 6;
  readonly value: bigint;
}

export interface CompiledCidrs {
  /** False for anything that is not an IP address: fail closed. */
  matches(ip: string): boolean;
  readonly size: number;
}

interface Range {
  readonly version: 4 | 6;
  readonly first: bigint;
  readonly last: bigint;
}

const MAPPED_PREFIX = 0xffffn << 32n;
const MAPPED_MASK = ~0xffffffffn & ((1n << 128n) - 1n);
const IPV4_PART = /^(0|[1-9]\d{0,2})$/;
const HEX_GROUP = /^[0-9a-f]{1,4}$/i;

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    // Leading zeros are refused: some parsers read them as octal, so they are ambiguous.
    if (!IPV4_PART.test(part) || Number(part) > 255) return undefined;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

function parseGroups(text: string): bigint[] | undefined {
  if (text === '') return [];
  const groups: bigint[] = [];
  const parts = text.split(':');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (i === parts.length - 1 && part.includes('.')) {
      const v4 = parseIpv4(part);
      if (v4 === undefined) return undefined;
      groups.push(v4 >> 16n, v4 & 0xffffn);
    } else if (HEX_GROUP.test(part)) {
      groups.push(BigInt(`0x${part}`));
    } else {
      return undefined;
    }
  }
  return groups;
}

function parseIpv6(text: string): bigint | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  // A dotted quad is only allowed at the very end.
  if (halves.length === 2 && halves[0]!.includes('.')) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<bigint>(halves.length === 2 ? missing : 0).fill(0n), ...tail];
  return groups.reduce((acc, group) => (acc << 16n) | group, 0n);
}

/** Parses an address; a zone (`fe80::1%eth0`) is dropped, IPv4-mapped IPv6 becomes IPv4. */
export function parseIp(text: string): ParsedIp | undefined {
  const bare = text.trim().split('%')[0]!;
  if (!bare.includes(':')) {
    const v4 = parseIpv4(bare);
    return v4 === undefined ? undefined : { version: 4, value: v4 };
  }
  const v6 = parseIpv6(bare);
  return v6 === undefined ? undefined : foldMapped({ version: 6, value: v6 });
}

/** `::ffff:a.b.c.d` is an IPv4 peer seen through a dual-stack socket: treat it as a.b.c.d. */
export function foldMapped(ip: ParsedIp): ParsedIp {
  if (ip.version === 6 && (ip.value & MAPPED_MASK) === MAPPED_PREFIX) return { version: 4, value: ip.value & 0xffffffffn };
  return ip;
}

/** RFC 5952 form for IPv6 (lower case, longest zero run compressed), dotted quad for IPv4. */
export function formatIp(ip: ParsedIp): string {
  if (ip.version === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((ip.value >> shift) & 0xffn)).join('.');
  }
  const groups = Array.from({ length: 8 }, (_, i) => Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** The canonical spelling of an address, or undefined when it is not one. */
export function normalizeIp(text: string): string | undefined {
  const ip = parseIp(text);
  return ip === undefined ? undefined : formatIp(ip);
}

function parseCidr(entry: string): Range {
  const invalid = (): PosternError => new PosternError('config_invalid', `invalid CIDR "${entry}"`);
  const [address = '', prefixText, extra] = entry.trim().split('/');
  if (extra !== undefined || (prefixText !== undefined && !/^(0|[1-9]\d{0,2})$/.test(prefixText))) throw invalid();
  let version: 4 | 6 = address.includes(':') ? 6 : 4;
  let value = version === 4 ? parseIpv4(address) : parseIpv6(address);
  let prefix = prefixText === undefined ? (version === 4 ? 32 : 128) : Number(prefixText);
  if (value === undefined || prefix > (version === 4 ? 32 : 128)) throw invalid();
  // `::ffff:10.0.0.0/104` is written as IPv6 but means an IPv4 range; addresses fold the same way.
  if (version === 6 && prefix >= 96 && (value & MAPPED_MASK) === MAPPED_PREFIX) {
    [version, value, prefix] = [4, value & 0xffffffffn, prefix - 96];
  }
  // Host bits are masked off, as most tools do: `10.1.2.3/8` means 10.0.0.0/8.
  const hostBits = BigInt((version === 4 ? 32 : 128) - prefix);
  const first = (value >> hostBits) << hostBits;
  return { version, first, last: first + (1n << hostBits) - 1n };
}

/** Compiles a list like `["10.0.0.0/8", "::1"]` once; a bad entry is a config error naming it. */
export function compileCidrs(list: readonly string[]): CompiledCidrs {
  const ranges = list.map(parseCidr);
  return {
    size: ranges.length,
    matches(ip: string): boolean {
      const parsed = parseIp(ip);
      if (parsed === undefined) return false;
      return ranges.some((r) => r.version === parsed.version && parsed.value >= r.first && parsed.value <= r.last);
    },
  };
}

/** Private, loopback, link-local, shared, documentation, multicast and reserved ranges. */
export const NON_PUBLIC_RANGES: readonly string[] = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
  '192.0.0.0/24', '192.0.2.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24',
  '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4',
  '::/128', '::1/128', '100::/64', '2001:db8::/32', 'fc00::/7', 'fe80::/10', 'ff00::/8',
];

const nonPublic = compileCidrs(NON_PUBLIC_RANGES);

/** True for an address that can be located on the public internet. */
export function isPublicIp(ip: string): boolean {
  return parseIp(ip) !== undefined && !nonPublic.matches(ip);
}
