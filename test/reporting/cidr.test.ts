// IP parsing, canonical formatting, CIDR lists and the public/non-public split.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPosternError } from '../../src/errors.js';
import { canonicalIp, clientNetwork, compileCidrs, formatIp, isPublicIp, normalizeIp, parseIp } from '../../src/reporting/cidr.js';

test('parseIp: IPv4, IPv6, zones, and IPv4-mapped IPv6 folded to IPv4', () => {
  assert.deepEqual(parseIp('81.2.69.142'), { version: 4, value: 0x5102458en });
  assert.deepEqual(parseIp('::ffff:81.2.69.142'), { version: 4, value: 0x5102458en });
  assert.deepEqual(parseIp('::FFFF:5102:458e'), { version: 4, value: 0x5102458en });
  assert.deepEqual(parseIp('0:0:0:0:0:ffff:81.2.69.142'), { version: 4, value: 0x5102458en });
  assert.deepEqual(parseIp('::1'), { version: 6, value: 1n });
  assert.deepEqual(parseIp('::'), { version: 6, value: 0n });
  assert.deepEqual(parseIp('fe80::1%eth0'), { version: 6, value: (0xfe80n << 112n) | 1n });
  assert.deepEqual(parseIp('2001:db8::'), { version: 6, value: 0x20010db8n << 96n });
  assert.deepEqual(parseIp('1:2:3:4:5:6:7::'), { version: 6, value: 0x0001000200030004000500060007_0000n });
});

test('parseIp: refuses what is not exactly an address', () => {
  const bad = [
    '', ' ', 'localhost', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-4', '1.2.3.4/8',
    ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1::2:3:4:5:6:7:8', '12345::', 'g::1',
    ':1::', '1.2.3.4::', '::1.2.3.4:5', '[::1]', 'unknown',
  ];
  for (const text of bad) assert.equal(parseIp(text), undefined, JSON.stringify(text));
});

