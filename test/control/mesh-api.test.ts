// The agents' mesh API on a real server: the view an agent polls (policies, declared services
// with labels, revoked agents, JWT-SVID and assertion keys) with a strong ETag and 304s, a new
// version after `policy apply` and after `agent revoke`, the events agents report (accepted and
// stamped, refused by type and by size), every client that is not an agent refused; and, wired
// by the same runtime, the authorize endpoint admitting a service by its JWT-SVID until its
// agent is revoked.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { ifNoneMatchHits } from '../../src/control/mesh-api.js';
import type { AgentIdentity } from '../../src/agent/index.js';
import type { MeshViewWire, TrustBundle } from '../../src/api-client/index.js';
import type { AuditPage } from '../../src/control/audit-types.js';
import { attestAgent, issueJwtSvid, issueSvid, mtlsFetch } from '../helpers/agents.js';
import type { TestSvid } from '../helpers/agents.js';
import { api, httpsFetch } from '../helpers/https.js';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { waitFor } from '../helpers/util.js';

const TD = 'mesh.test';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

test('ifNoneMatchHits: the listed tags, weak or strong, or *', () => {
  assert.equal(ifNoneMatchHits(undefined, '"a"'), false);
  assert.equal(ifNoneMatchHits('"a"', '"a"'), true);
  assert.equal(ifNoneMatchHits('"b", W/"a"', '"a"'), true);
  assert.equal(ifNoneMatchHits('*', '"a"'), true);
  assert.equal(ifNoneMatchHits('"ab"', '"a"'), false);
  assert.equal(ifNoneMatchHits(['"x"', '"a"'], '"a"'), true);
});

