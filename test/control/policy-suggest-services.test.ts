// `policy suggest` for services calling services, on a real server: agents attested and their
// services declared over the real API, an observing design policy, and the receiving agent's
// events built the way the mesh builds them (its decision by the engine on the mesh view, then
// `flowBase` / `observedEvent`) and reported through POST /api/v1/agents/events. Then the CLI
// writes the suggestions, they are applied, and the engine on the new mesh view allows the same
// flows and refuses a new caller, what the observing rules denied, and a new path.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { flowBase, observedEvent, serviceContext } from '../../src/agent/mesh-core.js';
import type { MeshService } from '../../src/agent/mesh-core.js';
import { loadMeshView } from '../../src/agent/mesh-view.js';
import type { LoadedMeshView } from '../../src/agent/mesh-view.js';
import type { AgentIdentity, VerifiedService } from '../../src/agent/index.js';
import type { AgentEvent } from '../../src/api-client/index.js';
import type { AuditPage } from '../../src/control/audit-types.js';
import { decidingRule, evaluate } from '../../src/policy/index.js';
import type { Action } from '../../src/policy/index.js';
import { attestAgent, issueSvid, mtlsFetch } from '../helpers/agents.js';
import { api } from '../helpers/https.js';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { tempDir, waitFor } from '../helpers/util.js';

const TD = 'suggest.test';
const DESIGN = {
  name: 'design', mode: 'observe',
  rules: [
    { name: 'no-deletes', effect: 'deny', what: { http: { methods: ['DELETE'] } } },
    { name: 'no-legacy-db', effect: 'deny', who: { spiffe: [`spiffe://${TD}/ns/shop/svc/legacy`] }, what: { tls: {} } },
  ],
};

interface Suggested {
  policies: { ref: string; document: { services?: string[]; rules: unknown[] } }[];
  uncovered: { kind: string; socket: string; actor: string; action: string; why: string }[];
  flows: number;
  covered: number;
}

