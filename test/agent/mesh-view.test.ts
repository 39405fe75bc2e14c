// MeshView and AgentFlowLog against a real server: the first view and decisions with it, a
// policy change within two polls, a revoked agent seen within 1 s, X.509-SVIDs (ours, a second
// URI SAN, an undeclared service, expired), JWT-SVIDs (tampered, wrong audience, expired),
// people's assertions, the last good view kept through failed polls; and the flow log's
// batches, its bounded buffer and its local refusals. The server's own CA and assertion keys
// are read from its data directory, as a second node would, to make what it would never issue.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { AgentFlowLog, MeshView } from '../../src/agent/index.js';
import type { AgentIdentity } from '../../src/agent/index.js';
import { CertificateAuthority, createKeyAndCsr, createKeyCipher, loadOrCreateMasterKey, serviceSpiffeId } from '../../src/ca/index.js';
import { systemClock } from '../../src/clock.js';
import { loadOrCreateSigningKeys } from '../../src/control/server-keys.js';
import type { AuditPage } from '../../src/control/audit-types.js';
import { isPosternError } from '../../src/errors.js';
import type { SigningKeys } from '../../src/identity/index.js';
import type { RequestContext } from '../../src/policy/index.js';
import { openStore, silentLogger } from '../../src/store/index.js';
import type { Store } from '../../src/store/index.js';
import { attestAgent, issueJwtSvid, issueSvid } from '../helpers/agents.js';
import type { TestSvid } from '../helpers/agents.js';
import { api } from '../helpers/https.js';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { freePort, waitFor, withTimeout } from '../helpers/util.js';

const TD = 'view.test';
const POLL_MS = 500;
const HOUR = 3_600_000;

/** A pino logger whose lines the test reads. */
function capturedLogger() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const stream = new Writable({ write(chunk: Buffer, _enc, done) {
    lines.push(JSON.parse(chunk.toString('utf8')) as (typeof lines)[number]);
    done();
  } });
  return { logger: pino({ level: 'info' }, stream), lines, warnings: (msg: RegExp) => lines.filter((l) => l.level === 40 && msg.test(l.msg)) };
}

const isCode = (code: string, pattern?: RegExp) => (err: unknown) => isPosternError(err) && err.code === code && (pattern === undefined || pattern.test(err.message));

