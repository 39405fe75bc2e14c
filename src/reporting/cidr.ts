// IP addresses for reporting and trust: the strict parser policies match with (src/ip.ts: IPv4, IPv6,
// IPv4-mapped IPv6 folded to IPv4 so `::ffff:10.0.0.1` matches `10.0.0.0/8`) seen as bigints
// for canonical formatting, and range lists compiled once. Pure; used to decide whom to believe
// (trusted proxies) and what is public.
import { PosternError } from '../errors.js';
import { cidrContains, parseCidr, parseIp as parseIpWords } from '../ip.js';
import type { IpWords } from '../ip.js';

export interface ParsedIp {
  readonly version: 4 | 6;
  readonly value: bigint;
}

export interface CompiledCidrs {
  /** False for anything that is not an IP address: fail closed. */
  matches(ip: string): boolean;
  readonly size: number;
}

const MAPPED_PREFIX = 0xffffn << 32n;
const MAPPED_MASK = ~0xffffffffn & ((1n << 128n) - 1n);

/** An IPv4 address, or a range inside ::ffff:0:0/96, as the policy parser stores both. */
function isMappedWords(words: IpWords): boolean {
  return words[0] === 0 && words[1] === 0 && words[2] === 0xffff;
}

/** Parses an address; a zone (`fe80::1%eth0`) is dropped, IPv4-mapped IPv6 becomes IPv4. */
export function parseIp(text: string): ParsedIp | undefined {
  const words = parseIpWords(text.trim());
  if (words === undefined) return undefined;
  if (isMappedWords(words)) return { version: 4, value: BigInt(words[3]) };
  return { version: 6, value: words.reduce((acc, word) => (acc << 32n) | BigInt(word), 0n) };
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

/** A peer address as the audit trail and policies spell it (`::ffff:1.2.3.4` is 1.2.3.4); text that is no address stays as it is. */
export function canonicalIp(text: string): string {
  return normalizeIp(text) ?? text;
}

/**
 * The network one client usually holds whole, for counting a client's attempts: an IPv4 address
 * itself (IPv4-mapped IPv6 folded), an IPv6 address's /64; text that is no address stays as it is.
 */
export function clientNetwork(text: string): string {
  const ip = parseIp(text);
  if (ip === undefined) return text;
  if (ip.version === 4) return formatIp(ip);
  return `${formatIp({ version: 6, value: ip.value & ~((1n << 64n) - 1n) })}/64`;
}

/**
 * Compiles a list like `["10.0.0.0/8", "::1"]` once; a bad entry is a config error naming it.
 * IPv4 and IPv6 stay apart here: an IPv6 range (even ::/0) never vouches for an IPv4 peer.
 */
export function compileCidrs(list: readonly string[]): CompiledCidrs {
  const ranges = list.map((entry) => {
    const cidr = parseCidr(entry.trim());
    if (cidr === undefined) throw new PosternError('config_invalid', `invalid CIDR "${entry}"`);
    return { cidr, v4: cidr.prefix >= 96 && isMappedWords(cidr.words) };
  });
  return {
    size: ranges.length,
    matches(ip: string): boolean {
      const words = parseIpWords(ip.trim());
      if (words === undefined) return false;
      const v4 = isMappedWords(words);
      return ranges.some((r) => r.v4 === v4 && cidrContains(r.cidr, words));
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
