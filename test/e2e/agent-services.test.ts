// E2E: service identities. A real server and `postern agent` with two declared services; a
// small Node client process asks the Workload API (HTTP over the Unix socket) for its SVID (one
// URI SAN, its own id) and a JWT-SVID that verifies against the public trust bundle's JWKS; a
// process that does not match the declaration is refused; the SVID rotates with a short TTL;
// the control plane refuses CSRs for two URI SANs, for another service, or from an agent
// without the namespace; after `agent revoke` a second node following the store's change feed
// refuses the SVID within 1 s.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { readFile, realpath, stat, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ECDSA_P256, SIGNING, subtle, x509 } from '../../src/ca/x509.js';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { checkX509Svid, createKeyAndCsr, createSvidKeyAndCsr, serviceSpiffeId, verifyJwtSvid } from '../../src/ca/index.js';
import { ChangeFeed, RevokedAgents, openStore, silentLogger } from '../../src/store/index.js';
import type { Store } from '../../src/store/index.js';
import type { TrustBundle } from '../../src/api-client/index.js';
import { api, loopbackLookup } from '../helpers/https.js';
import { cleanupAll, spawnCli, startServer } from '../helpers/processes.js';
import type { Managed, ServerHandle } from '../helpers/processes.js';
import { tempDir, waitFor } from '../helpers/util.js';

const run = promisify(execFile);
const TD = 'svc.test';
const PAYROLL = serviceSpiffeId(TD, 'fin', 'payroll');

/** The service's own code: asks the Workload API and prints what it got, or the refusal. */
const CLIENT = `
import http from 'node:http';
const [socketPath, path, body] = process.argv.slice(2);
const req = http.request({ socketPath, path, method: body ? 'POST' : 'GET', headers: { 'content-type': 'application/json' } }, (res) => {
  let text = '';
  res.setEncoding('utf8').on('data', (c) => (text += c)).on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, body: JSON.parse(text) })));
});
req.on('error', (err) => { process.stderr.write(err.message); process.exit(2); });
req.end(body);
`;

