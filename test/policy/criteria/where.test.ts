// where: CIDRs (IPv4, IPv6, IPv4-mapped), countries with EU, country_not, unknown country.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileWhere } from '../../../src/policy/criteria/where.js';
import { EU_MEMBERS } from '../../../src/policy/countries.js';
import { facts } from '../helpers.js';

test('where: an empty block constrains nothing', () => {
  assert.equal(compileWhere({}, 'allow'), undefined);
});

test('where.ip: IPv4 and IPv6 CIDRs and single addresses', () => {
  const c = compileWhere({ ip: ['10.0.0.0/8', '192.168.1.7', '2001:db8::/32'] }, 'allow')!;
  for (const ip of ['10.0.0.1', '10.255.255.255', '192.168.1.7', '2001:db8::1', '2001:0db8:ffff::']) assert.equal(c.test(facts({ ip })), 'matched', ip);
  for (const ip of ['11.0.0.1', '192.168.1.8', '2001:db9::1', '::1', 'not-an-ip', '']) assert.equal(c.test(facts({ ip })), 'where-ip', ip);
  assert.equal(c.detail(facts({ ip: '11.0.0.1' }), 'where-ip'), 'client address 11.0.0.1 is not in 10.0.0.0/8, 192.168.1.7, 2001:db8::/32');
});

test('where.ip: IPv4-mapped IPv6 clients are IPv4', () => {
  const c = compileWhere({ ip: ['10.0.0.0/8'] }, 'allow')!;
  assert.equal(c.test(facts({ ip: '::ffff:10.1.2.3' })), 'matched');
  assert.equal(c.test(facts({ ip: '::FFFF:0a01:0203' })), 'matched');
  assert.equal(c.test(facts({ ip: '::ffff:11.1.2.3' })), 'where-ip');
  // and a mapped CIDR in a policy covers plain IPv4 clients
  assert.equal(compileWhere({ ip: ['::ffff:10.0.0.0/104'] }, 'allow')!.test(facts({ ip: '10.9.9.9' })), 'matched');
});

test('where.ip: a CIDR that does not parse fails compilation with its path', () => {
  assert.throws(() => compileWhere({ ip: ['10.0.0.0/8', '10.0.0.300'] }, 'allow'), /^Error: where\.ip\[1\]: "10\.0\.0\.300" is not an IP address or CIDR$/);
});

test('where.country: listed codes only; EU stands for the 27 member states', () => {
  assert.equal(EU_MEMBERS.length, 27);
  const c = compileWhere({ country: ['EU', 'CH'] }, 'allow')!;
  for (const country of ['NL', 'de', 'GR', 'SE', 'CH']) assert.equal(c.test(facts({ country })), 'matched', country);
  for (const country of ['GB', 'NO', 'US', 'EL']) assert.equal(c.test(facts({ country })), 'where-country', country);
  assert.equal(c.detail(facts({ country: 'US' }), 'where-country'), 'country US is not one of EU, CH');
});

test('where.country_not: listed codes excluded, EU expanded', () => {
  const c = compileWhere({ country_not: ['RU', 'EU'] }, 'allow')!;
  assert.equal(c.test(facts({ country: 'US' })), 'matched');
  assert.equal(c.test(facts({ country: 'RU' })), 'where-country-not');
  assert.equal(c.test(facts({ country: 'FR' })), 'where-country-not');
});

test('where: an unknown country fails closed: allow rules naming countries do not match, deny rules do', () => {
  assert.equal(compileWhere({ country: ['NL'] }, 'allow')!.test(facts({})), 'where-country-unknown');
  assert.equal(compileWhere({ country_not: ['RU'] }, 'allow')!.test(facts({})), 'where-country-unknown');
  assert.equal(compileWhere({ country: ['KP'] }, 'deny')!.test(facts({})), 'matched');
  assert.equal(compileWhere({ country_not: ['NL'] }, 'deny')!.test(facts({})), 'matched');
  assert.match(compileWhere({ country: ['KP'] }, 'deny')!.detail(facts({}), 'matched'), /country unknown: a deny rule naming countries applies/);
  // a known country is judged as it is, whatever the effect
  assert.equal(compileWhere({ country: ['KP'] }, 'deny')!.test(facts({ country: 'NL' })), 'where-country');
  // ip alone does not need a country
  assert.equal(compileWhere({ ip: ['10.0.0.0/8'] }, 'allow')!.test(facts({})), 'matched');
});

test('where: ip is checked before countries', () => {
  const c = compileWhere({ ip: ['10.0.0.0/8'], country: ['NL'] }, 'allow')!;
  assert.equal(c.test(facts({ ip: '8.8.8.8', country: 'US' })), 'where-ip');
  assert.equal(c.test(facts({ ip: '10.0.0.1', country: 'US' })), 'where-country');
  assert.equal(c.test(facts({ ip: '10.0.0.1', country: 'NL' })), 'matched');
});
