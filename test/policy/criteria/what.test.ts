// what: protocol blocks, HTTP methods and paths (ambiguous paths fail closed), SSH, TLS, database.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileWhat } from '../../../src/policy/criteria/what.js';
import { facts, http, ssh } from '../helpers.js';

test('what: a rule with a what block covers only its protocols', () => {
  const c = compileWhat({ http: {} }, 'allow');
  assert.equal(c.test(facts({ action: http('DELETE', '/x') })), 'matched');
  assert.equal(c.test(facts({ action: ssh('root') })), 'what-protocol');
  assert.equal(c.test(facts({ action: { protocol: 'tls' } })), 'what-protocol');
  assert.equal(c.detail(facts({ action: ssh('root') }), 'what-protocol'), 'the rule has no ssh block (it covers http)');
});

test('what.http.methods: upper-cased on both sides; absent = any', () => {
  const c = compileWhat({ http: { methods: ['get', 'HEAD'] } }, 'allow');
  assert.equal(c.test(facts({ action: http('GET', '/') })), 'matched');
  assert.equal(c.test(facts({ action: http('head', '/') })), 'matched');
  assert.equal(c.test(facts({ action: http('POST', '/') })), 'what-http-method');
  assert.equal(c.detail(facts({ action: http('POST', '/') }), 'what-http-method'), 'method POST is not one of GET, HEAD');
});

test('what.http.paths: globs against the path without query, // collapsed', () => {
  const c = compileWhat({ http: { paths: ['/dashboards/*', '/api/v*/status', '/static/**/*.css'] } }, 'allow');
  const ok = ['/dashboards', '/dashboards/', '/dashboards/x', '/dashboards/x/y?z=1', '//dashboards//x', '/api/v2/status', '/static/a.css', '/static/a/b/c.css'];
  const no = ['/dashboardsx', '/dashboard/x', '/api/v2/x/status', '/api/v2/status/x', '/static/a.js', '/', '/Dashboards/x'];
  for (const path of ok) assert.equal(c.test(facts({ action: http('GET', path) })), 'matched', path);
  for (const path of no) assert.equal(c.test(facts({ action: http('GET', path) })), 'what-http-path', path);
});

test('what.http.paths: dot segments and encoded slashes never match an allow rule and always match a deny rule', () => {
  const allow = compileWhat({ http: { paths: ['/public/**'] } }, 'allow');
  const deny = compileWhat({ http: { paths: ['/admin/*'] } }, 'deny');
  for (const path of ['/public/../admin/users', '/public/./x', '/public/%2e%2e/admin', '/public/x%2Fy', '/public\\..\\admin', '/public/..']) {
    assert.equal(allow.test(facts({ action: http('GET', path) })), 'what-http-path', path);
    assert.equal(deny.test(facts({ action: http('GET', path) })), 'matched', path);
  }
  assert.match(allow.detail(facts({ action: http('GET', '/public/../admin') }), 'what-http-path'), /ambiguous/);
  // names that merely contain dots are fine
  assert.equal(allow.test(facts({ action: http('GET', '/public/.well-known/x..y') })), 'matched');
  assert.equal(deny.test(facts({ action: http('GET', '/public/x') })), 'what-http-path');
});

test('what.ssh: logins (absent login passes), channel flags (false forbids, absent allows)', () => {
  const c = compileWhat({ ssh: { logins: ['support'], shell: true, sftp: false } }, 'allow');
  assert.equal(c.test(facts({ action: ssh('support', 'shell') })), 'matched');
  assert.equal(c.test(facts({ action: ssh('support', 'exec') })), 'matched');
  assert.equal(c.test(facts({ action: ssh('root', 'shell') })), 'what-ssh-login');
  assert.equal(c.test(facts({ action: ssh('support', 'sftp') })), 'what-ssh-channel');
  assert.equal(c.test(facts({ action: ssh() })), 'matched');
  assert.equal(c.test(facts({ action: ssh(undefined, 'sftp') })), 'what-ssh-channel');
  assert.equal(c.detail(facts({ action: ssh('root') }), 'what-ssh-login'), 'login root is not one of support');
  assert.equal(c.detail(facts({ action: ssh('support', 'sftp') }), 'what-ssh-channel'), 'sftp is not allowed (sftp: false)');
});

test('what.tls: connect false refuses, an empty block allows', () => {
  assert.equal(compileWhat({ tls: {} }, 'allow').test(facts({ action: { protocol: 'tls' } })), 'matched');
  assert.equal(compileWhat({ tls: { connect: true } }, 'allow').test(facts({ action: { protocol: 'tls' } })), 'matched');
  assert.equal(compileWhat({ tls: { connect: false } }, 'allow').test(facts({ action: { protocol: 'tls' } })), 'what-tls-connect');
});

test('what.database: names, and writes under read_only', () => {
  const c = compileWhat({ database: { names: ['app'], read_only: true } }, 'allow');
  assert.equal(c.test(facts({ action: { protocol: 'database', database: 'app' } })), 'matched');
  assert.equal(c.test(facts({ action: { protocol: 'database', database: 'app', write: false } })), 'matched');
  assert.equal(c.test(facts({ action: { protocol: 'database', database: 'app', write: true } })), 'what-database-write');
  assert.equal(c.test(facts({ action: { protocol: 'database', database: 'billing' } })), 'what-database-name');
  assert.equal(c.test(facts({ action: { protocol: 'database' } })), 'matched');
  assert.equal(compileWhat({ database: {} }, 'allow').test(facts({ action: { protocol: 'database', database: 'x', write: true } })), 'matched');
});

test('what.http.paths: deny rules ignore case by default, allow rules do not; case_insensitive says otherwise', () => {
  const deny = compileWhat({ http: { paths: ['/admin/*'] } }, 'deny');
  for (const path of ['/admin/x', '/ADMIN/x', '/Admin/X', '/aDmIn']) assert.equal(deny.test(facts({ action: http('POST', path) })), 'matched', path);
  const allow = compileWhat({ http: { paths: ['/public/*'] } }, 'allow');
  assert.equal(allow.test(facts({ action: http('GET', '/PUBLIC/x') })), 'what-http-path');
  const allowAnyCase = compileWhat({ http: { paths: ['/public/*'], case_insensitive: true } }, 'allow');
  assert.equal(allowAnyCase.test(facts({ action: http('GET', '/PUBLIC/x') })), 'matched');
  const denyExact = compileWhat({ http: { paths: ['/admin/*'], case_insensitive: false } }, 'deny');
  assert.equal(denyExact.test(facts({ action: http('POST', '/ADMIN/x') })), 'what-http-path');
});

test('what.http.paths: path parameters and encoded control bytes are ambiguous (sockets that pass raw paths)', () => {
  const allow = compileWhat({ http: { paths: ['/**'] } }, 'allow');
  const deny = compileWhat({ http: { paths: ['/admin/*'] } }, 'deny');
  for (const path of ['/admin;/x', '/public;a=b', '/a%00', '/a%0A', '/a%7f']) {
    assert.equal(allow.test(facts({ action: http('GET', path) })), 'what-http-path', path);
    assert.equal(deny.test(facts({ action: http('GET', path) })), 'matched', path);
  }
});