test('formatIp / normalizeIp: RFC 5952 for IPv6, mapped addresses shown as IPv4', () => {
  assert.equal(normalizeIp('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(normalizeIp('2001:db8:0:1:0:0:0:1'), '2001:db8:0:1::1');
  assert.equal(normalizeIp('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1', 'the longer run is compressed');
  assert.equal(normalizeIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1', 'on a tie, the first run');
  assert.equal(normalizeIp('2001:db8:1:1:1:1:0:1'), '2001:db8:1:1:1:1:0:1', 'a single zero group stays');
  assert.equal(normalizeIp('::'), '::');
  assert.equal(normalizeIp('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(normalizeIp(' 10.0.0.1 '), '10.0.0.1');
  assert.equal(normalizeIp('nope'), undefined);
  assert.equal(formatIp({ version: 4, value: 0xffffffffn }), '255.255.255.255');
});

test('canonicalIp: one spelling per peer address, whatever form the socket or header gave', () => {
  for (const mapped of ['::ffff:203.0.113.7', '::FFFF:203.0.113.7', '::ffff:cb00:7107', '0:0:0:0:0:ffff:203.0.113.7']) {
    assert.equal(canonicalIp(mapped), '203.0.113.7', mapped);
  }
  assert.equal(canonicalIp('2001:DB8::A'), '2001:db8::a', 'hex digits lower case');
  assert.equal(canonicalIp('2001:0db8:0:0:0:0:0:000a'), '2001:db8::a');
  assert.equal(canonicalIp('FE80::1%eth0'), 'fe80::1', 'the zone id is dropped');
  assert.equal(canonicalIp('fe80::1%25'), 'fe80::1');
  assert.equal(canonicalIp('::1'), '::1');
  assert.equal(canonicalIp('127.0.0.1'), '127.0.0.1');
  // Brackets (and ports) belong to URLs and X-Forwarded-For, which strip them before asking;
  // text that is no address is kept as written, so the audit trail shows what arrived.
  assert.equal(canonicalIp('[::1]'), '[::1]');
  assert.equal(canonicalIp('[::ffff:10.0.0.1]:443'), '[::ffff:10.0.0.1]:443');
  assert.equal(canonicalIp('unknown'), 'unknown');
  assert.equal(canonicalIp(''), '');
});

test('compileCidrs: IPv4 and IPv6 ranges, bare addresses, host bits masked', () => {
  const cidrs = compileCidrs(['10.0.0.0/8', '192.168.1.7/24', '2001:db8::/32', '203.0.113.9', '::1', '0.0.0.0/0']);
  assert.equal(cidrs.size, 6);
  for (const ip of ['10.0.0.0', '10.255.255.255', '192.168.1.200', '2001:db8:ffff::1', '::1', '8.8.8.8']) {
    assert.ok(cidrs.matches(ip), ip);
  }
  const narrow = compileCidrs(['10.0.0.0/8', '192.168.1.7/24', '2001:db8::/32', '203.0.113.9', '::1']);
  for (const ip of ['11.0.0.0', '192.168.2.1', '2001:db9::', '203.0.113.10', '::2', 'garbage', '']) {
    assert.ok(!narrow.matches(ip), ip);
  }
});

test('compileCidrs: IPv4-mapped addresses and ranges meet their IPv4 forms', () => {
  assert.ok(compileCidrs(['10.0.0.0/8']).matches('::ffff:10.1.2.3'));
  assert.ok(compileCidrs(['::ffff:10.0.0.0/104']).matches('10.9.9.9'));
  assert.ok(!compileCidrs(['::ffff:10.0.0.0/104']).matches('11.0.0.1'));
  // An IPv6 range never matches an IPv4 address, not even ::/0.
  assert.ok(!compileCidrs(['::/0']).matches('10.0.0.1'));
  assert.ok(compileCidrs(['::/0']).matches('2001:db8::1'));
});

test('compileCidrs: a bad entry is a config error that names it', () => {
  for (const entry of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/8/8', 'ten/8', '10.0.0.0/08', '', 'fe80::1%eth0/64']) {
    assert.throws(
      () => compileCidrs(['127.0.0.1', entry]),
      (err: unknown) => isPosternError(err, 'config_invalid') && err.message.includes(`"${entry}"`),
      entry,
    );
  }
});

test('isPublicIp: private, loopback, link-local, CGNAT, documentation and multicast are not public', () => {
  for (const ip of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.0.1', '127.0.0.1', '169.254.1.1', '100.64.0.1',
    '0.0.0.0', '255.255.255.255', '224.0.0.1', '192.0.2.1', '::1', '::', 'fe80::1', 'fd00::1', 'ff02::1', '2001:db8::1',
    '::ffff:10.0.0.1', 'not-an-ip']) {
    assert.equal(isPublicIp(ip), false, ip);
  }
  for (const ip of ['8.8.8.8', '77.88.8.8', '172.32.0.1', '100.128.0.1', '2a02:6b8::feed:ff', '::ffff:81.2.69.142']) {
    assert.equal(isPublicIp(ip), true, ip);
  }
});

test('clientNetwork: an IPv4 client is its address, an IPv6 client its /64, in one spelling', () => {
  assert.equal(clientNetwork('203.0.113.7'), '203.0.113.7');
  assert.equal(clientNetwork('::ffff:203.0.113.7'), '203.0.113.7');
  assert.equal(clientNetwork('::ffff:cb00:7107'), '203.0.113.7', 'hex-mapped too');
  assert.equal(clientNetwork('2001:db8:1:2::1'), '2001:db8:1:2::/64');
  assert.equal(clientNetwork('2001:0db8:0001:0002:ffff:1:2:3'), '2001:db8:1:2::/64');
  assert.equal(clientNetwork('2001:DB8:1:2:0:0:0:9%eth0'), '2001:db8:1:2::/64');
  assert.notEqual(clientNetwork('2001:db8:1:2::1'), clientNetwork('2001:db8:1:3::1'));
  assert.equal(clientNetwork('::1'), clientNetwork('0:0:0:0:0:0:0:2'));
  assert.equal(clientNetwork('64:ff9b::192.0.2.1'), clientNetwork('64:ff9b::1'));
  assert.equal(clientNetwork('not-an-ip'), 'not-an-ip');
  assert.notEqual(clientNetwork('not-an-ip'), clientNetwork(''));
});
