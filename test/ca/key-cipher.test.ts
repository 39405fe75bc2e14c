// Sealing private keys at rest (AES-256-GCM bound to a context) and the master key's lifecycle.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { PosternError } from '../../src/errors.js';
import { createKeyCipher, loadOrCreateMasterKey } from '../../src/ca/key-cipher.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-ca-key-'));
  dirs.push(dir);
  return dir;
}

const isConfigInvalid = (err: unknown): boolean => err instanceof PosternError && err.code === 'config_invalid';
const plain = Buffer.from('-----BEGIN PRIVATE KEY----- not really a key');

test('key cipher: round trip, and a fresh IV each time', () => {
  const cipher = createKeyCipher(randomBytes(32));
  const sealed = cipher.encrypt(plain, 'ca/root');
  assert.match(sealed, /^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.ok(!sealed.includes(plain.toString('base64')));
  assert.deepEqual(cipher.decrypt(sealed, 'ca/root'), plain);
  assert.notEqual(cipher.encrypt(plain, 'ca/root'), sealed);
  assert.deepEqual(cipher.decrypt(cipher.encrypt(Buffer.from([0]), 'x'), 'x'), Buffer.from([0]));
});

test('key cipher: another context, another master key or a tampered value fails with config_invalid', () => {
  const key = randomBytes(32);
  const cipher = createKeyCipher(key);
  const sealed = cipher.encrypt(plain, 'ca/root');
  assert.throws(() => cipher.decrypt(sealed, 'ca/other'), isConfigInvalid);
  assert.throws(() => createKeyCipher(randomBytes(32)).decrypt(sealed, 'ca/root'), isConfigInvalid);
  const [version, iv, body, tag] = sealed.split('.') as [string, string, string, string];
  const flip = (text: string): string => {
    const bytes = Buffer.from(text, 'base64url');
    bytes[0]! ^= 0x01;
    return bytes.toString('base64url');
  };
  for (const tampered of [
    [version, flip(iv), body, tag], [version, iv, flip(body), tag], [version, iv, body, flip(tag)],
    [version, iv, body, Buffer.from(tag, 'base64url').subarray(0, 4).toString('base64url')],
    [version, iv, body, Buffer.from(tag, 'base64url').subarray(0, 12).toString('base64url')],
  ]) {
    assert.throws(() => cipher.decrypt(tampered.join('.'), 'ca/root'), isConfigInvalid, tampered.join('.'));
  }
  for (const malformed of ['', 'v1', 'v1.a.b', `v2.${iv}.${body}.${tag}`, 'not-sealed-at-all']) {
    assert.throws(() => cipher.decrypt(malformed, 'ca/root'), (err: unknown) => isConfigInvalid(err) && /not in a known format/.test((err as Error).message));
  }
});

test('key cipher: the master key must be 32 bytes', () => {
  for (const size of [0, 16, 31, 33, 64]) assert.throws(() => createKeyCipher(randomBytes(size)), isConfigInvalid);
});

test('master key: created once as a 0600 file, then reused', async () => {
  const dataDir = join(await tempDir(), 'nested', 'data');
  const first = await loadOrCreateMasterKey(dataDir, {});
  assert.equal(first.length, 32);
  const path = join(dataDir, 'master.key');
  const info = await stat(path);
  assert.equal(info.mode & 0o777, 0o600);
  assert.equal((await stat(dataDir)).mode & 0o077, 0, 'data dir not readable by others');
  const text = await readFile(path, 'utf8');
  assert.equal(text, `${first.toString('base64')}\n`);
  const second = await loadOrCreateMasterKey(dataDir, {});
  assert.deepEqual(second, first);
  assert.equal(await readFile(path, 'utf8'), text, 'file not rewritten');
});

test('master key: POSTERN_MASTER_KEY wins and no file is written', async () => {
  const dataDir = await tempDir();
  const key = randomBytes(32);
  assert.deepEqual(await loadOrCreateMasterKey(dataDir, { POSTERN_MASTER_KEY: key.toString('base64') }), key);
  await assert.rejects(stat(join(dataDir, 'master.key')), { code: 'ENOENT' });
  await loadOrCreateMasterKey(dataDir, {});
  assert.deepEqual(await loadOrCreateMasterKey(dataDir, { POSTERN_MASTER_KEY: key.toString('base64') }), key, 'env beats an existing file');
  await assert.rejects(loadOrCreateMasterKey(dataDir, { POSTERN_MASTER_KEY: randomBytes(16).toString('base64') }), isConfigInvalid);
});

test('master key: a file that does not hold 32 bytes is config_invalid', async () => {
  const dataDir = await tempDir();
  await writeFile(join(dataDir, 'master.key'), randomBytes(20).toString('base64'));
  await assert.rejects(loadOrCreateMasterKey(dataDir, {}), (err: unknown) => isConfigInvalid(err) && /32-byte/.test((err as Error).message));
});