describe('policy suggest: services calling services', () => {
  let server: ServerHandle;
  let shopAgent: AgentIdentity;
  const declared = new Map<string, VerifiedService>();

  const cli = async (args: string[]) => {
    const result = await server.cli(args);
    assert.equal(result.code, 0, `postern ${args.join(' ')}: ${result.stderr}`);
    return result;
  };
  const declare = async (agent: AgentIdentity, namespace: string, name: string, labels: Record<string, string>) => {
    const { spiffeId } = await issueSvid(server, agent, TD, { namespace, name, labels });
    declared.set(name, { spiffeId, namespace, name, agentId: agent.agentId, labels });
  };
  const meshView = async (): Promise<LoadedMeshView> => {
    const res = await mtlsFetch(server, shopAgent, '/api/v1/agents/mesh');
    assert.equal(res.status, 200, res.text);
    return loadMeshView(res.json());
  };
  const destination = (name: string): MeshService => {
    const { spiffeId, namespace, labels } = declared.get(name)!;
    return { spiffeId, namespace, name, labels };
  };
  /** What the mesh decides for `caller` → `to`: the engine on the mesh view, as the receiving agent runs it. */
  const decide = (view: LoadedMeshView, caller: string, to: MeshService, action: Action) =>
    evaluate(serviceContext(to, declared.get(caller)!, { clientIp: '127.0.0.1', at: new Date(), action }), view.policies);

  /** The receiving agent's events for one allowed TCP flow or HTTP request (plus its would-deny in observe mode). */
  const meshEvents = (view: LoadedMeshView, caller: string, to: MeshService, action: Action): AgentEvent[] => {
    const decision = decide(view, caller, to, action);
    assert.equal(decision.effect, 'allow', `observe mode lets ${caller} → ${to.name} through`);
    const http = action.protocol === 'http';
    const base = flowBase(to, shopAgent.agentId, declared.get(caller)!, '127.0.0.1', http ? 'http' : 'tcp');
    const observed = observedEvent(decision, http ? { ...base, details: { ...base.details, method: action.method, path: action.path } } : base, decision.summary);
    const record = { ...base, decision: 'allow' as const, rule: decidingRule(decision), reason: decision.summary };
    const event: AgentEvent = http
      ? { ...record, type: 'http.request', details: { ...base.details, method: action.method, path: action.path, status: 200, durationMs: 1 } }
      : { ...record, type: 'flow.open', connectionId: `flow_${caller}_${to.name}` };
    return observed ? [observed as AgentEvent, event] : [event];
  };

  before(async () => {
    server = await startServer({ extraArgs: ['--agent-trust-domain', TD] });
    shopAgent = await attestAgent(server, { namespace: 'shop' });
    const opsAgent = await attestAgent(server, { namespace: 'ops' });
    await declare(shopAgent, 'shop', 'orders', { app: 'orders', env: 'prod' });
    await declare(shopAgent, 'shop', 'ledger', { app: 'ledger' });
    await declare(shopAgent, 'shop', 'ui', { app: 'ui' });
    await declare(shopAgent, 'shop', 'cron', { env: 'prod' });
    await declare(shopAgent, 'shop', 'legacy', {});
    await declare(shopAgent, 'shop', 'intruder', { app: 'intruder' });
    await declare(opsAgent, 'ops', 'reports', { app: 'reports' });
    const applied = await api(server, '/api/v1/policies', { method: 'PUT', body: { document: DESIGN } });
    assert.equal(applied.status, 200, applied.text);
  });
  after(async () => {
    await server?.stop();
    await cleanupAll();
  });

  test('observe → suggest → apply: the same flows pass, a new caller and what the observing rules denied are refused', async () => {
    const view = await meshView();
    const orders = destination('orders');
    const ledger = destination('ledger');
    const gone: MeshService = { spiffeId: `spiffe://${TD}/ns/shop/svc/gone`, namespace: 'shop', name: 'gone', labels: {} };
    const events = [
      ...[1, 2, 3, 4, 5].flatMap((id) => meshEvents(view, 'ui', orders, { protocol: 'http', method: 'GET', path: `/api/orders/${id}` })),
      ...meshEvents(view, 'cron', orders, { protocol: 'http', method: 'GET', path: '/api/orders/7' }),
      ...meshEvents(view, 'ui', orders, { protocol: 'http', method: 'DELETE', path: '/api/orders/3' }),
      ...[1, 2, 3].flatMap(() => meshEvents(view, 'orders', ledger, { protocol: 'tls' })),
      ...meshEvents(view, 'legacy', ledger, { protocol: 'tls' }),
      ...meshEvents(view, 'ui', gone, { protocol: 'tls' }),
      ...meshEvents(view, 'ui', destination('reports'), { protocol: 'http', method: 'GET', path: '/q1' }),
    ];
    assert.equal(events.filter((e) => e.type === 'access.would_deny' && e.details?.wouldDeny === 'rule-denied').length, 2, 'the DELETE and legacy → ledger are what the observing rules deny');
    const posted = await mtlsFetch(server, shopAgent, '/api/v1/agents/events', { method: 'POST', body: { events } });
    assert.equal(posted.status, 202, posted.text);
    const count = async (type: string) => (await api(server, `/api/v1/audit?type=${type}&limit=100`)).json<AuditPage>().events.length;
    await waitFor(async () => (await count('flow.open')) === 5 && (await count('http.request')) === 8 && (await count('access.would_deny')) === 13, { timeoutMs: 5_000, what: 'the agent\'s events in the audit trail' });

    const dir = (await tempDir()).path;
    const written = await cli(['policy', 'suggest', '--namespace', 'shop', '--since', '1h', '--alarm-for', '0s', '--out', dir]);
    const files = (await readdir(dir)).sort();
    assert.deepEqual(files, ['shop-suggested-svc-ledger.yaml', 'shop-suggested-svc-orders.yaml'], 'ops/reports is outside --namespace shop');
    const ordersYaml = await readFile(join(dir, 'shop-suggested-svc-orders.yaml'), 'utf8');
    assert.match(ordersYaml, /services:\n\s*- orders/);
    assert.match(ordersYaml, /# covers 5 observed flows \(services with app=ui\)/);
    assert.match(ordersYaml, new RegExp(`spiffe:\\n\\s*- spiffe://${TD}/ns/shop/svc/cron`));
    assert.doesNotMatch(ordersYaml, /DELETE|alarm_until/, 'the denied DELETE is not learned; --alarm-for 0s writes no alarm window');
    assert.match(await readFile(join(dir, 'shop-suggested-svc-ledger.yaml'), 'utf8'), /tls: \{\}/);
    const [, covered, total] = /(\d+) of (\d+) observed flows allowed by the suggestions/.exec(written.stderr) ?? [];
    assert.deepEqual([Number(covered), Number(total)], [9, 12], written.stderr);
    assert.match(written.stderr, new RegExp(`spiffe://${TD}/ns/shop/svc/ui DELETE /api/orders/3 on service spiffe://${TD}/ns/shop/svc/orders \\(1×\\): an observing rule denies it: design#no-deletes`));
    assert.match(written.stderr, new RegExp(`svc/legacy tcp connect on service spiffe://${TD}/ns/shop/svc/ledger \\(1×\\): an observing rule denies it: design#no-legacy-db`));
    assert.match(written.stderr, new RegExp(`svc/ui tcp connect on service spiffe://${TD}/ns/shop/svc/gone \\(1×\\): the service is no longer declared`));

    await cli(['policy', 'delete', 'design']);
    for (const file of files) await cli(['policy', 'apply', '-f', join(dir, file)]);
    const enforced = await meshView();
    for (const id of [1, 5, 6]) assert.equal(decide(enforced, 'ui', orders, { protocol: 'http', method: 'GET', path: `/api/orders/${id}` }).effect, 'allow', `ui reads order ${id}`);
    assert.equal(decide(enforced, 'cron', orders, { protocol: 'http', method: 'GET', path: '/api/orders/7' }).effect, 'allow');
    assert.equal(decide(enforced, 'orders', ledger, { protocol: 'tls' }).effect, 'allow');
    const intruder = decide(enforced, 'intruder', orders, { protocol: 'http', method: 'GET', path: '/api/orders/1' });
    assert.deepEqual([intruder.effect, intruder.reason], ['deny', 'no-rule-allowed'], 'a caller never seen is refused');
    assert.equal(decide(enforced, 'intruder', ledger, { protocol: 'tls' }).effect, 'deny');
    assert.equal(decide(enforced, 'ui', orders, { protocol: 'http', method: 'DELETE', path: '/api/orders/3' }).effect, 'deny', 'what the observing rule denied stays refused');
    assert.equal(decide(enforced, 'legacy', ledger, { protocol: 'tls' }).effect, 'deny');
    assert.equal(decide(enforced, 'ui', orders, { protocol: 'http', method: 'GET', path: '/admin' }).effect, 'deny', 'a path nobody used is refused');
  });

  test('--service picks services by name, --socket leaves them out, both at once is refused', async () => {
    const suggest = async (body: Record<string, unknown>) => {
      const res = await api(server, '/api/v1/policies/suggest', { method: 'POST', body: { since: '1h', ...body } });
      assert.equal(res.status, 200, res.text);
      return res.json<Suggested>();
    };
    const reports = await suggest({ service: 'reports' });
    assert.deepEqual(reports.policies.map((p) => [p.ref, p.document.services]), [['ops/suggested-svc-reports', ['reports']]]);
    assert.deepEqual([reports.flows, reports.uncovered], [1, []]);
    const everywhere = await suggest({});
    assert.deepEqual(everywhere.policies.map((p) => p.ref), ['ops/suggested-svc-reports', 'shop/suggested-svc-ledger', 'shop/suggested-svc-orders'], 'services in SPIFFE id order');
    const socketOnly = await suggest({ socket: 'orders' });
    assert.deepEqual([socketOnly.policies, socketOnly.flows], [[], 0], 'a socket filter reads no service flow');
    const both = await api(server, '/api/v1/policies/suggest', { method: 'POST', body: { socket: 'a', service: 'b' } });
    assert.equal(both.status, 400);
    assert.match(both.text, /give socket or service, not both/);
  });
});
