// E2E: the agents' mesh between two hosts. Hosts A and B are network namespaces joined by a veth
// pair (the test makes and removes them); the server runs in the root namespace and reaches each
// host's 127.0.0.1 through a bridge. Host B runs a TCP echo service and an HTTP service behind its
// agent's mutual-TLS listener; host A's agent speaks for the `ui` service (the node executable) and
// gives it one local listener per dependency. Shown: an allowed TCP call and its flow events with
// both identities and bytes; a call no policy allows refused with the reason, the service seeing
// nothing; a process that is not the declared executable refused; per-request decisions with the
// caller's identity reaching the callee; the user+service rule (alice yes, bob no, no user no);
// an open connection surviving SVID rotation; a policy change and the caller's revocation cutting
// open flows.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { realpath, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignInBrowser } from '../helpers/browser.js';
import { api, httpsFetch } from '../helpers/https.js';
import { bridgeToRoot, createTwoHosts, needsNetns } from '../helpers/netns.js';
import type { NetnsHost, TwoHosts } from '../helpers/netns.js';
import { auditEvents, cleanupAll, startServer, waitForAudit } from '../helpers/processes.js';
import type { Managed, ServerHandle } from '../helpers/processes.js';
import { tempDir, waitFor } from '../helpers/util.js';

const TD = 'mesh.test';
const PASSWORD = 'correct horse battery staple';
const ALICE = 'alice@corp.example';
const BOB = 'bob@corp.example';
const MESH_PORT = 7443;
const ECHO_PORT = 7100;
const HTTP_PORT = 7200;
const TO_ORDERS = 7001;
const TO_API = 7002;
const TO_LEDGER = 7003;
const UI = `spiffe://${TD}/ns/shop/svc/ui`;
const ORDERS = `spiffe://${TD}/ns/shop/svc/orders`;

/** B's services: an echo on ECHO_PORT and an HTTP service answering with the path and headers it got. */
const SERVICES = `const net = require('net'), http = require('http');
net.createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(${ECHO_PORT}, '127.0.0.1');
http.createServer((req, res) => res.end(JSON.stringify({ method: req.method, path: req.url, headers: req.headers })))
  .listen(${HTTP_PORT}, '127.0.0.1', () => console.log('services up'));`;

/** A TCP caller on A: sends its argument, prints what came back before the connection closed. */
const TCP_CALL = `const s = require('net').connect(Number(process.argv[1]), '127.0.0.1', () => s.write(process.argv[2]));
let got = ''; s.on('data', (d) => { got += d; if (got.length >= process.argv[2].length) s.end(); });
s.on('close', () => process.stdout.write(got)); s.on('error', () => {}); setTimeout(() => s.destroy(), 8000);`;

/** An HTTP caller on A: prints {status, body}; argv: port, method, path, [assertion]. */
const HTTP_CALL = `const [port, method, path, assertion] = process.argv.slice(1);
const req = require('http').request({ host: '127.0.0.1', port: Number(port), method, path, headers: assertion ? { 'x-postern-jwt-assertion': assertion, 'x-auth-email': 'mallory@corp.example' } : { 'x-auth-email': 'mallory@corp.example' } }, (res) => {
  let body = ''; res.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, body })));
});
req.on('error', (e) => { process.stdout.write(JSON.stringify({ status: 0, body: e.message })); }); req.end();`;

/** A long TCP caller on A: one ping every 200 ms for `seconds`, counting echoes; prints "echoed N of M", or "closed after N of M" the moment the connection ends. */
const LONG_CALL = `const [port, seconds] = process.argv.slice(1).map(Number);
const s = require('net').connect(port, '127.0.0.1'); let sent = 0, got = 0, done = false;
s.on('data', (d) => { got += d.length; }); s.on('error', () => {});
s.on('close', () => { if (!done) { console.log('closed after ' + got + ' of ' + sent); process.exit(0); } });
const t = setInterval(() => { s.write('x'); sent++; }, 200);
setTimeout(() => { clearInterval(t); setTimeout(() => { done = true; console.log('echoed ' + got + ' of ' + sent); s.destroy(); }, 500); }, seconds * 1000);`;

const yaml = (lines: readonly string[]) => `${lines.join('\n')}\n`;