describe('postern agent: service identities and the Workload API', () => {
  let server: ServerHandle;
  let dir: string;
  let socketPath: string;
  let clientFile: string;
  let agent: Managed;
  let agentId: string;
  let bundle: TrustBundle;
  let secondNode: Store | undefined;
  let feed: ChangeFeed | undefined;
  let revoked: RevokedAgents | undefined;

  const cli = async (args: string[]) => {
    const result = await server.cli(args);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  };
  const workload = async (path: string, body?: object) => {
    const { stdout } = await run(process.execPath, [clientFile, socketPath, path, ...(body ? [JSON.stringify(body)] : [])], { timeout: 10_000 });
    return JSON.parse(stdout) as { status: number; body: Record<string, unknown> };
  };

  before(async () => {
    server = await startServer({ extraArgs: ['--agent-cert-ttl', '6s', '--agent-trust-domain', TD] });
    dir = (await tempDir('postern-agent-services-')).path;
    socketPath = join(dir, 'workload.sock');
    clientFile = join(dir, 'client.mjs');
    await writeFile(clientFile, CLIENT);
    const node = await realpath(process.execPath);
    const nodeSha = createHash('sha256').update(await readFile(node)).digest('hex');
    await writeFile(join(dir, 'scan.json'), JSON.stringify({ vulnerable: false, app: 'scanner-may-not-rename' }));
    const { token } = JSON.parse(await cli(['agent', 'token', 'create', '--json', '--name', 'fin-host', '--attr', 'namespace=fin'])) as { token: string };
    const yaml = [
      `server: ${server.url}`,
      'attestation:', '  method: join_token', `  token: ${token}`,
      'facts: false',
      'workload_api:', '  socket: workload.sock', "  mode: '0600'",
      'services:',
      '  - name: payroll', '    namespace: fin', '    port: 8443',
      `    process: { exe: ${node}, sha256: ${nodeSha}, uid: ${process.getuid!()} }`,
      '    labels: { app: payroll, env: prod }', '    labels_file: scan.json',
      '  - name: ledger', '    namespace: fin',
      `    process: { exe: ${node}, uid: 4242 }`,
      '    labels: { app: ledger }',
    ].join('\n') + '\n';
    await writeFile(join(dir, 'agent.yaml'), yaml);
    agent = spawnCli('agent fin-host', ['agent', '--config', join(dir, 'agent.yaml')], server.env);
    const [, spiffeId] = (await agent.waitForOutput(/agent identity (spiffe:\/\/\S+)/))!;
    agentId = spiffeId!.split('/').at(-1)!;
    await agent.waitForOutput(/workload API on /);
    const res = await api(server, '/api/v1/trust-bundle', { token: null });
    assert.equal(res.status, 200, res.body.toString());
    bundle = JSON.parse(res.body.toString()) as TrustBundle;
  });
  after(async () => {
    revoked?.stop();
    await feed?.stop();
    await secondNode?.close();
    await agent?.stop('SIGKILL');
    await server.stop();
    await cleanupAll();
  });

  test('the Workload API socket is 0600; the declared process gets its SVID: one URI SAN, its id, our CA, labels', async () => {
    assert.equal((await stat(socketPath)).mode & 0o777, 0o600);
    const { status, body } = await workload('/svid');
    assert.equal(status, 200, JSON.stringify(body));
    const cert = new X509Certificate(body.certificate as string);
    assert.equal(cert.subjectAltName, `URI:${PAYROLL}`);
    assert.equal(body.spiffeId, PAYROLL);
    assert.ok(cert.checkIssued(new X509Certificate(bundle.x509[0]!)));
    assert.ok(cert.checkPrivateKey(createPrivateKey(body.key as string)), 'the key is the certificate\'s');
    assert.deepEqual(body.labels, { app: 'payroll', env: 'prod', vulnerable: 'false' }, 'the scanner adds labels; the YAML\'s win');
    assert.equal(bundle.trustDomain, TD);

    const listed = JSON.parse(await cli(['service', 'ls', '--json'])) as { services: { id: string; agentId: string; labels: Record<string, string>; port: number | null }[] };
    assert.deepEqual(listed.services.map((s) => [s.id, s.agentId]), [['fin/ledger', agentId], ['fin/payroll', agentId]]);
    assert.equal(listed.services[1]!.port, 8443);
    assert.match(await cli(['service', 'ls']), /fin\/payroll\s+spiffe:\/\/svc\.test\/ns\/fin\/svc\/payroll/);
  });

  test('a JWT-SVID for an audience verifies against the trust bundle JWKS: sub, aud, short exp, labels', async () => {
    const { status, body } = await workload('/jwt', { aud: 'orders' });
    assert.equal(status, 200, JSON.stringify(body));
    const { payload } = await jwtVerify(body.token as string, createLocalJWKSet(bundle.jwks as never), { audience: 'orders', algorithms: ['ES256'] });
    assert.equal(payload.sub, PAYROLL);
    assert.ok(payload.exp! - payload.iat! <= 300, 'lives at most 5 minutes');
    assert.deepEqual(payload.labels, { app: 'payroll', env: 'prod', vulnerable: 'false' });
    await assert.rejects(jwtVerify(body.token as string, createLocalJWKSet(bundle.jwks as never), { audience: 'billing' }), /aud/);
    const missing = await workload('/jwt', {});
    assert.equal(missing.status, 400);
  });

  test('a process that does not match the declaration is refused', async () => {
    const other = await workload('/svid?service=fin/ledger');
    assert.equal(other.status, 403, 'node as root is not ledger (uid 4242)');
    assert.match(String(other.body.title), /does not match the process declared for fin\/ledger/);
    const { stdout } = await run('curl', ['-sS', '--unix-socket', socketPath, 'http://workload/svid'], { timeout: 10_000 });
    const refused = JSON.parse(stdout) as { status: number; title: string };
    assert.equal(refused.status, 403);
    assert.match(refused.title, /\/curl, uid 0\) matches no service declared on this host/);
    assert.doesNotMatch(stdout, /BEGIN/);
  });

  test('the control plane refuses a CSR for two URI SANs, for another service, and agents without the namespace', async () => {
    const attest = async (attr: string[]) => {
      const { token } = JSON.parse(await cli(['agent', 'token', 'create', '--json', ...attr])) as { token: string };
      const { keyPem, csrPem } = await createKeyAndCsr('probe');
      const res = await api(server, '/api/v1/agents/attest', { method: 'POST', token: null, body: { method: 'join_token', token, csr: csrPem } });
      assert.equal(res.status, 201, res.body.toString());
      return { keyPem, certPem: (JSON.parse(res.body.toString()) as { certificate: string }).certificate };
    };
    const askSvid = (identity: { keyPem: string; certPem: string }, body: object) => new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request({
        host: 'localhost', port: server.port, path: '/api/v1/agents/svid', method: 'POST', ca: server.caPem, cert: identity.certPem, key: identity.keyPem,
        lookup: loopbackLookup, agent: false, headers: { 'content-type': 'application/json' },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
    const fin = await attest(['--attr', 'namespace=fin']);
    const service = { name: 'payroll', namespace: 'fin' };

    const good = await askSvid(fin, { service, csr: (await createSvidKeyAndCsr(PAYROLL)).csrPem });
    assert.equal(good.status, 200, good.body);

    const keys = await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify']) as CryptoKeyPair;
    const twoSans = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=svid', keys, signingAlgorithm: SIGNING,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: PAYROLL }, { type: 'url', value: serviceSpiffeId(TD, 'fin', 'ledger') }])],
    });
    const two = await askSvid(fin, { service, csr: twoSans.toString('pem') });
    assert.equal(two.status, 403, two.body);
    assert.match(two.body, /exactly one URI SAN/);

    const another = await askSvid(fin, { service, csr: (await createSvidKeyAndCsr(serviceSpiffeId(TD, 'fin', 'ledger'))).csrPem });
    assert.equal(another.status, 403, another.body);

    const hr = await askSvid(await attest(['--attr', 'namespace=hr']), { service, csr: (await createSvidKeyAndCsr(PAYROLL)).csrPem });
    assert.equal(hr.status, 403);
    assert.match(hr.body, /may speak for services of namespace \\"hr\\", not for fin\/payroll/);
    const none = await askSvid(await attest([]), { service, csr: (await createSvidKeyAndCsr(PAYROLL)).csrPem });
    assert.equal(none.status, 403);
    assert.match(none.body, /no verified \\"namespace\\" attribute/);
  });

  test('the SVID rotates at half life with a short TTL: a new certificate, same id, new key', async () => {
    const first = (await workload('/svid')).body;
    await waitFor(async () => (await workload('/svid')).body.certificate !== first.certificate, { timeoutMs: 10_000, intervalMs: 250, what: 'a rotated SVID' });
    const next = (await workload('/svid')).body;
    assert.equal(new X509Certificate(next.certificate as string).subjectAltName, `URI:${PAYROLL}`);
    assert.notEqual(next.key, first.key, 'a new key at every rotation');
    assert.ok(Date.parse(next.notAfter as string) > Date.parse(first.notAfter as string));
  });

  test('after `agent revoke`, a second node following the change feed refuses its SVIDs within 1 s', async () => {
    secondNode = await openStore(join(server.dataDir, 'postern.db'), { logger: silentLogger });
    feed = new ChangeFeed(secondNode, { logger: silentLogger });
    revoked = new RevokedAgents(secondNode, feed);
    await feed.start();
    await revoked.start();
    const { body: svid } = await workload('/svid');
    const { body: jwt } = await workload('/jwt', { aud: 'orders' });
    const check = () => checkX509Svid(svid.certificate as string, { caPems: bundle.x509, trustDomain: TD, now: Date.now(), isAgentRevoked: (id) => revoked!.has(id) });
    assert.deepEqual(check(), { ok: true, spiffeId: PAYROLL, namespace: 'fin', name: 'payroll', agentId });
    const jwtOptions = { jwks: bundle.jwks as never, audience: 'orders', trustDomain: TD, isAgentRevoked: (id: string) => revoked!.has(id) };
    assert.equal((await verifyJwtSvid(jwt.token as string, { ...jwtOptions, now: Math.floor(Date.now() / 1000) })).agentId, agentId);

    await cli(['agent', 'revoke', agentId]);
    const revokedAt = Date.now();
    await waitFor(() => !check().ok, { timeoutMs: 1_000, intervalMs: 10, what: 'the SVID to be refused' });
    assert.ok(Date.now() - revokedAt <= 1_000);
    const refusal = check();
    assert.equal(refusal.ok ? 'ok' : refusal.reason, 'agent-revoked');
    await assert.rejects(verifyJwtSvid(jwt.token as string, { ...jwtOptions, now: Math.floor(Date.now() / 1000) }), /is revoked/);
  });
});
