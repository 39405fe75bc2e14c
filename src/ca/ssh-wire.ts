// SSH wire encoding (RFC 4251 §5) shared by the certificate and key encoders: big-endian
// integers and length-prefixed strings.
import { PosternError } from '../errors.js';

export function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

export function u64(value: bigint): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(value);
  return out;
}

export function str(value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([u32(bytes.length), bytes]);
}

/** Reads SSH wire strings from a public key blob. */
export function readStrings(blob: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset < blob.length) {
    if (offset + 4 > blob.length) throw new PosternError('bad_request', 'SSH public key is truncated');
    const length = blob.readUInt32BE(offset);
    offset += 4;
    if (offset + length > blob.length) throw new PosternError('bad_request', 'SSH public key is truncated');
    parts.push(blob.subarray(offset, offset + length));
    offset += length;
  }
  return parts;
}
