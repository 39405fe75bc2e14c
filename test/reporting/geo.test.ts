// Country lookup: the data geoip-lite ships (no network) and a MaxMind .mmdb file written here.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, test } from 'node:test';
import { isPosternError } from '../../src/errors.js';
import { bundledGeoLookup, createGeoLookup, openGeoFile } from '../../src/reporting/geo.js';
import { cleanupTempDirs, tempDir } from '../helpers/util.js';
import { buildMmdb, writeCountryMmdb } from './helpers/mmdb-writer.js';

after(cleanupTempDirs);

test('bundled lookup: the geoip-lite data is loaded on the first lookup, not before', async () => {
  const geoModule = new URL('../../src/reporting/geo.js', import.meta.url).href;
  const script = `
    import { createRequire } from 'node:module';
    const { createGeoLookup } = await import(${JSON.stringify(geoModule)});
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('geoip-lite'));
    const geo = await createGeoLookup();
    const before = loaded();
    const country = geo.country('8.8.8.8');
    console.log(JSON.stringify({ before, after: loaded(), country }));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 });
  assert.deepEqual(JSON.parse(stdout), { before: false, after: true, country: 'US' });
});

test('bundled lookup: real countries for well-known public addresses', async () => {
  const geo = await createGeoLookup();
  assert.equal(geo.country('77.88.8.8'), 'RU', 'Yandex DNS');
  assert.equal(geo.country('8.8.8.8'), 'US', 'Google DNS');
  assert.equal(geo.country('81.2.69.142'), 'GB', 'the address in MaxMind\'s own examples');
  assert.equal(geo.country('2001:4860:4860::8888'), 'US', 'Google DNS over IPv6');
  assert.equal(geo.country('2a02:6b8::feed:ff'), 'RU', 'Yandex over IPv6');
});

test('bundled lookup: IPv4-mapped IPv6 is looked up as IPv4', () => {
  const geo = bundledGeoLookup();
  assert.equal(geo.country('::ffff:81.2.69.142'), 'GB');
  assert.equal(geo.country('::ffff:77.88.8.8'), 'RU');
});

test('bundled lookup: undefined for private, loopback, reserved and non-addresses', () => {
  const geo = bundledGeoLookup();
  for (const ip of ['127.0.0.1', '10.1.2.3', '192.168.1.1', '172.16.5.5', '100.64.1.1', '169.254.9.9', '::1', 'fd00::1',
    '::ffff:10.0.0.1', '0.0.0.0', '255.255.255.255', 'localhost', '']) {
    assert.equal(geo.country(ip), undefined, JSON.stringify(ip));
  }
});

test('mmdb file: countries from a real MaxMind DB, IPv4, IPv6 and mapped', async () => {
  const dir = await tempDir('postern-geo-');
  const file = join(dir.path, 'GeoLite2-Country.mmdb');
  await writeCountryMmdb(file, {
    '81.2.69.0/24': 'GB',
    '77.88.8.0/24': 'ru',
    '2a02:6b8::/32': 'RU',
    '10.0.0.0/8': 'NL', // private: never answered, whatever the file says
  });
  const geo = await createGeoLookup({ file });
  assert.equal(geo.country('81.2.69.142'), 'GB');
  assert.equal(geo.country('::ffff:81.2.69.142'), 'GB');
  assert.equal(geo.country('77.88.8.8'), 'RU', 'codes are upper-cased');
  assert.equal(geo.country('2a02:6b8::feed:ff'), 'RU');
  assert.equal(geo.country('81.2.70.1'), undefined, 'not in the file');
  assert.equal(geo.country('2001:4860::1'), undefined);
  assert.equal(geo.country('10.1.2.3'), undefined);
  assert.equal(geo.country('not-an-ip'), undefined);
});

test('mmdb file: records without a usable country give undefined', async () => {
  const dir = await tempDir('postern-geo-');
  const file = join(dir.path, 'odd.mmdb');
  await writeFile(file, buildMmdb([
    { cidr: '81.2.69.0/24', record: { registered_country: { iso_code: 'GB' } } },
    { cidr: '77.88.8.0/24', record: { country: { iso_code: 'RUS' } } },
  ]));
  const geo = await openGeoFile(file);
  assert.equal(geo.country('81.2.69.142'), undefined);
  assert.equal(geo.country('77.88.8.8'), undefined);
});

test('mmdb file: missing, a directory, or not an mmdb is a one-line config error', async () => {
  const dir = await tempDir('postern-geo-');
  const garbage = join(dir.path, 'garbage.mmdb');
  await writeFile(garbage, Buffer.from('this is not a MaxMind database\n'.repeat(100)));
  const empty = join(dir.path, 'empty.mmdb');
  await writeFile(empty, '');
  const gz = join(dir.path, 'db.mmdb.gz');
  await writeFile(gz, Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0]));
  const cases: Array<[string, string]> = [
    [join(dir.path, 'missing.mmdb'), 'no such file'],
    [dir.path, 'not a file'],
    [garbage, 'not a MaxMind DB'],
    [empty, 'not a MaxMind DB'],
    [gz, 'not a MaxMind DB'],
  ];
  for (const [path, why] of cases) {
    await assert.rejects(createGeoLookup({ file: path }), (err: unknown) => {
      assert.ok(isPosternError(err, 'config_invalid'), String(err));
      assert.ok(err.message.startsWith(`geo database ${path}: ${why}`), err.message);
      assert.ok(!err.message.includes('\n'), 'one line');
      return true;
    });
  }
});
