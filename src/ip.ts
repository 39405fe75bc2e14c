// IP addresses and CIDRs as four 32-bit words of one 128-bit space. IPv4 lives at its
// IPv4-mapped place (::ffff:a.b.c.d), so `::ffff:1.2.3.4` and `1.2.3.4` are the same address
// and an IPv4 CIDR matches both; matching is then one loop over words, with no bigint. Below
// every folder: policy matches `where.ip` with it, reporting formats and trusts addresses by it.

/** Four 32-bit words, most significant first. */
export type IpWords = readonly [number, number, number, number];

export interface Cidr {
  /** The network, host bits cleared. */
  readonly words: IpWords;
  /** Prefix length in the 128-bit space (an IPv4 /24 is /120 here). */
  readonly prefix: number;
  /** As written, for explanations. */
  readonly text: string;
}

const HEXTET = /^[0-9a-fA-F]{1,4}$/;

/** Dotted quad by character codes (every client address goes through here): no leading zeros. */
function parseV4(text: string): number | undefined {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i === text.length ? 46 : text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part > 255 || (digits > 1 && text.charCodeAt(i - digits) === 48)) return undefined;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48);
      digits++;
    } else return undefined;
  }
  return dots === 4 ? value : undefined;
}

/** Eight 16-bit groups of an IPv6 text, or undefined. Accepts `::` and a dotted IPv4 tail. */
function parseV6Groups(text: string): number[] | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const side = (part: string, allowV4Tail: boolean): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (allowV4Tail && i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseV4(piece);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else if (HEXTET.test(piece)) out.push(parseInt(piece, 16));
      else return undefined;
    }
    return out;
  };
  if (halves.length === 1) {
    const all = side(halves[0]!, true);
    return all && all.length === 8 ? all : undefined;
  }
  const head = side(halves[0]!, false);
  const tail = side(halves[1]!, true);
  if (!head || !tail || head.length + tail.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** An address (IPv4 or IPv6, an IPv6 zone such as `%eth0` ignored) as words, or undefined. */
export function parseIp(text: string): IpWords | undefined {
  if (!text.includes(':')) {
    const v4 = parseV4(text);
    return v4 === undefined ? undefined : [0, 0, 0xffff, v4];
  }
  const zone = text.indexOf('%');
  const groups = parseV6Groups(zone === -1 ? text : text.slice(0, zone));
  if (!groups) return undefined;
  const w = (i: number) => (groups[i]! * 0x10000 + groups[i + 1]!) >>> 0;
  return [w(0), w(2), w(4), w(6)];
}

function maskWord(word: number, index: number, prefix: number): number {
  const bits = Math.min(32, Math.max(0, prefix - 32 * index));
  if (bits === 0) return 0;
  return bits === 32 ? word : (word & ~(0xffffffff >>> bits)) >>> 0;
}

/** `10.0.0.0/8`, `2001:db8::/32` or a single address; undefined when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  if (address.includes('%')) return undefined;
  const words = parseIp(address);
  if (!words) return undefined;
  const isV4 = !address.includes(':');
  const max = isV4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const bits = text.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(bits) || Number(bits) > max) return undefined;
    prefix = Number(bits);
  }
  const prefix128 = isV4 ? prefix + 96 : prefix;
  const masked: IpWords = [maskWord(words[0], 0, prefix128), maskWord(words[1], 1, prefix128), maskWord(words[2], 2, prefix128), maskWord(words[3], 3, prefix128)];
  return { words: masked, prefix: prefix128, text };
}

export function cidrContains(cidr: Cidr, ip: IpWords): boolean {
  const p = cidr.prefix;
  const n = cidr.words;
  return maskWord(ip[0], 0, p) === n[0] && maskWord(ip[1], 1, p) === n[1] && maskWord(ip[2], 2, p) === n[2] && maskWord(ip[3], 3, p) === n[3];
}
