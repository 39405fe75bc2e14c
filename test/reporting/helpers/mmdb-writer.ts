// A minimal MaxMind DB (v2) writer for tests: an IPv6 search tree with 32-bit records, a data
// section of maps and strings, and the metadata after the `\xAB\xCD\xEFMaxMind.com` marker.
// Enough to give the maxmind reader a real file; not a general-purpose writer.
import { writeFile } from 'node:fs/promises';
import { parseIp } from '../../../src/reporting/cidr.js';

type Value = string | number | bigint | readonly Value[] | { readonly [key: string]: Value };

const TYPE = { string: 2, uint16: 5, uint32: 6, map: 7, uint64: 9, array: 11 } as const;

function control(type: number, size: number): Buffer {
  let sizeBits: number;
  let sizeBytes: number[];
  if (size < 29) [sizeBits, sizeBytes] = [size, []];
  else if (size < 285) [sizeBits, sizeBytes] = [29, [size - 29]];
  else if (size < 65_821) [sizeBits, sizeBytes] = [30, [(size - 285) >> 8, (size - 285) & 0xff]];
  else [sizeBits, sizeBytes] = [31, [(size - 65_821) >> 16, ((size - 65_821) >> 8) & 0xff, (size - 65_821) & 0xff]];
  // Types above 7 are "extended": type bits 0, then a byte holding type - 7.
  const head = type <= 7 ? [(type << 5) | sizeBits] : [sizeBits, type - 7];
  return Buffer.from([...head, ...sizeBytes]);
}

function unsigned(value: bigint): Buffer {
  const bytes: number[] = [];
  for (let v = value; v > 0n; v >>= 8n) bytes.unshift(Number(v & 0xffn));
  return Buffer.from(bytes);
}

function encode(value: Value, intType: 'uint16' | 'uint32' | 'uint64' = 'uint32'): Buffer {
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([control(TYPE.string, bytes.length), bytes]);
  }
  if (typeof value === 'number' || typeof value === 'bigint') {
    const bytes = unsigned(BigInt(value));
    return Buffer.concat([control(TYPE[intType], bytes.length), bytes]);
  }
  if (Array.isArray(value)) {
    return Buffer.concat([control(TYPE.array, value.length), ...value.map((v) => encode(v))]);
  }
  const entries = Object.entries(value as Record<string, Value>);
  return Buffer.concat([control(TYPE.map, entries.length), ...entries.flatMap(([k, v]) => [encode(k), encode(v, INT_TYPES[k])])]);
}

// The metadata's integer fields have fixed types in the spec.
const INT_TYPES: Record<string, 'uint16' | 'uint32' | 'uint64'> = {
  node_count: 'uint32',
  record_size: 'uint16',
  ip_version: 'uint16',
  binary_format_major_version: 'uint16',
  binary_format_minor_version: 'uint16',
  build_epoch: 'uint64',
};

type Child = { kind: 'empty' } | { kind: 'data'; offset: number } | { kind: 'node'; node: TreeNode };
interface TreeNode {
  children: [Child, Child];
}

const emptyNode = (): TreeNode => ({ children: [{ kind: 'empty' }, { kind: 'empty' }] });

/** Inserts a network as a 128-bit prefix; IPv4 networks live under ::/96 as the spec says. */
function insert(root: TreeNode, cidr: string, offset: number): void {
  const [address = '', prefixText] = cidr.split('/');
  const ip = parseIp(address);
  if (ip === undefined) throw new Error(`bad test CIDR ${cidr}`);
  const width = ip.version === 4 ? 32 : 128;
  const prefix = (prefixText === undefined ? width : Number(prefixText)) + (128 - width);
  let node = root;
  for (let depth = 0; depth < prefix; depth++) {
    const bit = Number((ip.value >> BigInt(127 - depth)) & 1n);
    if (depth === prefix - 1) {
      node.children[bit] = { kind: 'data', offset };
      return;
    }
    const child = node.children[bit]!;
    if (child.kind === 'node') {
      node = child.node;
    } else {
      const next = emptyNode();
      // Splitting a covering network keeps its data on both halves.
      if (child.kind === 'data') next.children = [child, child];
      node.children[bit] = { kind: 'node', node: next };
      node = next;
    }
  }
}

export interface MmdbNetwork {
  readonly cidr: string;
  readonly record: Value;
}

export function buildMmdb(networks: readonly MmdbNetwork[], databaseType = 'GeoLite2-Country'): Buffer {
  const data: Buffer[] = [];
  let dataLength = 0;
  const root = emptyNode();
  for (const { cidr, record } of networks) {
    const bytes = encode(record);
    insert(root, cidr, dataLength);
    data.push(bytes);
    dataLength += bytes.length;
  }
  // Breadth-first numbering: the root is node 0.
  const nodes: TreeNode[] = [root];
  const index = new Map<TreeNode, number>([[root, 0]]);
  for (let i = 0; i < nodes.length; i++) {
    for (const child of nodes[i]!.children) {
      if (child.kind === 'node') {
        index.set(child.node, nodes.length);
        nodes.push(child.node);
      }
    }
  }
  const nodeCount = nodes.length;
  const tree = Buffer.alloc(nodeCount * 8);
  nodes.forEach((node, i) => {
    node.children.forEach((child, side) => {
      const value = child.kind === 'node' ? index.get(child.node)! : child.kind === 'data' ? nodeCount + 16 + child.offset : nodeCount;
      tree.writeUInt32BE(value, i * 8 + side * 4);
    });
  });
  const metadata = encode({
    node_count: nodeCount,
    record_size: 32,
    ip_version: 6,
    database_type: databaseType,
    languages: ['en'],
    binary_format_major_version: 2,
    binary_format_minor_version: 0,
    build_epoch: 1_700_000_000n,
    description: { en: 'Postern test database' },
  });
  return Buffer.concat([tree, Buffer.alloc(16), ...data, Buffer.from('abcdef4d61784d696e642e636f6d', 'hex'), metadata]);
}

export async function writeCountryMmdb(path: string, countries: Readonly<Record<string, string>>): Promise<void> {
  const networks = Object.entries(countries).map(([cidr, iso]) => ({ cidr, record: { country: { iso_code: iso } } }));
  await writeFile(path, buildMmdb(networks));
}
