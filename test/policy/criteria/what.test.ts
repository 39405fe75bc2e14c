// what: protocol blocks, HTTP methods and paths (ambiguous paths fail closed), SSH, TLS, database.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileWhat } from '../../../src/policy/criteria/what.js';
import { SSH_CHANNELS } from '../../../src/policy/ssh-channel.js';
import type { SshChannel, SshWhat } from '../../../src/policy/types.js';
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

test('what.ssh: each flag set to false forbids its own channel and no other', () => {
  const flags: [keyof SshWhat, readonly SshChannel[]][] = [
    ['shell', ['shell']], ['exec', ['exec']], ['sftp', ['sftp']], ['scp', ['scp']],
    ['port_forwarding', ['local_forward', 'remote_forward']], ['agent_forwarding', ['agent_forwarding']], ['x11', ['x11']],
  ];
  for (const [flag, forbidden] of flags) {
    const off = compileWhat({ ssh: { [flag]: false } }, 'allow');
    const on = compileWhat({ ssh: { [flag]: true } }, 'allow');
    for (const channel of SSH_CHANNELS) {
      assert.equal(off.test(facts({ action: ssh('ops', channel) })), forbidden.includes(channel) ? 'what-ssh-channel' : 'matched', `${flag}: false, ${channel}`);
      assert.equal(on.test(facts({ action: ssh('ops', channel) })), 'matched', `${flag}: true, ${channel}`);
    }
    // a connection decided before any channel is opened passes every flag
    assert.equal(off.test(facts({ action: ssh('ops') })), 'matched');
  }
  // absent flags allow every channel
  const open = compileWhat({ ssh: {} }, 'allow');
  for (const channel of SSH_CHANNELS) assert.equal(open.test(facts({ action: ssh('ops', channel) })), 'matched', channel);
});

test('what.ssh.port_forwarding: the object form decides each direction; an absent direction is allowed', () => {
  const cases: [SshWhat['port_forwarding'], string, string][] = [
    [{ local: false }, 'what-ssh-channel', 'matched'],
    [{ remote: false }, 'matched', 'what-ssh-channel'],
    [{ local: true, remote: false }, 'matched', 'what-ssh-channel'],
    [{ local: false, remote: false }, 'what-ssh-channel', 'what-ssh-channel'],
    [{ local: true, remote: true }, 'matched', 'matched'],
    [true, 'matched', 'matched'],
    [false, 'what-ssh-channel', 'what-ssh-channel'],
  ];
  for (const [forwarding, local, remote] of cases) {
    const c = compileWhat({ ssh: { port_forwarding: forwarding! } }, 'allow');
    assert.equal(c.test(facts({ action: ssh('ops', 'local_forward') })), local, JSON.stringify(forwarding));
    assert.equal(c.test(facts({ action: ssh('ops', 'remote_forward') })), remote, JSON.stringify(forwarding));
    assert.equal(c.test(facts({ action: ssh('ops', 'shell') })), 'matched');
  }
});

test('what.ssh.exec globs: only matching command lines; scp and the other channels are not concerned', () => {
  const c = compileWhat({ ssh: { exec: ['uptime', 'systemctl status *', 'tail -n * /var/log/*'] } }, 'allow');
  const run = (command?: string) => c.test(facts({ action: ssh('ops', 'exec', command) }));
  assert.equal(run('uptime'), 'matched');
  assert.equal(run('systemctl status nginx'), 'matched');
  assert.equal(run('tail -n 100 /var/log/nginx/error.log'), 'matched', '* spans spaces and slashes');
  assert.equal(run('systemctl status nginx; rm -rf /'), 'matched', 'the glob says any characters: the admin chose a trailing *');
  assert.equal(run('uptime -p'), 'what-ssh-command', 'a glob without * is the exact command');
  assert.equal(run('Uptime'), 'what-ssh-command');
  assert.equal(run('systemctl restart nginx'), 'what-ssh-command');
  assert.equal(run('rm -rf /'), 'what-ssh-command');
  assert.equal(run(), 'what-ssh-command', 'an exec without its command line fails closed');
  assert.equal(c.test(facts({ action: ssh('ops', 'scp', 'scp -t /tmp') })), 'matched');
  assert.equal(c.test(facts({ action: ssh('ops', 'shell') })), 'matched');
  assert.equal(c.test(facts({ action: ssh('ops') })), 'matched');
  const scpOff = compileWhat({ ssh: { exec: ['uptime'], scp: false } }, 'allow');
  assert.equal(scpOff.test(facts({ action: ssh('ops', 'scp', 'scp -t /tmp') })), 'what-ssh-channel');
  assert.equal(scpOff.test(facts({ action: ssh('ops', 'exec', 'uptime') })), 'matched');
});

test('what.ssh: explanations read as one line to a person', () => {
  const c = compileWhat({ ssh: { exec: ['uptime', 'systemctl status *'], port_forwarding: { remote: false }, agent_forwarding: false, x11: false, shell: false } }, 'allow');
  const detail = (channel: SshChannel, command?: string) => {
    const f = facts({ action: ssh('ops', channel, command) });
    return c.detail(f, c.test(f));
  };
  assert.equal(detail('remote_forward'), 'port forwarding (remote) is not allowed (port_forwarding.remote: false)');
  assert.equal(detail('agent_forwarding'), 'agent forwarding is not allowed (agent_forwarding: false)');
  assert.equal(detail('x11'), 'X11 forwarding is not allowed (x11: false)');
  assert.equal(detail('shell'), 'a shell is not allowed (shell: false)');
  assert.equal(detail('exec', 'rm -rf /'), 'command "rm -rf /" matches none of exec: "uptime", "systemctl status *"');
  assert.equal(detail('exec', 'id\nrm -rf /'), 'command "id\\nrm -rf /" matches none of exec: "uptime", "systemctl status *"');
  assert.equal(detail('exec', 'id\nrm -rf /').includes('\n'), false, 'control characters are escaped');
  assert.equal(detail('exec'), 'no command line given; exec allows only "uptime", "systemctl status *"');
  assert.match(detail('exec', `echo ${'x'.repeat(500)}`), /^command "echo x{115}"… matches none of exec: /);
  const both = compileWhat({ ssh: { port_forwarding: false, exec: false } }, 'allow');
  assert.equal(both.detail(facts({ action: ssh('ops', 'local_forward') }), 'what-ssh-channel'), 'port forwarding (local) is not allowed (port_forwarding: false)');
  assert.equal(both.detail(facts({ action: ssh('ops', 'exec', 'id') }), 'what-ssh-channel'), 'running commands is not allowed (exec: false)');
  // a matching rule describes what was asked
  const f = (action: ReturnType<typeof ssh>) => c.detail(facts({ action }), 'matched');
  assert.equal(f(ssh('ops', 'exec', 'uptime')), 'ssh as ops: running "uptime"');
  assert.equal(f({ protocol: 'ssh', login: 'ops', channel: 'local_forward', target: 'db.internal:5432' }), 'ssh as ops: port forwarding (local) to db.internal:5432');
  assert.equal(f({ protocol: 'ssh', login: 'ops', channel: 'remote_forward', target: '127.0.0.1:8080' }), 'ssh as ops: port forwarding (remote) listening on 127.0.0.1:8080');
  assert.equal(f(ssh('ops', 'sftp')), 'ssh as ops: sftp');
  assert.equal(f(ssh('ops')), 'ssh as ops');
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
