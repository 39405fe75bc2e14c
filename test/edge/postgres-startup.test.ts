// What the edge reads from a StartupMessage before deciding (the asked role, the database), and
// how `postern client db --role` writes the role into a local client's startup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sessionDatabase } from '../../src/edge/postgres/startup.js';
import { askedRole, roleOption, splitStartupOptions, startupSettings } from '../../src/pgwire/options.js';
import { startupAskingRole } from '../../src/cli/commands/client.js';
import { decodeStartup, encodeStartup } from '../../src/pgwire/wire.js';

test('startup options split as PostgreSQL splits them: whitespace, backslash escapes', () => {
  assert.deepEqual(splitStartupOptions('  -c a=1   --b=2 '), ['-c', 'a=1', '--b=2']);
  assert.deepEqual(splitStartupOptions('-c search_path=a\\ b\\\\c'), ['-c', 'search_path=a b\\c']);
  assert.deepEqual(splitStartupOptions(''), []);
  assert.deepEqual(startupSettings('-c a=1 -cb=2 --c=3 -c =x -c novalue -d 4'), [['a', '1'], ['b', '2'], ['c', '3']]);
});

test('the asked role comes from -c postern.role=…, the last one winning; none without it', () => {
  assert.equal(askedRole({ user: 'ana', options: '-c postern.role=readonly' }), 'readonly');
  assert.equal(askedRole({ options: '--postern.role=admin -c statement_timeout=5s' }), 'admin');
  assert.equal(askedRole({ options: '-c postern.role=admin -c postern.role=readonly' }), 'readonly');
  assert.equal(askedRole({ options: '-c role=admin' }), undefined, 'a GUC named role is not the request');
  assert.equal(askedRole({ user: 'readonly' }), undefined, 'the user name never picks a role');
  for (const role of ['readonly', 'two words', 'back\\slash', 'tab\there']) {
    assert.equal(askedRole({ options: `-c x=1 ${roleOption(role)}` }), role, role);
  }
});

test('the database: as named; the socket\'s default when the client names none (or its user name, libpq\'s default)', () => {
  assert.equal(sessionDatabase({ user: 'ana@corp.example', database: 'orders' }, null), 'orders');
  assert.equal(sessionDatabase({ user: 'ana@corp.example', database: 'billing' }, 'orders'), 'billing', 'a named database goes to policy as named');
  assert.equal(sessionDatabase({ user: 'ana@corp.example', database: 'ana@corp.example' }, 'orders'), 'orders');
  assert.equal(sessionDatabase({ user: 'ana@corp.example' }, 'orders'), 'orders');
  assert.equal(sessionDatabase({ user: 'ana@corp.example', database: '' }, 'orders'), 'orders');
  assert.equal(sessionDatabase({ user: 'ana@corp.example' }, null), 'ana@corp.example', 'PostgreSQL\'s own default without one');
});

test('client db --role appends the role to the local client\'s options; other packets pass unchanged', () => {
  const startup = encodeStartup({ type: 'StartupMessage', major: 3, minor: 0, parameters: { user: 'ana', database: 'orders', options: '-c postern.role=admin' } });
  const asked = decodeStartup(startupAskingRole(startup, 'read only').subarray(4));
  assert.equal(asked.type === 'StartupMessage' && askedRole(asked.parameters), 'read only', 'the flag wins over PGOPTIONS');
  assert.deepEqual(asked.type === 'StartupMessage' && { ...asked.parameters, options: undefined }, { user: 'ana', database: 'orders', options: undefined });
  const plain = decodeStartup(startupAskingRole(encodeStartup({ type: 'StartupMessage', major: 3, minor: 0, parameters: { user: 'ana' } }), 'readonly').subarray(4));
  assert.deepEqual(plain.type === 'StartupMessage' && plain.parameters, { user: 'ana', options: '-c postern.role=readonly' });
  const cancel = encodeStartup({ type: 'CancelRequest', processId: 7, secretKey: Buffer.alloc(4, 1) });
  assert.equal(startupAskingRole(cancel, 'readonly'), cancel);
  const broken = Buffer.from('0000000900030000ff', 'hex');
  assert.equal(startupAskingRole(broken, 'readonly'), broken);
});
