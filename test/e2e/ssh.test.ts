// E2E: SSH through Postern with real OpenSSH — ssh's ProxyCommand opens the sign-in `tls` socket
// with a Postern client certificate (openssl s_client as the stdio pipe), the connector forwards
// to a private sshd that trusts Postern's SSH user CA (from `socket show`), and the command runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createKeyAndCsr } from '../../src/ca/csr.js';
import { cleanupAll, startConnector, startServer, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { haveOpenSsh, ssh, sshKeyPair, startSshd } from '../helpers/sshd.js';
import type { Sshd } from '../helpers/sshd.js';
import { tempDir } from '../helpers/util.js';

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
    assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email: 'ana@corp.example' } })).status, 201);
    const shown = await server.cli(['socket', 'create', '--name', 'ssh', '--type', 'tls', '--upstream', 'tcp://127.0.0.1:22', '--allowed-email-domains', 'corp.example']);
    assert.equal(shown.code, 0, shown.stderr);
    const show = JSON.parse((await server.cli(['socket', 'show', 'ssh', '--json'])).stdout) as { ssh: { publicKey: string; sshdConfig: string[] } };
    assert.deepEqual(show.ssh.sshdConfig, ['TrustedUserCAKeys /etc/ssh/postern_user_ca.pub', 'AuthorizedPrincipalsFile /etc/ssh/postern_principals/%u']);
    sshd = await startSshd(show.ssh.publicKey, ['ops']);
    const token = await server.cli(['connector', 'token', 'create', '--name', 'ssh']);
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

  test('sshd refuses a certificate without the login principal', async () => {
    const key = await sshKeyPair(dir, 'ana-nologin');
    await sshCertificate(key, []);
    const result = await ssh(key.path, 'ssh.localhost', ['-o', proxyCommand], ['true']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Permission denied/);
  });
});