describe('the agents\' mesh between two hosts', needsNetns, () => {
  let server: ServerHandle;
  let hosts: TwoHosts;
  let dir: string;
  let agentA: Managed;
  let agentB: Managed;
  let agentAId: string;
  const bridges: { close(): Promise<void> }[] = [];
  const assertions = new Map<string, string>();

  const cli = async (args: string[]) => {
    const result = await server.cli(args);
    assert.equal(result.code, 0, `postern ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  const onA = (script: string, args: readonly (string | number)[]) => hosts.a.run(process.execPath, ['-e', script, ...args.map(String)], { timeoutMs: 20_000 });
  const tcpCall = async (port: number, text: string) => (await onA(TCP_CALL, [port, text])).stdout;
  const httpCall = async (method: string, path: string, assertion?: string) => {
    const run = await onA(HTTP_CALL, [TO_API, method, path, ...(assertion ? [assertion] : [])]);
    const answer = JSON.parse(run.stdout) as { status: number; body: string };
    return { status: answer.status, json: () => JSON.parse(answer.body) as { path: string; headers: Record<string, string>; title?: string; detail?: string } };
  };
  const startAgent = async (host: NetnsHost, name: string, lines: readonly string[]) => {
    const { token } = JSON.parse(await cli(['agent', 'token', 'create', '--json', '--name', name, '--attr', 'namespace=shop'])) as { token: string };
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, yaml([`server: ${server.url}`, 'attestation:', '  method: join_token', `  token: ${token}`, 'facts: false',
      'workload_api:', `  socket: ${join(dir, `${name}.sock`)}`, "  mode: '0600'", ...lines]));
    const agent = host.spawnCli(`agent ${name}`, ['agent', '--config', file], server.env);
    const [, spiffeId] = (await agent.waitForOutput(/agent identity (spiffe:\/\/\S+)/, { timeoutMs: 20_000 }))!;
    return { agent, id: spiffeId!.split('/').at(-1)! };
  };
  const applyPolicy = async (name: string, text: readonly string[]) => {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, yaml(text));
    await cli(['policy', 'apply', '-f', file]);
  };

  before(async () => {
    server = await startServer({ extraArgs: ['--agent-trust-domain', TD, '--agent-cert-ttl', '8s', '--trusted-proxies', '127.0.0.1'] });
    dir = (await tempDir('postern-mesh-')).path;
    hosts = await createTwoHosts();
    for (const host of [hosts.a, hosts.b]) bridges.push(await bridgeToRoot(host, server.port, join(dir, `bridge-${host.address}.sock`)));

    for (const email of [ALICE, BOB]) assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email, password: PASSWORD, groups: ['staff'] } })).status, 201);
    // The people's side: a sign-in socket whose assertions the UI service relays (fetched the way nginx would, from the authorize endpoint).
    await cli(['socket', 'create', '--name', 'portal', '--type', 'http', '--cloudauth']);
    for (const email of [ALICE, BOB]) {
      const browser = new SignInBrowser(server, PASSWORD);
      await browser.signIn(`https://portal.localhost:${server.port}/`, email);
      const cookie = browser.cookies('portal.localhost').get('__Host-postern_session');
      assert.ok(cookie, `${email} signed in to the portal`);
      const answer = await httpsFetch({ port: server.port, ca: server.caPem, host: 'localhost', path: '/_postern/authz/portal', headers: { cookie: `__Host-postern_session=${cookie}`, 'x-original-uri': '/', 'x-original-method': 'GET' } });
      assert.equal(answer.status, 200, answer.text);
      assertions.set(email, String(answer.headers['x-postern-jwt-assertion']));
    }

    await applyPolicy('orders', ['name: orders-callers', 'namespace: shop', 'services: [orders]', 'rules:',
      '  - name: ui-calls-orders', '    effect: allow', '    who: { service: { app: ui } }', '    what: { tls: {} }']);
    await applyPolicy('api', ['name: api-callers', 'namespace: shop', 'services: [api]', 'rules:',
      '  - name: ui-reads-public', '    effect: allow', '    who: { service: { app: ui } }', '    what: { http: { methods: [GET], paths: ["/public/*"] } }',
      '  - name: ui-for-alice', '    effect: allow', `    who: { service: { app: ui }, on_behalf_of: { email: [${ALICE}] } }`, '    what: { http: { methods: [GET], paths: ["/alice/*"] } }']);

    const services = hosts.b.spawn('services on B', process.execPath, ['-e', SERVICES]);
    await services.waitForOutput(/services up/, { timeoutMs: 10_000 });
    ({ agent: agentB } = await startAgent(hosts.b, 'host-b', ['services:',
      `  - { name: orders, namespace: shop, port: ${ECHO_PORT}, labels: { app: orders } }`,
      `  - { name: ledger, namespace: shop, port: ${ECHO_PORT}, labels: { app: ledger } }`,
      `  - { name: api, namespace: shop, port: ${HTTP_PORT}, protocol: http, labels: { app: api } }`,
      'mesh:', `  listen: ${hosts.b.address}:${MESH_PORT}`]));
    await agentB.waitForOutput(/mesh: services reachable on /, { timeoutMs: 20_000 });
    const node = await realpath(process.execPath);
    const target = `${hosts.b.address}:${MESH_PORT}`;
    ({ agent: agentA, id: agentAId } = await startAgent(hosts.a, 'host-a', ['services:',
      `  - { name: ui, namespace: shop, process: { exe: ${node}, uid: ${process.getuid!()} }, labels: { app: ui } }`,
      'mesh:', '  outbound:',
      `    - { listen: 127.0.0.1:${TO_ORDERS}, to: shop/orders, address: ${target} }`,
      `    - { listen: 127.0.0.1:${TO_API}, to: shop/api, address: ${target}, protocol: http }`,
      `    - { listen: 127.0.0.1:${TO_LEDGER}, to: shop/ledger, address: ${target} }`]));
    await agentA.waitForOutput(new RegExp(`mesh: 127\\.0\\.0\\.1:${TO_LEDGER} → shop/ledger`), { timeoutMs: 20_000 });
    // B learns of the UI's declaration at its next poll of the control plane's view.
    await waitFor(async () => (await tcpCall(TO_ORDERS, 'ready?')) === 'ready?' || undefined, { what: 'B to know the UI service', timeoutMs: 10_000, intervalMs: 300 });
  });

  after(async () => {
    if (process.env.MESH_DEBUG) console.log(`A:\n${agentA?.stdout}\n${agentA?.stderr}\nB:\n${agentB?.stdout}\n${agentB?.stderr}`);
    await cleanupAll();
    for (const bridge of bridges) await bridge.close();
    await hosts?.cleanup();
    await server?.stop();
  });

  test('an allowed TCP call goes through, recorded as flow.open and flow.close with both identities and bytes', async () => {
    const text = 'ping over the mesh';
    assert.equal(await tcpCall(TO_ORDERS, text), text);
    const closed = await waitForAudit(server, ['--type', 'flow.close'], (e) => e.socket === ORDERS && e.details.bytesIn === text.length, 'the flow\'s flow.close');
    assert.equal(closed.details.bytesOut, text.length);
    assert.equal(closed.actor, UI);
    const opened = (await auditEvents(server, ['--type', 'flow.open'])).find((e) => e.connectionId === closed.connectionId)!;
    assert.ok(opened, 'its flow.open');
    assert.equal(opened.actor, UI);
    assert.equal(opened.rule, 'shop/orders-callers#ui-calls-orders');
    const details = opened.details as { caller: { spiffeId: string; labels: Record<string, string> }; callee: { spiffeId: string }; agent: string };
    assert.equal(details.caller.spiffeId, UI);
    assert.deepEqual(details.caller.labels, { app: 'ui' });
    assert.equal(details.callee.spiffeId, ORDERS);
  });

  test('a call no policy allows is refused with the reason, and the service sees no byte', async () => {
    assert.equal(await tcpCall(TO_LEDGER, 'should not arrive'), '');
    const denied = await waitForAudit(server, ['--type', 'access.denied'], (e) => e.socket === `spiffe://${TD}/ns/shop/svc/ledger`, 'the refusal');
    assert.equal(denied.actor, UI);
    assert.match(denied.reason, /no policy applies/);
    assert.equal((await auditEvents(server, ['--type', 'flow.open'])).filter((e) => e.socket.endsWith('/svc/ledger')).length, 0);
  });

  test('a process that is not the declared executable is refused by its own agent, nothing sent on', async () => {
    const curl = await hosts.a.run('curl', ['-sS', '-m', '10', '-w', '\n%{http_code}', `http://127.0.0.1:${TO_API}/public/from-curl`], { timeoutMs: 20_000 });
    const cut = curl.stdout.lastIndexOf('\n');
    const [body, status] = [curl.stdout.slice(0, cut), curl.stdout.slice(cut + 1)];
    assert.equal(status, '403', curl.stderr);
    assert.match(JSON.parse(body!).detail, /^process \/usr\/bin\/curl \(uid \d+\) is not a declared service/);
    const refused = await waitForAudit(server, ['--type', 'access.denied'], (e) => /curl/.test(e.reason), 'the refusal of curl');
    assert.match(refused.reason, /is not a declared service/);
    const reachedB = (await auditEvents(server, ['--type', 'http.request'])).filter((e) => e.details.path === '/public/from-curl');
    assert.deepEqual(reachedB, [], 'nothing was sent to the destination');
  });

  test('per request: GET /public allowed with the caller\'s identity at the callee, POST refused with the reason', async () => {
    const allowed = await httpCall('GET', '/public/hello');
    assert.equal(allowed.status, 200);
    const seen = allowed.json();
    assert.equal(seen.path, '/public/hello');
    assert.equal(seen.headers['x-postern-service'], UI);
    assert.equal(seen.headers['x-auth-email'], undefined, 'a client-sent identity header is stripped');
    const refused = await httpCall('POST', '/public/hello');
    assert.equal(refused.status, 403);
    assert.match(refused.json().detail ?? '', /no rule allows|not one of GET/);
    await waitForAudit(server, ['--type', 'http.request'], (e) => e.socket === `spiffe://${TD}/ns/shop/svc/api` && e.decision === 'deny' && e.details.method === 'POST', 'the refused request in the audit');
  });

  test('user and service in one decision: the UI on behalf of alice may read /alice, on behalf of bob or of nobody it may not', async () => {
    const asAlice = await httpCall('GET', '/alice/orders', assertions.get(ALICE));
    assert.equal(asAlice.status, 200, JSON.stringify(asAlice.json()));
    assert.equal(asAlice.json().headers['x-auth-email'], ALICE, 'the callee gets the person as a socket upstream does');
    assert.equal(asAlice.json().headers['x-postern-service'], UI);
    const asBob = await httpCall('GET', '/alice/orders', assertions.get(BOB));
    assert.equal(asBob.status, 403);
    assert.match(asBob.json().detail ?? '', /ui-for-alice: bob@corp\.example \(groups staff\) is not email alice@corp\.example/);
    const alone = await httpCall('GET', '/alice/orders');
    assert.equal(alone.status, 403);
    assert.match(alone.json().detail ?? '', /acts for no signed-in user/);
  });

  test('an open connection lives through the rotation of both services\' SVIDs', async () => {
    const rotations = (agent: Managed, id: string) => agent.stdout.split('\n').filter((line) => line.startsWith(`service identity ${id} `)).length;
    const [uiBefore, ordersBefore] = [rotations(agentA, UI), rotations(agentB, ORDERS)];
    // 8 s certificates are renewed at half life: a 9 s connection spans at least one renewal on each side.
    const run = await onA(LONG_CALL, [TO_ORDERS, 9]);
    assert.match(run.stdout, /^echoed (\d+) of \1$/m, run.stdout);
    assert.ok(rotations(agentA, UI) > uiBefore, 'the UI\'s SVID was renewed meanwhile');
    assert.ok(rotations(agentB, ORDERS) > ordersBefore, 'the orders SVID was renewed meanwhile');
  });

  test('a policy change cuts an open flow it no longer allows', async () => {
    const flowsToOrders = async () => (await auditEvents(server, ['--type', 'flow.open'])).filter((e) => e.socket === ORDERS).length;
    const before = await flowsToOrders();
    const long = hosts.a.spawn('long call', process.execPath, ['-e', LONG_CALL, String(TO_ORDERS), '8']);
    await waitFor(async () => (await flowsToOrders()) > before || undefined, { what: 'the long flow open', timeoutMs: 10_000, intervalMs: 250 });
    await applyPolicy('orders', ['name: orders-callers', 'namespace: shop', 'services: [orders]', 'rules:',
      '  - name: only-batch', '    effect: allow', '    who: { service: { app: batch } }', '    what: { tls: {} }']);
    try {
      const [, line] = (await long.waitForOutput(/(closed after \d+ of \d+)/, { timeoutMs: 15_000 }))!;
      assert.ok(line);
      const closed = await waitForAudit(server, ['--type', 'flow.close'], (e) => e.socket === ORDERS && /no rule allows|denied/.test(e.reason), 'the flow cut by the change');
      assert.equal(closed.actor, UI);
    } finally {
      await applyPolicy('orders', ['name: orders-callers', 'namespace: shop', 'services: [orders]', 'rules:',
        '  - name: ui-calls-orders', '    effect: allow', '    who: { service: { app: ui } }', '    what: { tls: {} }']);
    }
  });

  test('revoking the calling agent cuts its open flow and refuses new calls', async () => {
    await waitFor(async () => (await tcpCall(TO_ORDERS, 'again')) === 'again' || undefined, { what: 'orders reachable again after the policy is back', timeoutMs: 10_000, intervalMs: 500 });
    const flowsToOrders = async () => (await auditEvents(server, ['--type', 'flow.open'])).filter((e) => e.socket === ORDERS).length;
    const before = await flowsToOrders();
    const long = hosts.a.spawn('long call before revocation', process.execPath, ['-e', LONG_CALL, String(TO_ORDERS), '8']);
    await waitFor(async () => (await flowsToOrders()) > before || undefined, { what: 'the long flow open', timeoutMs: 10_000, intervalMs: 250 });
    const revokedAt = Date.now();
    await cli(['agent', 'revoke', agentAId]);
    const [, line] = (await long.waitForOutput(/(closed after \d+ of \d+)/, { timeoutMs: 10_000 }))!;
    const cutAfterMs = Date.now() - revokedAt;
    console.log(`# revoked agent's flow cut ${cutAfterMs} ms after the revocation (${line})`);
    const cut = await waitForAudit(server, ['--type', 'flow.close'], (e) => e.actor === UI && /revoked/.test(e.reason), 'flow.close naming the revocation');
    assert.match(cut.reason, new RegExp(agentAId));
  });
});