describe('MeshView and AgentFlowLog against a real server', () => {
  let server: ServerHandle;
  let secondNode: Store;
  let ca: CertificateAuthority;
  let keys: SigningKeys;
  let agent: AgentIdentity;
  let orders: TestSvid;
  let ui: TestSvid;
  let view: MeshView;
  const views: MeshView[] = [];
  const logs = capturedLogger();

  const applyPolicy = async (document: object) => {
    const res = await api(server, '/api/v1/policies', { method: 'PUT', body: { document } });
    assert.equal(res.status, 200, res.text);
  };
  const startView = async (options: Partial<ConstructorParameters<typeof MeshView>[0]> = {}) => {
    const started = new MeshView({ server: server.url, agentIdentity: () => agent, logger: logs.logger, ...options });
    views.push(started);
    await started.start();
    return started;
  };
  const call = (labels: Record<string, string>): RequestContext => ({
    socket: { kind: 'service', name: 'orders', namespace: 'shop', tags: { app: 'orders' } },
    principal: { service: { id: ui.spiffeId, labels } }, clientIp: '127.0.0.1', at: new Date(), action: { protocol: 'tls' },
  });

  before(async () => {
    server = await startServer({ extraArgs: ['--agent-trust-domain', TD] });
    secondNode = await openStore(join(server.dataDir, 'postern.db'), { logger: silentLogger });
    const cipher = createKeyCipher(await loadOrCreateMasterKey(server.dataDir));
    ca = await CertificateAuthority.loadOrCreate(secondNode.secrets, cipher);
    keys = await loadOrCreateSigningKeys(secondNode.secrets, cipher);
    agent = await attestAgent(server, { namespace: 'shop' });
    orders = await issueSvid(server, agent, TD, { namespace: 'shop', name: 'orders', labels: { app: 'orders' } });
    ui = await issueSvid(server, agent, TD, { namespace: 'shop', name: 'ui', labels: { app: 'ui', env: 'prod' } });
    await applyPolicy({ name: 'ui-calls', namespace: 'shop', rules: [{ effect: 'allow', who: { service: { app: 'ui' } } }] });
    view = await startView();
  });
  after(async () => {
    for (const v of views) v.stop();
    await secondNode?.close();
    await server?.stop();
    await cleanupAll();
  });

  test('start() loads the first view; its policies decide service calls', () => {
    assert.equal(view.trustDomain, TD);
    assert.deepEqual(view.caPems(), [ca.certificatePem]);
    assert.equal(view.decide(call({ app: 'ui' })).effect, 'allow');
    const denied = view.decide(call({ app: 'cart' }));
    assert.deepEqual([denied.effect, denied.reason], ['deny', 'no-rule-allowed']);
  });

  test('start() rejects with a clear error when there is no identity or no control plane', async () => {
    const noIdentity = new MeshView({ server: server.url, agentIdentity: () => undefined, logger: logs.logger });
    await assert.rejects(noIdentity.start(), isCode('certificate_invalid', /cannot load the mesh view from .*no identity yet/));
    const nobody = new MeshView({ server: `https://localhost:${await freePort()}`, agentIdentity: () => agent, logger: logs.logger });
    await assert.rejects(nobody.start(), isCode('store_unavailable', /cannot load the mesh view .*connection refused/));
  });

  test('a policy change reaches the view within two polls, with a change event', async () => {
    const changed = once(view, 'change');
    const applied = Date.now();
    await applyPolicy({ name: 'no-prod-ui', namespace: 'shop', rules: [{ effect: 'deny', who: { service: { env: 'prod' } } }] });
    await withTimeout(changed, 2 * POLL_MS + 500, 'the change event');
    assert.ok(Date.now() - applied <= 2 * POLL_MS + 500);
    const decision = view.decide(call({ app: 'ui', env: 'prod' }));
    assert.equal(decision.effect, 'deny');
    assert.equal(decision.rule?.policy, 'no-prod-ui');
    assert.equal(view.decide(call({ app: 'ui' })).effect, 'allow');
  });

  test('X.509-SVIDs: ours verify with the declared labels; a second URI SAN, an undeclared service, an expired one are refused', async () => {
    assert.deepEqual(view.verifyX509Svid(ui.certPem), { ok: true, service: { spiffeId: ui.spiffeId, namespace: 'shop', name: 'ui', agentId: agent.agentId, labels: { app: 'ui', env: 'prod' } } });
    const sign = async (uris: string[]) => (await ca.signCsr({ csrPem: (await createKeyAndCsr('x')).csrPem, commonName: agent.agentId, uris, lifetimeMs: 60_000, usage: 'mutual' })).certPem;
    const reason = (result: ReturnType<MeshView['verifyX509Svid']>) => (result.ok ? 'accepted' : result.reason);
    assert.match(reason(view.verifyX509Svid(await sign([ui.spiffeId, orders.spiffeId]))), /^not-a-service-identity: 2 URI SANs/);
    assert.match(reason(view.verifyX509Svid(await sign([serviceSpiffeId(TD, 'shop', 'ghost')]))), /^service-not-declared: spiffe:\/\/view\.test\/ns\/shop\/svc\/ghost/);
    assert.match(reason(view.verifyX509Svid(await sign([serviceSpiffeId('other.test', 'shop', 'ui')]))), /^not-a-service-identity/);
    assert.match(reason(view.verifyX509Svid('not a certificate')), /^not-a-service-identity/);
    const late = await startView({ clock: { ...systemClock, now: () => Date.now() + 2 * HOUR } });
    assert.match(reason(late.verifyX509Svid(ui.certPem)), /^expired/);
  });

  test('JWT-SVIDs: verified with their signed labels; tampered, wrong audience, expired are refused', async () => {
    const token = await issueJwtSvid(server, agent, { namespace: 'shop', name: 'ui' }, orders.spiffeId);
    assert.deepEqual(await view.verifyJwtSvid(token, orders.spiffeId), { spiffeId: ui.spiffeId, namespace: 'shop', name: 'ui', agentId: agent.agentId, labels: { app: 'ui', env: 'prod' } });
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as { labels: Record<string, string> };
    const tampered = [header, Buffer.from(JSON.stringify({ ...claims, labels: { app: 'admin' } })).toString('base64url'), signature].join('.');
    await assert.rejects(view.verifyJwtSvid(tampered, orders.spiffeId), isCode('token_invalid', /does not verify/));
    await assert.rejects(view.verifyJwtSvid(token, serviceSpiffeId(TD, 'shop', 'cart')), isCode('token_invalid', /"aud"/));
    const late = await startView({ clock: { ...systemClock, now: () => Date.now() + HOUR } });
    await assert.rejects(late.verifyJwtSvid(token, orders.spiffeId), isCode('token_expired'));
  });

  test('people\'s assertions: verified against the control plane\'s keys and issuer; tampered, another issuer, expired, a JWT-SVID refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const subject = { sessionId: 'ses_1', userId: 'usr_alice', email: 'alice@corp.example', groups: ['staff', 'ui-users'] };
    const assertion = (issuer: string, issuedAt: number) => keys.sign({ issuer, audience: 'https://shop.localhost', subject, issuedAt, expiresAt: issuedAt + 300 });
    assert.deepEqual(await view.verifyUserAssertion(await assertion(server.url, now)), { id: 'usr_alice', email: 'alice@corp.example', groups: ['staff', 'ui-users'] });
    const good = await assertion(server.url, now);
    await assert.rejects(view.verifyUserAssertion(`${good.slice(0, -4)}AAAA`), isCode('token_invalid'));
    await assert.rejects(view.verifyUserAssertion(await assertion('https://evil.example', now)), isCode('token_invalid'));
    await assert.rejects(view.verifyUserAssertion(await assertion(server.url, now - 900)), isCode('token_expired'));
    const svid = await issueJwtSvid(server, agent, { namespace: 'shop', name: 'ui' }, orders.spiffeId);
    await assert.rejects(view.verifyUserAssertion(svid), isCode('token_invalid'), 'JWT-SVIDs are signed with another key');
  });

  test('a revoked agent is seen within 1 s: its X.509-SVID and JWT-SVIDs stop verifying', async () => {
    const other = await attestAgent(server, { namespace: 'shop' });
    const cart = await issueSvid(server, other, TD, { namespace: 'shop', name: 'cart', labels: { app: 'cart' } });
    const token = await issueJwtSvid(server, other, { namespace: 'shop', name: 'cart' }, orders.spiffeId);
    await waitFor(() => view.verifyX509Svid(cart.certPem).ok, { timeoutMs: 2 * POLL_MS + 500, intervalMs: 20, what: 'the cart declaration in the view' });
    assert.equal((await view.verifyJwtSvid(token, orders.spiffeId)).agentId, other.agentId);

    const revoke = await api(server, `/api/v1/agents/${other.agentId}`, { method: 'DELETE' });
    assert.equal(revoke.status, 204, revoke.text);
    const revokedAt = Date.now();
    await waitFor(() => view.isAgentRevoked(other.agentId), { timeoutMs: 1_000, intervalMs: 10, what: 'the revocation in the view' });
    assert.ok(Date.now() - revokedAt <= 1_000);
    const refused = view.verifyX509Svid(cart.certPem);
    assert.match(refused.ok ? 'accepted' : refused.reason, /^agent-revoked/);
    await assert.rejects(view.verifyJwtSvid(token, orders.spiffeId), isCode('token_invalid', /is revoked/));
    assert.equal(view.isAgentRevoked(agent.agentId), false);
  });

  test('failed polls keep the last good view in force, with one warning until they work again', async () => {
    let identity: AgentIdentity | undefined = agent;
    const own = capturedLogger();
    const flaky = new MeshView({ server: server.url, agentIdentity: () => identity, logger: own.logger, pollMs: 50 });
    views.push(flaky);
    await flaky.start();
    const version = flaky.version;
    identity = undefined;
    await waitFor(() => own.warnings(/mesh view poll failed/).length > 0, { timeoutMs: 2_000, intervalMs: 20, what: 'the poll warning' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(own.warnings(/mesh view poll failed/).length, 1, 'one line, not one per poll');
    assert.equal(flaky.version, version);
    assert.equal(flaky.decide(call({ app: 'ui' })).effect, 'allow', 'the last good view decides');
    identity = agent;
    await waitFor(() => own.lines.some((l) => /mesh view poll works again/.test(l.msg)), { timeoutMs: 2_000, intervalMs: 20, what: 'the recovery line' });
  });

  const auditWith = async (word: string) => (await api(server, `/api/v1/audit?q=${word}&limit=1000`)).json<AuditPage>().events;

  test('AgentFlowLog sends batches of at most 500, each event stamped with the agent', async () => {
    const flows = new AgentFlowLog({ server: server.url, agentIdentity: () => agent, logger: logs.logger, flushMs: 50 });
    for (let i = 0; i < 501; i++) flows.record({ type: 'access.denied', actor: ui.spiffeId, socket: orders.spiffeId, decision: 'deny', reason: `batchprobe ${i}` });
    await flows.flush();
    const events = await waitFor(async () => {
      const found = await auditWith('batchprobe');
      return found.length === 501 && found;
    }, { timeoutMs: 5_000, what: '501 events in the audit trail' });
    assert.ok(events.every((e) => e.details.agent === agent.agentId && e.actor === ui.spiffeId));
    flows.record({ type: 'flow.open', actor: ui.spiffeId, socket: orders.spiffeId, reason: 'timerprobe' });
    await waitFor(async () => (await auditWith('timerprobe')).length === 1, { timeoutMs: 5_000, what: 'the timer to flush' });
    await flows.stop();
  });

  test('AgentFlowLog keeps at most maxBuffered while it cannot send, dropping the oldest with one warning', async () => {
    let identity: AgentIdentity | undefined;
    const own = capturedLogger();
    const flows = new AgentFlowLog({ server: server.url, agentIdentity: () => identity, logger: own.logger, maxBuffered: 3, flushMs: 60_000 });
    for (let i = 1; i <= 5; i++) flows.record({ type: 'flow.close', reason: `bufferprobe r${i}` });
    await assert.rejects(flows.flush(), isCode('certificate_invalid'));
    identity = agent;
    await flows.flush();
    const reasons = (await waitFor(async () => {
      const found = await auditWith('bufferprobe');
      return found.length === 3 && found;
    }, { timeoutMs: 5_000, what: 'the kept events' })).map((e) => e.reason);
    assert.deepEqual(reasons, ['bufferprobe r3', 'bufferprobe r4', 'bufferprobe r5']);
    const dropped = own.warnings(/buffer full/);
    assert.equal(dropped.length, 1);
    assert.equal(dropped[0]!.dropped, 2);
    await flows.stop();
  });

  test('AgentFlowLog drops locally an event the control plane would refuse, so it cannot sink its batch', async () => {
    const own = capturedLogger();
    const flows = new AgentFlowLog({ server: server.url, agentIdentity: () => agent, logger: own.logger, flushMs: 60_000 });
    flows.record({ type: 'admin.change', reason: 'refusalprobe forged' });
    flows.record({ type: 'flow.open', reason: 'refusalprobe kept' });
    await flows.stop();
    const found = await waitFor(async () => {
      const events = await auditWith('refusalprobe');
      return events.length > 0 && events;
    }, { timeoutMs: 5_000, what: 'the kept event' });
    assert.deepEqual(found.map((e) => [e.type, e.reason]), [['flow.open', 'refusalprobe kept']]);
    assert.equal(own.warnings(/a mesh event was dropped/).length, 1);
  });
});
