// E2E: `postern agent` against a real server. Join-token attestation puts the SPIFFE id in the
// certificate's one URI SAN; JWT attestation against a JWKS this test serves; renewal seen
// with a short TTL; `agent revoke` makes the next renewal fail and the agent exit non-zero;
// `agent ls` shows attributes (verified apart from self-asserted host facts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { caPin, createKeyAndCsr } from '../../src/ca/index.js';
import { api } from '../helpers/https.js';
import { cleanupAll, spawnCli, startServer } from '../helpers/processes.js';
import type { Managed, ServerHandle } from '../helpers/processes.js';
import { tempDir } from '../helpers/util.js';

describe('postern agent', () => {
  let server: ServerHandle;
  let dir: string;
  let jwks: http.Server;
  let jwksUrl: string;
  let signingKey: CryptoKey;
  const agents: Managed[] = [];

  before(async () => {
    server = await startServer({ extraArgs: ['--agent-cert-ttl', '6s', '--agent-trust-domain', 'agents.test'] });
    dir = (await tempDir('postern-agent-e2e-')).path;
    const pair = await generateKeyPair('ES256', { extractable: true });
    signingKey = pair.privateKey;
    const body = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'ci-1', alg: 'ES256', use: 'sig' }] });
    jwks = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
  });
  after(async () => {
    for (const agent of agents) await agent.stop('SIGKILL');
    await new Promise((resolve) => jwks.close(resolve));
    await server.stop();
    await cleanupAll();
  });

  const run = async (name: string, yaml: string): Promise<Managed> => {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, yaml);
    const agent = spawnCli(`agent ${name}`, ['agent', '--config', file], server.env);
    agents.push(agent);
    return agent;
  };
  const cli = async (args: string[]) => {
    const result = await server.cli(args);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  };

  test('join token: attests once, SPIFFE id in the certificate, renews, revocation stops it', async () => {
    const { token } = JSON.parse(await cli(['agent', 'token', 'create', '--json', '--name', 'web-1', '--attr', 'env=prod'])) as { token: string };
    const agent = await run('web-1', `server: ${server.url}\nattestation:\n  method: join_token\n  token: ${token}\nfacts: true\n`);
    const [, spiffeId] = (await agent.waitForOutput(/agent identity (spiffe:\/\/\S+)/))!;
    assert.match(spiffeId!, /^spiffe:\/\/agents\.test\/agent\/agt_[a-z0-9]+$/);
    const id = spiffeId!.split('/').at(-1)!;

    const { agents: listed } = JSON.parse(await cli(['agent', 'ls', '--json'])) as { agents: { id: string; spiffeId: string; attributes: Record<string, string>; selfAsserted: Record<string, string>; certSerial: string }[] };
    const row = listed.find((a) => a.id === id)!;
    assert.equal(row.spiffeId, spiffeId);
    assert.deepEqual(row.attributes, { env: 'prod' }, 'host facts are not trusted unless the token says so');
    assert.ok(row.selfAsserted['host.hostname'], 'host facts are recorded as self-asserted');
    const table = await cli(['agent', 'ls']);
    assert.match(table, new RegExp(`${id}.*env=prod`));

    await agent.waitForOutput(/renewed spiffe:\/\//, { timeoutMs: 10_000 });

    // The same token cannot attest a second agent (the key lived in memory; a restart needs a new token).
    const again = await run('web-1-again', `server: ${server.url}\nattestation:\n  method: join_token\n  token: ${token}\n`);
    const exit = await again.exited;
    assert.equal(exit.code, 1);
    assert.match(again.stderr, /already used/);

    await cli(['agent', 'revoke', id]);
    const stopped = await Promise.race([agent.exited, new Promise<undefined>((resolve) => setTimeout(resolve, 10_000))]);
    assert.equal(stopped?.code, 1, `the agent exits non-zero once revoked\n${agent.tail()}`);
    assert.match(agent.stderr, new RegExp(`postern: agent stopped: agent ${id} was revoked at \\S+\\n`));
  });

  test('the issued certificate carries the SPIFFE id as its one URI SAN', async () => {
    const { token } = JSON.parse(await cli(['agent', 'token', 'create', '--json'])) as { token: string };
    const { csrPem } = await createKeyAndCsr('ignored');
    const res = await api(server, '/api/v1/agents/attest', { method: 'POST', token: null, body: { method: 'join_token', token, csr: csrPem } });
    assert.equal(res.status, 201, res.body.toString());
    const issued = JSON.parse(res.body.toString()) as { agentId: string; spiffeId: string; certificate: string };
    const cert = new X509Certificate(issued.certificate);
    assert.equal(cert.subjectAltName, `URI:${issued.spiffeId}`);
    assert.equal(issued.spiffeId, `spiffe://agents.test/agent/${issued.agentId}`);
    assert.ok(cert.checkIssued(new X509Certificate(server.caPem)));
  });

  test('JWT from a trusted issuer: attributes from claims, the certificate is ours', async () => {
    await cli(['agent', 'issuer', 'add', 'ci', '--issuer', 'https://ci.test', '--audience', 'postern', '--jwks-url', jwksUrl, '--alg', 'ES256', '--claim', 'repo=repository']);
    const jwt = await new SignJWT({ repository: 'acme/payroll' }).setProtectedHeader({ alg: 'ES256', kid: 'ci-1' })
      .setIssuer('https://ci.test').setAudience('postern').setSubject('runner-7').setIssuedAt().setExpirationTime('5m').sign(signingKey);
    const tokenFile = join(dir, 'ci.jwt');
    await writeFile(tokenFile, jwt);
    const agent = await run('ci', `server: ${server.url}\nca_pin: ${caPin(server.caPem)}\nattestation:\n  method: jwt\n  issuer: ci\n  token_file: ${tokenFile}\nfacts: false\n`);
    const [, spiffeId] = (await agent.waitForOutput(/agent identity (spiffe:\/\/\S+)/))!;
    const { agents: listed } = JSON.parse(await cli(['agent', 'ls', '--json'])) as { agents: { spiffeId: string; method: string; attributes: Record<string, string>; selfAsserted: Record<string, string> }[] };
    const row = listed.find((a) => a.spiffeId === spiffeId)!;
    assert.equal(row.method, 'jwt');
    assert.deepEqual(row.attributes, { 'jwt.issuer': 'ci', 'jwt.sub': 'runner-7', repo: 'acme/payroll' });
    assert.deepEqual(row.selfAsserted, {});
    await agent.waitForOutput(/renewed spiffe:\/\//, { timeoutMs: 10_000 });
    const exit = await agent.stop('SIGTERM');
    assert.equal(exit.code, 0, 'SIGTERM stops the agent cleanly');
  });
});