describe('the mesh API', () => {
  let server: ServerHandle;
  let agent: AgentIdentity;
  let orders: TestSvid;
  let etag: string;

  const view = (headers: Record<string, string> = {}) => mtlsFetch(server, agent, '/api/v1/agents/mesh', { headers });
  const applyPolicy = async (document: object) => {
    const res = await api(server, '/api/v1/policies', { method: 'PUT', body: { document } });
    assert.equal(res.status, 200, res.text);
  };

  before(async () => {
    server = await startServer({ extraArgs: ['--agent-trust-domain', TD, '--trusted-proxies', '127.0.0.1'] });
    agent = await attestAgent(server, { namespace: 'shop' });
    orders = await issueSvid(server, agent, TD, { namespace: 'shop', name: 'orders', labels: { app: 'orders', env: 'prod' } });
    await applyPolicy({ name: 'ui-to-orders', namespace: 'shop', rules: [{ effect: 'allow', who: { service: { app: 'ui' } } }] });
  });
  after(async () => {
    await server?.stop();
    await cleanupAll();
  });

  test('the view: policies, declared services and labels, revocations, JWT-SVID and assertion keys, under a strong ETag', async () => {
    const res = await view();
    assert.equal(res.status, 200, res.text);
    const body = res.json<MeshViewWire>();
    etag = String(res.headers.etag);
    assert.equal(etag, `"${body.version}"`, 'a strong tag: the content version');
    assert.equal(body.trustDomain, TD);
    const bundle = (await api(server, '/api/v1/trust-bundle', { token: null })).json<TrustBundle>();
    assert.deepEqual(body.x509, bundle.x509);
    assert.deepEqual(body.jwks, bundle.jwks, 'the JWT-SVID keys of the trust bundle');
    assert.deepEqual(body.policies.map((p) => [p.document.name, p.document.namespace, p.version]), [['ui-to-orders', 'shop', 1]]);
    assert.deepEqual(body.services, [{ spiffeId: orders.spiffeId, agentId: agent.agentId, labels: { app: 'orders', env: 'prod' } }]);
    assert.deepEqual(body.revokedAgents, []);
    const published = (await api(server, '/.well-known/jwks.json', { token: null })).json<{ keys: unknown[] }>();
    assert.deepEqual(body.assertion, { issuer: server.url, jwks: published });
  });

  test('service SVIDs carry both clientAuth and serverAuth: the mesh presents them at either end', () => {
    assert.deepEqual(new X509Certificate(orders.certPem).keyUsage, [CLIENT_AUTH, SERVER_AUTH]);
  });

  test('an unchanged view is a 304; `policy apply`, `agent revoke` and a new service give a new version', async () => {
    const same = await view({ 'if-none-match': etag });
    assert.equal(same.status, 304);
    assert.equal(same.text, '');
    assert.equal(same.headers.etag, etag);

    await applyPolicy({ name: 'no-debug', namespace: 'shop', rules: [{ effect: 'deny', what: { http: { paths: ['/debug/*'] } } }] });
    const changed = await view({ 'if-none-match': etag });
    assert.equal(changed.status, 200, 'the apply waits until this node caught up');
    const afterApply = changed.json<MeshViewWire>();
    assert.deepEqual(afterApply.policies.map((p) => p.document.name), ['no-debug', 'ui-to-orders']);
    assert.notEqual(changed.headers.etag, etag);
    etag = String(changed.headers.etag);

    const other = await attestAgent(server, { namespace: 'shop' });
    const revoke = await api(server, `/api/v1/agents/${other.agentId}`, { method: 'DELETE' });
    assert.equal(revoke.status, 204, revoke.text);
    const revoked = await waitFor(async () => {
      const res = await view({ 'if-none-match': etag });
      return res.status === 200 && res;
    }, { timeoutMs: 2_000, intervalMs: 50, what: 'a view with the revocation' });
    assert.deepEqual(revoked.json<MeshViewWire>().revokedAgents, [other.agentId]);
    assert.ok(revoked.json<MeshViewWire>().revision > afterApply.revision);
    etag = String(revoked.headers.etag);

    // A new declaration is a change too (the same one again, at every SVID renewal, is not).
    await issueSvid(server, agent, TD, { namespace: 'shop', name: 'payments', labels: { app: 'payments' } });
    const declared = await waitFor(async () => {
      const res = await view({ 'if-none-match': etag });
      return res.status === 200 && res;
    }, { timeoutMs: 2_000, intervalMs: 50, what: 'a view with the new service' });
    assert.deepEqual(declared.json<MeshViewWire>().services.map((s) => s.spiffeId), [orders.spiffeId, `spiffe://${TD}/ns/shop/svc/payments`]);
    etag = String(declared.headers.etag);
    await issueSvid(server, agent, TD, { namespace: 'shop', name: 'payments', labels: { app: 'payments' } });
    assert.equal((await view({ 'if-none-match': etag })).status, 304, 'a renewal declares nothing new');
  });

  test('events of the allowed types are accepted and stamped with the calling agent', async () => {
    const flow = { actor: 'spiffe://mesh.test/ns/shop/svc/ui', socket: orders.spiffeId, decision: 'allow' as const };
    const res = await mtlsFetch(server, agent, '/api/v1/agents/events', { method: 'POST', body: { events: [
      { ...flow, type: 'flow.open', details: { agent: 'agt_forged', caller: 'ui' } },
      { ...flow, type: 'flow.close', reason: 'peer closed', details: { bytesIn: 10, bytesOut: 20, durationMs: 5 } },
    ] } });
    assert.equal(res.status, 202, res.text);
    assert.deepEqual(res.json(), { accepted: 2 });
    const found = await waitFor(async () => {
      const page = (await api(server, '/api/v1/audit?q=peer&type=flow.close')).json<AuditPage>();
      return page.events.find((e) => e.socket === orders.spiffeId);
    }, { timeoutMs: 5_000, what: 'the flow.close event' });
    assert.deepEqual(found.details, { bytesIn: 10, bytesOut: 20, durationMs: 5, agent: agent.agentId });
    const open = (await api(server, '/api/v1/audit?type=flow.open')).json<AuditPage>().events.find((e) => e.socket === orders.spiffeId);
    assert.equal(open?.details.agent, agent.agentId, 'the control plane says who reported it, whatever the body said');
  });

  test('events are refused by type and by size', async () => {
    const post = (events: unknown[]) => mtlsFetch(server, agent, '/api/v1/agents/events', { method: 'POST', body: { events } });
    const forged = await post([{ type: 'admin.change', reason: 'an agent may not write this' }]);
    assert.equal(forged.status, 400, forged.text);
    assert.match(forged.text, /events\[0\]\.type/);
    const tooMany = await post(Array.from({ length: 501 }, () => ({ type: 'flow.open' })));
    assert.equal(tooMany.status, 400);
    assert.match(tooMany.text, /500/);
    assert.equal((await post([])).status, 400);
    const longReason = await post([{ type: 'access.denied', reason: 'x'.repeat(2001) }]);
    assert.equal(longReason.status, 400);
    assert.equal((await post(Array.from({ length: 500 }, () => ({ type: 'access.would_deny' })))).status, 202, 'exactly 500 is fine');
  });

  test('a client that is not an agent is refused', async () => {
    const paths = ['/api/v1/agents/mesh', '/api/v1/agents/events'];
    const body = { events: [{ type: 'flow.open' }] };
    for (const path of paths) {
      const init = path.endsWith('events') ? { method: 'POST', body } : {};
      const none = await mtlsFetch(server, undefined, path, init);
      assert.equal(none.status, 401, none.text);
      assert.match(none.text, /agent certificate is required/);
      const admin = await api(server, path, { ...init });
      assert.equal(admin.status, 401, 'an admin token is not an agent');
      const svid = await mtlsFetch(server, orders, path, init);
      assert.equal(svid.status, 401, 'a service SVID is not an agent identity');
      assert.match(svid.text, /not an agent identity/);
    }
    const gone = await attestAgent(server, { namespace: 'shop' });
    assert.equal((await api(server, `/api/v1/agents/${gone.agentId}`, { method: 'DELETE' })).status, 204);
    const refused = await mtlsFetch(server, gone, '/api/v1/agents/mesh');
    assert.equal(refused.status, 401);
    assert.match(refused.text, /was revoked/);
  });

  test('the authorize endpoint admits a service by its JWT-SVID for the socket, and refuses it within 1 s of its agent\'s revocation', async () => {
    assert.equal((await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'api', type: 'http', cloudauth: true } })).status, 201);
    await applyPolicy({ name: 'ui-reads-api', sockets: ['api'], rules: [{ effect: 'allow', who: { service: { app: 'ui' } }, what: { http: { methods: ['GET'] } } }] });
    const uiAgent = await attestAgent(server, { namespace: 'shop' });
    await issueSvid(server, uiAgent, TD, { namespace: 'shop', name: 'ui', labels: { app: 'ui' } });
    const token = await issueJwtSvid(server, uiAgent, { namespace: 'shop', name: 'ui' }, `https://api.localhost:${server.port}`);
    const ask = (method = 'GET') => httpsFetch({ port: server.port, ca: server.caPem, path: '/_postern/authz/api', headers: { 'x-original-uri': '/orders', 'x-original-method': method, authorization: `Bearer ${token}` } });
    const allowed = await ask();
    assert.equal(allowed.status, 200, allowed.text);
    assert.equal(allowed.headers['x-postern-rule'], 'ui-reads-api#1');
    assert.equal((await ask('DELETE')).status, 403);

    assert.equal((await api(server, `/api/v1/agents/${uiAgent.agentId}`, { method: 'DELETE' })).status, 204);
    const revokedAt = Date.now();
    const refused = await waitFor(async () => {
      const res = await ask();
      return res.status === 401 && res;
    }, { timeoutMs: 1_000, intervalMs: 20, what: 'the revoked agent\'s service refused' });
    assert.ok(Date.now() - revokedAt <= 1_000);
    assert.match(refused.text, /is revoked/);
  });
});
