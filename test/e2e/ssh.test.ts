// E2E: SSH through Postern with real OpenSSH — ssh's ProxyCommand opens the sign-in `tls` socket
// with a Postern client certificate (openssl s_client as the stdio pipe), the connector forwards
// to a private sshd that trusts Postern's SSH user CA (from `socket show`), and the command runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createKeyAndCsr } from '../../src/ca/csr.js';
import { CLI, cleanupAll, startConnector, startServer, waitForAudit, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { LOGIN, haveOpenSsh, ssh, sshKeyPair, startSshd } from '../helpers/sshd.js';
import type { Sshd } from '../helpers/sshd.js';
import { tempDir, withTimeout } from '../helpers/util.js';
import { runCli, spawnCli } from '../helpers/processes.js';
import { approveDeviceCode, laptopFor, signedInLaptop } from '../helpers/login.js';
import { execFile } from 'node:child_process';

const PASSWORD = 'correct horse battery staple';

describe('SSH through a tls socket', { skip: !haveOpenSsh && process.env.CI !== 'true' ? 'OpenSSH is not installed' : false }, () => {
  let server: ServerHandle;
  let sshd: Sshd;
  let dir: string;
  let proxyCommand: string;

  const sshCertificate = async (key: { path: string; publicKey: string }, logins: string[]) => {
    const res = await api(server, '/api/v1/certificates/ssh', { method: 'POST', body: { public_key: key.publicKey, email: 'ana@corp.example', logins } });
    assert.equal(res.status, 201, res.text);
    await writeFile(`${key.path}-cert.pub`, res.json<{ certificate: string }>().certificate + '\n');
  };

  before(async () => {
    dir = (await tempDir()).path;
    server = await startServer();
    assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email: 'ana@corp.example', password: PASSWORD } })).status, 201);
    const shown = await server.cli(['socket', 'create', '--name', 'ssh', '--type', 'tls', '--upstream', 'tcp://127.0.0.1:22', '--allowed-email-domains', 'corp.example']);
    assert.equal(shown.code, 0, shown.stderr);
    const show = JSON.parse((await server.cli(['socket', 'show', 'ssh', '--json'])).stdout) as { ssh: { publicKey: string; sshdConfig: string[] } };
    assert.deepEqual(show.ssh.sshdConfig, ['TrustedUserCAKeys /etc/ssh/postern_user_ca.pub', 'AuthorizedPrincipalsFile /etc/ssh/postern_principals/%u']);
    sshd = await startSshd(show.ssh.publicKey, ['ops']);
    const token = await server.cli(['connector', 'token', 'create', '--name', 'ssh', '--socket', 'ssh']);
    const config = await writeConnectorConfig(dir, 'c.yaml', { server: server.url, token: token.stdout.trim(), sockets: [{ name: 'ssh', type: 'tls', upstream: `tcp://127.0.0.1:${sshd.port}` }] });
    await startConnector(['connector', 'start', '--config', config], server.env);

    const { keyPem, csrPem } = await createKeyAndCsr('ana@corp.example');
    const issued = await api(server, '/api/v1/certificates/tls', { method: 'POST', body: { csr: csrPem, email: 'ana@corp.example' } });
    assert.equal(issued.status, 201, issued.text);
    await writeFile(join(dir, 'tls.key'), keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'tls.crt'), issued.json<{ certificate: string }>().certificate);
    proxyCommand = `ProxyCommand=openssl s_client -quiet -verify_quiet -verify_return_error -connect 127.0.0.1:${server.port} -servername %h `
      + `-CAfile ${server.caFile} -cert ${join(dir, 'tls.crt')} -key ${join(dir, 'tls.key')}`;
  });

  after(async () => {
    await cleanupAll();
    await sshd?.stop();
  });

  test('ssh with a Postern certificate runs a command on the sshd behind the socket', async () => {
    const key = await sshKeyPair(dir, 'ana');
    await sshCertificate(key, ['ops']);
    const result = await ssh(key.path, 'ssh.localhost', ['-o', proxyCommand], ['echo', 'hello through postern']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'hello through postern');
  });

  test('`postern client tls` is the ProxyCommand and `client ssh-keysign` certifies the key of a signed-in user', async () => {
    const { env: laptop } = await laptopFor(server);
    // Not signed in yet: the command starts the device sign-in by itself, on stderr.
    const keysign = spawnCli('client ssh-keysign', ['client', 'ssh-keysign', '--host', 'ssh.localhost'], laptop);
    const userCode = (await keysign.waitForOutput(/shows the code: ([A-Z]{4}-[A-Z]{4})/, { stream: 'stderr' }))[1]!;
    await approveDeviceCode(server, userCode, 'ana@corp.example', PASSWORD);
    const exit = await withTimeout(keysign.exited, 20_000, 'client ssh-keysign to finish');
    assert.equal(exit.code, 0, keysign.stderr);
    assert.match(keysign.stderr, /Signed in to https:\/\/localhost:\d+ as ana@corp\.example/);
    const key = keysign.stdout.trim();
    assert.match(key, /id_ed25519$/);
    const envs = Object.entries(laptop).filter(([k]) => k.startsWith('POSTERN_')).map(([k, v]) => `${k}=${v}`).join(' ');
    const proxy = `ProxyCommand=env ${envs} ${process.execPath} ${CLI} client tls --host %h`;
    // The user's own certificate names only the email, so sshd maps the email to the login.
    await writeFile(join(sshd.dir, `principals_${LOGIN}`), 'ops\nana@corp.example\n');
    const result = await ssh(key, 'ssh.localhost', ['-o', proxy], ['echo', 'via postern client tls'])
      .finally(() => writeFile(join(sshd.dir, `principals_${LOGIN}`), 'ops\n'));
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'via postern client tls');
    const closed = await waitForAudit(server, ['--socket', 'ssh', '--type', 'connection.close'], (e) => e.actor === 'ana@corp.example', 'the connection record');
    assert.equal(closed.clientIp, '127.0.0.1');
    assert.equal(closed.reason, 'closed');
    assert.ok(Number(closed.details.bytesUp) > 0 && Number(closed.details.bytesDown) > 0 && Number(closed.details.durationMs) >= 0, JSON.stringify(closed.details));

    // Revoking the sign-in cuts the certificates issued under it, even cached ones still in date.
    const sessions = JSON.parse((await server.cli(['sessions', 'ls', '--user', 'ana@corp.example', '--json'])).stdout) as { id: string; kind: string }[];
    for (const session of sessions.filter((s) => s.kind === 'cli')) assert.equal((await server.cli(['sessions', 'revoke', session.id])).code, 0);
    await writeFile(join(sshd.dir, `principals_${LOGIN}`), 'ops\nana@corp.example\n');
    const revoked = await ssh(key, 'ssh.localhost', ['-o', proxy], ['true']).finally(() => writeFile(join(sshd.dir, `principals_${LOGIN}`), 'ops\n'));
    assert.notEqual(revoked.code, 0);
    await waitForAudit(server, ['--socket', 'ssh', '--type', 'access.denied'], (e) => /the sign-in of ana@corp\.example this certificate was issued under has ended/.test(e.reason), 'the refusal in the audit trail');

    const config = await runCli(['client', 'ssh-config'], laptop);
    assert.equal(config.code, 0, config.stderr);
    assert.match(config.stdout, /Match host \*\.localhost exec ".* client ssh-keysign --host %h"\n {2}ProxyCommand .* client tls --host %h\n {2}IdentityFile .*id_ed25519\n {2}CertificateFile .*id_ed25519-cert\.pub/);
  });

  test('client ssh-config prints its block at once without signing in, and runs a stable command, not a temporary path', async () => {
    const { env, configDir } = await laptopFor(server);
    const config = await runCli(['client', 'ssh-config'], { ...env, PATH: '/usr/bin:/bin' }, 10_000);
    assert.equal(config.code, 0, config.stderr);
    const wrapper = join(configDir, 'bin', 'postern');
    assert.ok(config.stdout.startsWith(`Match host *.localhost exec "${wrapper} client ssh-keysign --host %h"\n  ProxyCommand ${wrapper} client tls --host %h\n`), config.stdout);
    assert.match(config.stderr, /postern is not on PATH, so the block runs /);
    const version = await runCli(['--version'], env);
    const viaWrapper = await new Promise<string>((resolve, reject) => execFile(wrapper, ['--version'], (err, stdout) => (err ? reject(err) : resolve(stdout))));
    assert.equal(viaWrapper, version.stdout, 'the wrapper runs this installation');
    const onPath = join(configDir, 'path-bin');
    await mkdir(onPath, { recursive: true });
    await writeFile(join(onPath, 'postern'), '#!/bin/sh\n', { mode: 0o755 });
    const withPostern = await runCli(['client', 'ssh-config'], { ...env, PATH: `${onPath}:/usr/bin:/bin` }, 10_000);
    assert.match(withPostern.stdout, /^Match host \*\.localhost exec "postern client ssh-keysign --host %h"\n {2}ProxyCommand postern client tls --host %h\n/);
    assert.equal(withPostern.stderr, '');
  });

  test('the logins a policy allows on the socket are in the certificate `client ssh-keysign --host` gets, and sshd takes them by name', async () => {
    const laptop = await signedInLaptop(server, 'ana@corp.example', PASSWORD);
    const policy = join(dir, 'ssh-logins.yaml');
    await writeFile(policy, `name: ssh-logins\nsockets: [ssh]\nrules:\n  - effect: allow\n    who: { domain: [corp.example] }\n    what: { ssh: { logins: [${LOGIN}, deploy] } }\n  - effect: deny\n    what: { ssh: { logins: [deploy] } }\n`);
    assert.equal((await server.cli(['policy', 'apply', '-f', policy])).code, 0);
    try {
      const keysign = await runCli(['client', 'ssh-keysign', '--host', 'ssh.localhost'], laptop);
      assert.equal(keysign.code, 0, keysign.stderr);
      const key = keysign.stdout.trim();
      const shown = await new Promise<string>((resolve, reject) => execFile('ssh-keygen', ['-L', '-f', `${key}-cert.pub`], (err, out) => (err ? reject(err) : resolve(out))));
      const principals = /Principals:\s*\n((?:\s{16}\S+\n)+)/.exec(shown)?.[1]?.trim().split(/\s+/);
      assert.deepEqual(principals, ['ana@corp.example', LOGIN, 'postern'], shown);
      const envs = Object.entries(laptop).filter(([k]) => k.startsWith('POSTERN_')).map(([k, v]) => `${k}=${v}`).join(' ');
      // The principals file of the login names the login itself: whoever the policy lets use it may.
      await writeFile(join(sshd.dir, `principals_${LOGIN}`), `ops\n${LOGIN}\n`);
      const result = await ssh(key, 'ssh.localhost', ['-o', `ProxyCommand=env ${envs} ${process.execPath} ${CLI} client tls --host %h`], ['echo', 'as the login the policy named'])
        .finally(() => writeFile(join(sshd.dir, `principals_${LOGIN}`), 'ops\n'));
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), 'as the login the policy named');
    } finally {
      await server.cli(['policy', 'delete', 'ssh-logins']);
    }
  });

  test('sshd refuses a certificate without the login principal', async () => {
    const key = await sshKeyPair(dir, 'ana-nologin');
    await sshCertificate(key, []);
    const result = await ssh(key.path, 'ssh.localhost', ['-o', proxyCommand], ['true']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Permission denied/);
  });
});
