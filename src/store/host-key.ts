// An ssh socket's pinned upstream host key: authorized_keys form without a comment
// (`ssh-ed25519 AAAA…`), checked to be one SSH public key blob of the type it names.
import { PosternError } from '../errors.js';

const HOST_KEY_PATTERN = /^([a-z0-9][a-z0-9@.+-]{0,63}) ([A-Za-z0-9+/]+={0,2})$/;
const MAX_HOST_KEY = 16 * 1024;

/** The key as given, or PosternError('bad_request') when it is not `<type> <base64 blob>`. */
export function checkUpstreamHostKey(value: unknown): string {
  const refused = () => new PosternError('bad_request', 'upstreamHostKey must be an SSH public key such as "ssh-ed25519 AAAA…" (type and base64, no comment)');
  if (typeof value !== 'string' || value.length > MAX_HOST_KEY) throw refused();
  const match = HOST_KEY_PATTERN.exec(value);
  if (!match) throw refused();
  const blob = Buffer.from(match[2]!, 'base64');
  if (blob.length < 4) throw refused();
  const nameLength = blob.readUInt32BE(0);
  if (4 + nameLength >= blob.length || blob.subarray(4, 4 + nameLength).toString('latin1') !== match[1]) throw refused();
  return value;
}
