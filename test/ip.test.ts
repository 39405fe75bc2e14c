// IP parsing and CIDR matching in one 128-bit space.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cidrContains, parseCidr, parseIp } from '../src/ip.js';

test('parseIp: IPv4, IPv6 forms, mapped IPv4, zones; rejects the rest', () => {
  assert.deepEqual(parseIp('10.1.2.3'), [0, 0, 0xffff, 0x0a010203]);
  assert.deepEqual(parseIp('::ffff:10.1.2.3'), [0, 0, 0xffff, 0x0a010203]);
  assert.deepEqual(parseIp('::1'), [0, 0, 0, 1]);
  assert.deepEqual(parseIp('::'), [0, 0, 0, 0]);
  assert.deepEqual(parseIp('2001:db8::8a2e:370:7334'), [0x20010db8, 0, 0x8a2e, 0x03707334]);
  assert.deepEqual(parseIp('fe80::1%eth0'), [0xfe800000, 0, 0, 1]);
  assert.deepEqual(parseIp('1:2:3:4:5:6:7:8'), [0x00010002, 0x00030004, 0x00050006, 0x00070008]);
  for (const bad of ['', '10.1.2', '10.1.2.256', '010.1.2.3', '1.2.3.4.5', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '1.2.3.4::', 'localhost']) {
    assert.equal(parseIp(bad), undefined, bad);
  }
});

test('parseCidr: prefixes within range, host bits cleared', () => {
  assert.deepEqual(parseCidr('10.1.2.3/8')!.words, [0, 0, 0xffff, 0x0a000000]);
  assert.equal(parseCidr('10.0.0.0/8')!.prefix, 104);
  assert.equal(parseCidr('2001:db8::/32')!.prefix, 32);
  assert.equal(parseCidr('192.0.2.1')!.prefix, 128);
  for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/08', '10.0.0.0/-1', 'fe80::1%eth0/64', '/8']) assert.equal(parseCidr(bad), undefined, bad);
});

test('cidrContains: boundaries, /0, IPv6, and mapped IPv4 in both directions', () => {
  const has = (cidr: string, ip: string) => cidrContains(parseCidr(cidr)!, parseIp(ip)!);
  assert.ok(has('10.0.0.0/8', '10.255.255.255'));
  assert.ok(!has('10.0.0.0/8', '11.0.0.0'));
  assert.ok(has('192.168.1.128/25', '192.168.1.200'));
  assert.ok(!has('192.168.1.128/25', '192.168.1.127'));
  assert.ok(has('0.0.0.0/0', '8.8.8.8'));
  assert.ok(has('0.0.0.0/0', '::ffff:8.8.8.8'));
  assert.ok(!has('0.0.0.0/0', '2001:db8::1'));
  assert.ok(has('::/0', '8.8.8.8'));
  assert.ok(has('2001:db8:abcd::/48', '2001:db8:abcd:ffff::1'));
  assert.ok(!has('2001:db8:abcd::/48', '2001:db8:abce::1'));
  assert.ok(has('2001:db8::1/128', '2001:db8::1'));
  assert.ok(has('::ffff:192.0.2.0/120', '192.0.2.9'));
  assert.ok(has('2001:db8::/63', '2001:db8:0:1::'));
  assert.ok(!has('2001:db8::/64', '2001:db8:0:1::'));
});
