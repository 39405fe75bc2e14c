// The postgres block of the connector's YAML: the default login, the roles policy may map people
// to, and how each logs in (a password from the environment or a file, a client certificate, a CA).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConnectorConfig, parseConnectorConfig, postgresLoginFor, usesTls } from '../../src/connector/config.js';

const yaml = (postgres: string) => `server: https://localhost:8443
sockets:
  - name: orders
    type: postgres
    upstream: tcp://127.0.0.1:5432
    postgres:
${postgres.trim().split('\n').map((line) => `      ${line}`).join('\n')}
`;

const full = `
user: app
password_env: PG_APP_PASSWORD
roles:
  readonly: { password_env: PG_RO_PASSWORD }
  admin: { password_file: pg-admin.pass }
  reporting: { cert: pg-reporting.crt, key: pg-reporting.key, ca: /etc/postern/pg-ca.crt }
  loose: { ca: pg-ca.crt, verify: ca }
  trusted: {}
`;

function problems(postgres: string): string {
  try {
    parseConnectorConfig(yaml(postgres), 'c.yaml');
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail('expected the file to be refused');
}

test('postgres config: a default login and roles with a password, a file, a certificate, a CA only or nothing', () => {
  const login = parseConnectorConfig(yaml(full), 'c.yaml').sockets[0]!.postgres!;
  assert.equal(login.user, 'app');
  assert.deepEqual(Object.keys(login.roles ?? {}), ['readonly', 'admin', 'reporting', 'loose', 'trusted']);
  assert.deepEqual(postgresLoginFor(login, undefined), { user: 'app', password_env: 'PG_APP_PASSWORD' });
  assert.deepEqual(postgresLoginFor(login, 'app'), { user: 'app', password_env: 'PG_APP_PASSWORD' }, 'the default login by its own role');
  assert.deepEqual(postgresLoginFor(login, 'readonly'), { user: 'readonly', password_env: 'PG_RO_PASSWORD' });
  assert.deepEqual(postgresLoginFor(login, 'trusted'), { user: 'trusted' });
  assert.equal(postgresLoginFor(login, 'writer'), undefined, 'a role the connector does not know');
  assert.equal(postgresLoginFor(login, 'constructor'), undefined, 'not a property of every object');
  assert.equal(postgresLoginFor(login, '__proto__'), undefined);
  assert.equal(usesTls(postgresLoginFor(login, 'reporting')!), true);
  assert.equal(usesTls(postgresLoginFor(login, 'loose')!), true, 'a CA alone: a password over verified TLS');
  assert.equal(usesTls(postgresLoginFor(login, 'admin')!), false);
});

test('postgres config: each mistake of a login or a role is named on its path', () => {
  assert.match(problems('user: app\npassword_env: A\npassword_file: b'), /sockets\[0\]\.postgres: password_env or password_file, not both/);
  assert.match(problems('user: app\ncert: a.crt'), /sockets\[0\]\.postgres\.key: cert and key go together/);
  assert.match(problems('user: app\nkey: a.key'), /sockets\[0\]\.postgres\.cert: cert and key go together/);
  assert.match(problems('user: app\nverify: ca'), /sockets\[0\]\.postgres\.verify: applies to a TLS login \(cert or ca\)/);
  assert.match(problems('user: app\nca: ca.pem\nverify: none'), /sockets\[0\]\.postgres\.verify: /);
  assert.match(problems('user: app\nroles:\n  ro: { password_env: A, password_file: b }'), /sockets\[0\]\.postgres\.roles\.ro: password_env or password_file, not both/);
  assert.match(problems('user: app\nroles:\n  ro: { cert: a.crt }'), /sockets\[0\]\.postgres\.roles\.ro\.key: cert and key go together/);
  assert.match(problems('user: app\nroles:\n  ro: { user: other }'), /sockets\[0\]\.postgres\.roles\.ro: .*"user"/);
  assert.match(problems(`user: app\nroles:\n  ${'r'.repeat(64)}: {}`), /sockets\[0\]\.postgres\.roles/);
  assert.match(problems('password_env: A'), /sockets\[0\]\.postgres\.user: /);
});

test('postgres config: the files of the login and of every role are taken relative to the YAML file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'postern-pgconfig-'));
  try {
    const file = join(dir, 'connector.yaml');
    await writeFile(file, yaml(full));
    const login = (await loadConnectorConfig(file)).sockets[0]!.postgres!;
    assert.equal(login.password_env, 'PG_APP_PASSWORD');
    assert.deepEqual(login.roles?.admin, { password_file: join(dir, 'pg-admin.pass') });
    assert.deepEqual(login.roles?.reporting, { cert: join(dir, 'pg-reporting.crt'), key: join(dir, 'pg-reporting.key'), ca: '/etc/postern/pg-ca.crt' });
    assert.deepEqual(login.roles?.loose, { ca: join(dir, 'pg-ca.crt'), verify: 'ca' });
    assert.deepEqual(login.roles?.trusted, {});
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
