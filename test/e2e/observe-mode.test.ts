// E2E: observe mode → `policy suggest` → apply → enforce, with a real server, connector and
// HTTP socket. The socket's own allow-list admits only ops@, so what people beyond that may do is
// decided by policies. A policy in observe mode whose deny rule covers /admin lets those requests
// through and records `access.would_deny` with the rule; the suggestion learned from the traffic,
// applied, lets the same requests through and refuses a new path; leaving observe mode makes
// the policy's denials raise `access.alarm`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { auditEvents, cleanupAll, startConnector, startServer, waitForAudit, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { SignInBrowser } from '../helpers/browser.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { tempDir } from '../helpers/util.js';

const PASSWORD = 'correct horse battery staple';
const PEOPLE = [['ana@corp.example', 'eng'], ['bob@corp.example', 'eng'], ['ops@corp.example', 'ops']] as const;

describe('observe mode, policy suggest, enforce', () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let dir: string;
  let appUrl: string;
  let design: string;
  const browsers = new Map<string, SignInBrowser>();

  const cli = async (args: string[]) => {
    const result = await server.cli(args);
    assert.equal(result.code, 0, `postern ${args.join(' ')}: ${result.stderr}`);
    return result;
  };
  const get = async (email: string, path: string) => (await browsers.get(email)!.request(`${appUrl}${path}`)).status;

  before(async () => {
    dir = (await tempDir()).path;
    upstream = await startUpstream();
    server = await startServer();
    appUrl = `https://app.localhost:${server.port}`;
    for (const [email, group] of PEOPLE) assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email, password: PASSWORD, groups: [group] } })).status, 201);
    const created = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'app', type: 'http', cloudauth: true, allowed_email_addresses: ['ops@corp.example'], tags: { namespace: 'corp' } } });
    assert.equal(created.status, 201, created.text);
    const token = (await cli(['connector', 'token', 'create', '--name', 'observe', '--socket', 'app'])).stdout.trim();
    const config = await writeConnectorConfig(dir, 'c.yaml', { server: server.url, token, sockets: [{ name: 'app', type: 'http', upstream: upstream.url }] });
    await startConnector(['connector', 'start', '--config', config], server.env);
    // Observing from the start: signing in lands on GET /, which only the design policy lets ana and bob have.
    design = join(dir, 'design.yaml');
    await writeFile(design, [
      'name: design', 'namespace: corp', 'sockets: [app]', 'mode: observe', 'rules:',
      '  - name: eng-api', '    effect: allow', '    who: { group: [eng] }', '    what: { http: { methods: [GET] } }',
      '  - name: no-admin', '    effect: deny', '    what: { http: { paths: ["/admin/*"] } }', '',
    ].join('\n'));
    await cli(['policy', 'apply', '-f', design]);
    for (const [email] of PEOPLE) {
      const browser = new SignInBrowser(server, PASSWORD);
      assert.equal((await browser.signIn(`${appUrl}/`, email)).status, 200);
      browsers.set(email, browser);
    }
  });

  after(async () => {
    await cleanupAll();
    await upstream?.close();
  });

  test('observe: would-be denials pass and are recorded with rule and reason; suggest → apply → the same flows pass, a new path is denied; enforce raises alarms', async () => {

    for (const [email] of PEOPLE.slice(0, 2)) for (const id of [1, 2, 3]) assert.equal(await get(email, `/api/orders/${id}`), 200);
    assert.equal(await get('ana@corp.example', '/admin/users'), 200, 'observe mode lets a would-be denial through');
    const wouldDeny = await waitForAudit(server, ['--type', 'access.would_deny'], (e) => e.actor === 'ana@corp.example', 'the would-deny event');
    assert.deepEqual([wouldDeny.socket, wouldDeny.decision, wouldDeny.rule, wouldDeny.details.path, wouldDeny.details.wouldDeny], ['app', 'allow', 'corp/design#no-admin', '/admin/users', 'rule-denied']);
    assert.match(wouldDeny.reason, /would be denied by rule corp\/design#no-admin/);
    assert.equal((await auditEvents(server, ['--type', 'access.would_deny'])).length, 1, 'the allowed API reads were not would-denials');

    const out = join(dir, 'suggested');
    const suggested = await cli(['policy', 'suggest', '--namespace', 'corp', '--since', '1h', '--out', out]);
    const [, covered, total] = /(\d+) of (\d+) observed flows allowed by the suggestions/.exec(suggested.stderr) ?? [];
    assert.equal(Number(covered), Number(total) - 1, `all but the one the observing rule denies: ${suggested.stderr}`);
    assert.match(suggested.stderr, /ana@corp\.example GET \/admin\/users on app \(1×\): an observing rule denies it: corp\/design#no-admin/);
    const files = await readdir(out);
    assert.deepEqual(files, ['corp-suggested-app.yaml']);
    const shown = await cli(['policy', 'suggest', '--socket', 'app', '--since', '1h']);
    assert.match(shown.stdout, /# covers 6 observed flows \(1 group\)/);
    assert.match(shown.stdout, /group:\s*\n\s*- eng/);
    assert.match(shown.stdout, /- \/api\/orders\/\*/);

    await cli(['policy', 'delete', 'corp/design']);
    await cli(['policy', 'apply', '-f', join(out, files[0]!)]);
    for (const [email] of PEOPLE.slice(0, 2)) for (const id of [1, 2, 3, 4]) assert.equal(await get(email, `/api/orders/${id}`), 200, `${email} keeps reading orders`);
    assert.equal(await get('ana@corp.example', '/billing'), 403, 'a path nobody was seen using is refused');
    assert.equal(await get('ana@corp.example', '/admin/users'), 403, 'what the observing rule would have denied is refused');
    const alarm = await waitForAudit(server, ['--type', 'access.alarm'], (e) => e.details.path === '/billing', 'the alarm of the new denial');
    assert.deepEqual([alarm.actor, alarm.decision, alarm.details.policy], ['ana@corp.example', 'deny', 'corp/suggested-app']);

    // The one command that leaves observe mode: the design policy back, observed, then enforced.
    await cli(['policy', 'apply', '-f', design]);
    assert.equal(await get('bob@corp.example', '/admin/x'), 200);
    const enforce = await cli(['policy', 'enforce', 'corp/design', '--alarm-for', '1h']);
    assert.match(enforce.stdout, /policy corp\/design now in enforce mode \(version \d+\)/);
    assert.equal(await get('bob@corp.example', '/admin/x'), 403);
    const ruleAlarm = await waitForAudit(server, ['--type', 'access.alarm'], (e) => e.details.path === '/admin/x', 'the alarm of the enforced rule');
    assert.deepEqual([ruleAlarm.actor, ruleAlarm.rule, ruleAlarm.details.policy], ['bob@corp.example', 'corp/design#no-admin', 'corp/design']);
    assert.match(ruleAlarm.reason, /refused since corp\/design left observe mode/);
  });
});
