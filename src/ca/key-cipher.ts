// Encryption at rest for private keys kept in the store: AES-256-GCM under a master key
// that lives outside the database (a 0600 file in the data dir, or POSTERN_MASTER_KEY).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PosternError } from '../errors.js';

const VERSION = 'v1';

export interface KeyCipher {
  encrypt(plain: Buffer, context: string): string;
  decrypt(sealed: string, context: string): Buffer;
}

/** `context` is bound as associated data, so a value moved to another name fails to open. */
export function createKeyCipher(masterKey: Buffer): KeyCipher {
  if (masterKey.length !== 32) throw new PosternError('config_invalid', 'master key must be 32 bytes');
  return {
    encrypt(plain, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', masterKey, iv);
      cipher.setAAD(Buffer.from(context));
      const body = Buffer.concat([cipher.update(plain), cipher.final()]);
      return [VERSION, iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
    },
    decrypt(sealed, context) {
      const [version, iv, body, tag] = sealed.split('.');
      if (version !== VERSION || !iv || body === undefined || !tag) {
        throw new PosternError('config_invalid', `stored key "${context}" is not in a known format`);
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', masterKey, Buffer.from(iv, 'base64url'), { authTagLength: 16 });
        decipher.setAAD(Buffer.from(context));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]);
      } catch (cause) {
        throw new PosternError('config_invalid', `stored key "${context}" cannot be decrypted: wrong master key?`, { cause });
      }
    },
  };
}

/** Reads POSTERN_MASTER_KEY (base64, 32 bytes) or `<dataDir>/master.key`, creating the file on first start. */
export async function loadOrCreateMasterKey(dataDir: string, env: NodeJS.ProcessEnv = process.env): Promise<Buffer> {
  const fromEnv = env.POSTERN_MASTER_KEY;
  if (fromEnv) {
    const key = Buffer.from(fromEnv, 'base64');
    if (key.length !== 32) throw new PosternError('config_invalid', 'POSTERN_MASTER_KEY must be 32 bytes in base64');
    return key;
  }
  const path = join(dataDir, 'master.key');
  try {
    const key = Buffer.from((await readFile(path, 'utf8')).trim(), 'base64');
    if (key.length !== 32) throw new PosternError('config_invalid', `${path} does not hold a 32-byte base64 key`);
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // Write aside, then link into place: a second process starting at the same moment sees
  // either no file or the whole key, never an empty one.
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(temporary, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  try {
    await link(temporary, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(temporary);
  }
  const key = Buffer.from((await readFile(path, 'utf8')).trim(), 'base64');
  if (key.length !== 32) throw new PosternError('config_invalid', `${path} does not hold a 32-byte base64 key`);
  return key;
}
