// evaluate: conditions combined, deny beats allow, nothing matching denies, namespaces, tags,
// what an allow grants (session limit, read-only), and the one-line summaries.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluate, explain } from '../../src/policy/evaluate.js';
import type { PolicyDocument, SshChannel } from '../../src/policy/types.js';
import { ann, anonymous, billing, ctx, http, joe, setOf, ssh } from './helpers.js';

const supportAccess: PolicyDocument = {
  name: 'support-access',
  namespace: 'corp',
  sockets: ['grafana', 'prod-ssh'],
  rules: [
    {
      effect: 'allow',
      who: { domain: ['corp.example'], group: ['support'] },
      where: { country_not: ['RU', 'KP'], ip: ['10.0.0.0/8'] },
      when: { weekdays: ['mon', 'tue', 'wed', 'thu', 'fri'], time: '08:00-18:00', tz: 'Europe/Amsterdam' },
      what: { http: { methods: ['GET', 'HEAD'], paths: ['/dashboards/*'] }, ssh: { logins: ['support'], sftp: false, max_session: '2h' } },
    },
    { effect: 'deny', what: { http: { methods: ['POST', 'PUT', 'DELETE'], paths: ['/admin/*'] } } },
  ],
};
const grafana = { socket: 'grafana', namespace: 'corp/support', country: 'NL' } as const;

test('all conditions together: allowed only when every one matches', () => {
  const set = setOf(supportAccess);
  const ok = evaluate(ctx({ ...grafana, action: http('GET', '/dashboards/7') }), set);
  assert.equal(ok.effect, 'allow');
  assert.equal(ok.reason, 'rule-allowed');
  assert.deepEqual(ok.rule, { policy: 'support-access', namespace: 'corp', rule: 'support-access#1', effect: 'allow' });
  assert.equal(ok.summary, 'allowed by rule corp/support-access#1');
  const variants = [
    ctx({ ...grafana, principal: ann, action: http('GET', '/dashboards/7') }),
    ctx({ ...grafana, country: 'RU', action: http('GET', '/dashboards/7') }),
    ctx({ ...grafana, ip: '192.0.2.1', action: http('GET', '/dashboards/7') }),
    ctx({ ...grafana, at: '2025-03-22T10:00:00Z', action: http('GET', '/dashboards/7') }), // Saturday
    ctx({ ...grafana, at: '2025-03-24T18:00:00Z', action: http('GET', '/dashboards/7') }), // 19:00 local
    ctx({ ...grafana, action: http('POST', '/dashboards/7') }),
    ctx({ ...grafana, action: http('GET', '/settings') }),
  ];
  for (const c of variants) {
    const d = evaluate(c, set);
    assert.equal(d.effect, 'deny', JSON.stringify(c));
    assert.equal(d.reason, 'no-rule-allowed');
    assert.equal(d.summary, 'denied: no rule allows this (2 rules checked)');
    assert.equal(d.rule, undefined);
  }
});

test('deny beats allow, whatever the order', () => {
  const allowAll: PolicyDocument = { name: 'a-allow-all', rules: [{ effect: 'allow' }] };
  const noWrites: PolicyDocument = { name: 'z-no-writes', rules: [{ effect: 'deny', name: 'no-writes-from-abroad', where: { country_not: ['NL'] }, what: { http: { methods: ['POST'] } } }] };
  for (const set of [setOf(allowAll, noWrites), setOf(noWrites, allowAll)]) {
    const d = evaluate(ctx({ country: 'US', action: http('POST', '/x') }), set);
    assert.equal(d.effect, 'deny');
    assert.equal(d.reason, 'rule-denied');
    assert.equal(d.summary, 'denied by rule z-no-writes#no-writes-from-abroad');
    assert.equal(d.rule!.rule, 'no-writes-from-abroad');
    assert.equal(evaluate(ctx({ country: 'NL', action: http('POST', '/x') }), set).effect, 'allow');
    assert.equal(evaluate(ctx({ country: 'US', action: http('GET', '/x') }), set).effect, 'allow');
  }
});

test('the first matching rule decides the reported rule', () => {
  const set = setOf({ name: 'p', rules: [{ effect: 'allow', who: { group: ['nobody'] } }, { effect: 'allow', name: 'second' }, { effect: 'allow', name: 'third' }, { effect: 'deny', name: 'd1', who: { email: ['ann@partner.example'] } }, { effect: 'deny', name: 'd2' }] });
  assert.equal(evaluate(ctx({ principal: joe }), set).rule!.rule, 'd2');
  assert.equal(evaluate(ctx({ principal: ann }), set).rule!.rule, 'd1');
  const allowOnly = setOf({ name: 'p', rules: [{ effect: 'allow', who: { group: ['nobody'] } }, { effect: 'allow', name: 'second' }, { effect: 'allow', name: 'third' }] });
  assert.equal(evaluate(ctx(), allowOnly).rule!.rule, 'second');
});

test('no policy for the socket: deny with no-policy', () => {
  const set = setOf({ name: 'other', sockets: ['other'], rules: [{ effect: 'allow' }] });
  const d = evaluate(ctx({ socket: 'web' }), set);
  assert.deepEqual(d, { effect: 'deny', reason: 'no-policy', summary: 'denied: no policy applies to socket web' });
  assert.equal(evaluate(ctx(), setOf()).reason, 'no-policy');
});

test('anonymous requests: user-unauthenticated when signing in could help', () => {
  const set = setOf({ name: 'p', rules: [{ effect: 'allow' }] });
  const d = evaluate(ctx({ principal: anonymous }), set);
  assert.equal(d.reason, 'user-unauthenticated');
  assert.equal(d.summary, 'denied: not signed in (1 rule checked)');
  const denyOnly = setOf({ name: 'p', rules: [{ effect: 'deny', where: { country: ['RU'] } }] });
  assert.equal(evaluate(ctx({ principal: anonymous }), denyOnly).reason, 'no-rule-allowed');
  // a service is authenticated
  assert.equal(evaluate(ctx({ principal: billing }), set).effect, 'allow');
});

test('namespaces: a parent covers its children, siblings do not cover each other', () => {
  const set = setOf(
    { name: 'allow-a', namespace: 'corp/a', rules: [{ effect: 'allow' }] },
    { name: 'socket-in-a', namespace: 'corp/a', sockets: ['b-web'], rules: [{ effect: 'allow', name: 'leaked' }] },
    { name: 'root-deny-ann', rules: [{ effect: 'deny', who: { email: ['ann@partner.example'] } }] },
    { name: 'corp-deny-abroad', namespace: 'corp', rules: [{ effect: 'deny', where: { country: ['KP'] } }] },
  );
  assert.equal(evaluate(ctx({ namespace: 'corp/a', country: 'NL' }), set).effect, 'allow');
  assert.equal(evaluate(ctx({ namespace: 'corp/a/app', country: 'NL' }), set).effect, 'allow');
  // corp/a's policies do not apply in corp/b, even one naming a socket there
  const b = evaluate(ctx({ socket: 'b-web', namespace: 'corp/b', country: 'NL' }), set);
  assert.equal(b.effect, 'deny');
  assert.equal(b.summary, 'denied: no rule allows this (2 rules checked)');
  assert.equal(evaluate(ctx({ namespace: 'corpx', country: 'NL' }), set).summary, 'denied: no rule allows this (1 rule checked)');
  // 'corp' covers 'corp/…', not 'corpx', whether attached by socket, by tag or to the namespace
  const prefixes = setOf(
    { name: 'by-socket', namespace: 'corp', sockets: ['web'], rules: [{ effect: 'allow' }] },
    { name: 'by-tag', namespace: 'corp', tags: { env: 'prod' }, rules: [{ effect: 'allow' }] },
    { name: 'whole', namespace: 'corp', rules: [{ effect: 'allow' }] },
  );
  assert.equal(evaluate(ctx({ namespace: 'corpx', tags: { env: 'prod' } }), prefixes).reason, 'no-policy');
  assert.equal(evaluate(ctx({ namespace: 'corp/x', tags: { env: 'prod' } }), prefixes).summary, 'allowed by rule corp/by-socket#1');
  assert.equal(evaluate(ctx({ socket: 'api', namespace: 'corp/x', tags: { env: 'prod' } }), prefixes).summary, 'allowed by rule corp/by-tag#1');
  // a parent's deny applies below, and the root's everywhere
  const kp = evaluate(ctx({ namespace: 'corp/a/app', country: 'KP' }), set);
  assert.equal(kp.summary, 'denied by rule corp/corp-deny-abroad#1');
  assert.equal(evaluate(ctx({ namespace: 'corp/a', country: 'NL', principal: ann }), set).summary, 'denied by rule root-deny-ann#1');
  // an unknown country fails closed against the parent's deny rule naming countries
  assert.equal(evaluate(ctx({ namespace: 'corp/a' }), set).summary, 'denied by rule corp/corp-deny-abroad#1');
});

test('tags: every pair must match, and a socket\'s changed tags are looked up again', () => {
  const set = setOf(
    { name: 'prod-admins', tags: { env: 'prod', team: 'ops' }, rules: [{ effect: 'allow', who: { group: ['support'] } }] },
    { name: 'staging', tags: { env: 'staging' }, rules: [{ effect: 'allow' }] },
  );
  assert.equal(evaluate(ctx({ tags: { env: 'prod', team: 'ops', tier: '1' } }), set).effect, 'allow');
  assert.equal(evaluate(ctx({ tags: { env: 'prod' } }), set).reason, 'no-policy');
  assert.equal(evaluate(ctx({ tags: { env: 'prod', team: 'ops' }, principal: ann }), set).reason, 'no-rule-allowed');
  assert.equal(evaluate(ctx({ tags: { env: 'staging' }, principal: ann }), set).effect, 'allow');
  // the same socket name with new tags is looked up again, not served from the memo
  assert.equal(evaluate(ctx({ socket: 's', tags: { env: 'staging' }, principal: ann }), set).effect, 'allow');
  assert.equal(evaluate(ctx({ socket: 's', tags: { env: 'prod' }, principal: ann }), set).reason, 'no-policy');
});

test('ssh: the smallest max_session of the allowing rules; channels refused by a flag', () => {
  const set = setOf({ name: 'ssh', sockets: ['box'], rules: [
    { effect: 'allow', what: { ssh: { max_session: '2h' } } },
    { effect: 'allow', what: { ssh: { logins: ['deploy'], max_session: '30m', port_forwarding: false } } },
    { effect: 'allow', what: { ssh: {} } },
  ] });
  assert.equal(evaluate(ctx({ socket: 'box', action: ssh('deploy', 'shell') }), set).maxSessionMs, 30 * 60_000);
  assert.equal(evaluate(ctx({ socket: 'box', action: ssh('root', 'shell') }), set).maxSessionMs, 2 * 3_600_000);
  // the 30m rule refuses port forwarding, so it does not shorten a forwarding session
  assert.equal(evaluate(ctx({ socket: 'box', action: ssh('deploy', 'local_forward') }), set).maxSessionMs, 2 * 3_600_000);
  assert.equal(evaluate(ctx({ socket: 'box', action: http('GET', '/') }), set).reason, 'no-rule-allowed');
  const strict = setOf({ name: 'ssh', sockets: ['box'], rules: [{ effect: 'allow', what: { ssh: { sftp: false } } }] });
  assert.equal(evaluate(ctx({ socket: 'box', action: ssh('root', 'sftp') }), strict).effect, 'deny');
  assert.equal(evaluate(ctx({ socket: 'box', action: ssh('root', 'exec') }), strict).maxSessionMs, undefined);
});

test('ssh channels: allowed only when one allow rule matches login, channel and command together', () => {
  const set = setOf({ name: 'ssh', sockets: ['box'], rules: [
    { effect: 'allow', name: 'ops-status', who: { group: ['support'] }, what: { ssh: { logins: ['ops'], exec: ['systemctl status *'], port_forwarding: false, max_session: '1h' } } },
    { effect: 'allow', name: 'deploy-forward', what: { ssh: { logins: ['deploy'], shell: false, exec: false, port_forwarding: { remote: false } } } },
  ] }, { name: 'guard', rules: [{ effect: 'deny', name: 'no-root', what: { ssh: { logins: ['root'] } } }] });
  const decide = (login: string, channel: SshChannel, command?: string) => evaluate(ctx({ socket: 'box', action: ssh(login, channel, command) }), set);
  assert.equal(decide('ops', 'exec', 'systemctl status nginx').rule!.rule, 'ops-status');
  assert.equal(decide('ops', 'exec', 'systemctl status nginx').maxSessionMs, 3_600_000);
  assert.equal(decide('ops', 'exec', 'reboot').effect, 'deny');
  assert.equal(decide('ops', 'local_forward').effect, 'deny');
  // deploy-forward allows local forwarding, but not for ops: the login and the channel must be allowed by the same rule
  assert.equal(decide('deploy', 'local_forward').rule!.rule, 'deploy-forward');
  assert.equal(decide('deploy', 'remote_forward').effect, 'deny');
  assert.equal(decide('deploy', 'exec', 'systemctl status nginx').effect, 'deny');
  assert.equal(decide('deploy', 'sftp').effect, 'allow');
  assert.equal(decide('root', 'sftp').reason, 'rule-denied');
  const e = explain(ctx({ socket: 'box', action: ssh('ops', 'exec', 'reboot') }), set);
  assert.equal(e.summary, 'denied: no rule allows this (3 rules checked)');
  assert.deepEqual(e.rules.map((r) => [r.rule, r.outcome, r.detail]), [
    ['no-root', 'what-ssh-login', 'login ops is not one of root'],
    ['ops-status', 'what-ssh-command', 'command "reboot" matches none of exec: "systemctl status *"'],
    ['deploy-forward', 'what-ssh-login', 'login ops is not one of deploy'],
  ]);
});

test('ssh: max_session is the smallest of the allow rules that match, whatever channel flags they carry', () => {
  const set = setOf({ name: 'ssh', sockets: ['box'], rules: [
    { effect: 'allow', what: { ssh: { max_session: '8h' } } },
    { effect: 'allow', what: { ssh: { exec: ['uptime'], x11: false, max_session: '10m' } } },
    { effect: 'allow', what: { ssh: { agent_forwarding: false, x11: false, max_session: '1h' } } },
  ] });
  const decide = (action: ReturnType<typeof ssh>) => evaluate(ctx({ socket: 'box', action }), set).maxSessionMs;
  assert.equal(decide(ssh('ops')), 10 * 60_000, 'the session itself: every rule matches');
  assert.equal(decide(ssh('ops', 'exec', 'uptime')), 10 * 60_000);
  assert.equal(decide(ssh('ops', 'exec', 'id')), 3_600_000, 'the 10m rule does not allow this command');
  assert.equal(decide(ssh('ops', 'agent_forwarding')), 10 * 60_000, 'exec globs do not concern other channels');
  assert.equal(decide(ssh('ops', 'x11')), 8 * 3_600_000, 'only the 8h rule allows X11 forwarding');
});

test('database: read-only when any allowing rule says so; writes need a rule that allows them', () => {
  const set = setOf({ name: 'db', rules: [
    { effect: 'allow', who: { group: ['staff'] }, what: { database: { read_only: true } } },
    { effect: 'allow', who: { group: ['support'] }, what: { database: { names: ['tickets'] } } },
  ] });
  const read = evaluate(ctx({ action: { protocol: 'database', database: 'app' } }), set);
  assert.equal(read.effect, 'allow');
  assert.equal(read.readOnly, true);
  assert.equal(evaluate(ctx({ action: { protocol: 'database', database: 'app', write: true } }), set).effect, 'deny');
  const tickets = evaluate(ctx({ action: { protocol: 'database', database: 'tickets', write: true } }), set);
  assert.equal(tickets.effect, 'allow');
  assert.equal(tickets.readOnly, undefined);
  // a read on tickets matches both rules: the read-only one, though later, makes it read-only
  const supportFirst = setOf({ name: 'db', rules: [
    { effect: 'allow', who: { group: ['support'] }, what: { database: { names: ['tickets'] } } },
    { effect: 'allow', who: { group: ['staff'] }, what: { database: { read_only: true } } },
  ] });
  assert.equal(evaluate(ctx({ action: { protocol: 'database', database: 'tickets' } }), supportFirst).readOnly, true);
  assert.equal(evaluate(ctx({ action: { protocol: 'database', database: 'tickets' } }), supportFirst).rule!.rule, 'db#1');
});

test('tls: a rule without what covers every protocol; one with only http does not cover tls', () => {
  const set = setOf({ name: 'p', rules: [{ effect: 'allow', what: { http: {} } }] });
  assert.equal(evaluate(ctx({ action: { protocol: 'tls' } }), set).effect, 'deny');
  assert.equal(evaluate(ctx({ action: { protocol: 'tls' } }), setOf({ name: 'p', rules: [{ effect: 'allow' }] })).effect, 'allow');
  assert.equal(evaluate(ctx({ action: { protocol: 'tls' } }), setOf({ name: 'p', rules: [{ effect: 'allow', what: { tls: { connect: false } } }] })).effect, 'deny');
});

test('a document that does not compile throws config_invalid naming the policy and field', () => {
  assert.throws(() => setOf({ name: 'bad', namespace: 'corp', rules: [{ effect: 'allow' }, { effect: 'allow', where: { ip: ['300.1.1.1'] } }] }),
    (err: Error & { code?: string }) => err.code === 'config_invalid' && err.message === 'policy corp/bad: rules[1].where.ip[0]: "300.1.1.1" is not an IP address or CIDR');
});

test('database roles: the asked role when the rule lists it, else its first; an unlisted or unmapped role is refused', () => {
  const set = setOf({ name: 'db', rules: [
    { effect: 'allow', name: 'analysts', who: { group: ['support'] }, what: { database: { names: ['orders'], users: ['readonly', 'reporting'], read_only: true } } },
    { effect: 'allow', name: 'plain', who: { email: ['ann@partner.example'] }, what: { database: {} } },
  ] });
  const db = (role?: string) => ({ protocol: 'database' as const, database: 'orders', ...(role === undefined ? {} : { role }) });
  assert.equal(evaluate(ctx({ action: db() }), set).databaseRole, 'readonly');
  assert.equal(evaluate(ctx({ action: db('reporting') }), set).databaseRole, 'reporting');
  const admin = explain(ctx({ action: db('admin') }), set);
  assert.equal(admin.effect, 'deny');
  assert.equal(admin.rules.find((r) => r.rule === 'analysts')!.outcome, 'what-database-user');
  assert.match(admin.rules.find((r) => r.rule === 'analysts')!.detail, /role admin is not one of readonly, reporting/);
  // a rule without users maps no role: the connector's default login, and asking for one is refused
  const plain = evaluate(ctx({ principal: ann, action: db() }), set);
  assert.equal(plain.effect, 'allow');
  assert.equal(plain.databaseRole, undefined);
  assert.equal(evaluate(ctx({ principal: ann, action: db('readonly') }), set).effect, 'deny');
});

test('services: a policy naming services applies to them and not to a socket of the same name; one naming sockets never to a service', () => {
  const set = setOf(
    { name: 'mesh', namespace: 'shop', services: ['orders'], rules: [{ effect: 'allow', who: { service: { app: 'ui' } }, what: { tls: {} } }] },
    { name: 'people', namespace: 'shop', sockets: ['orders'], rules: [{ effect: 'allow', who: { group: ['support'] } }] },
  );
  const ui = { service: { id: 'spiffe://td/ns/shop/svc/ui', labels: { app: 'ui' } } };
  const service = (principal: typeof ui | typeof joe) => ({ socket: { kind: 'service' as const, name: 'orders', namespace: 'shop', tags: {} }, principal, clientIp: '10.0.0.1', at: new Date('2025-03-24T10:00:00Z'), action: { protocol: 'tls' as const } });
  assert.equal(evaluate(service(ui), set).effect, 'allow');
  assert.equal(evaluate(service(joe), set).reason, 'no-rule-allowed');
  assert.equal(evaluate(ctx({ socket: 'orders', namespace: 'shop', principal: ui, action: { protocol: 'tls' } }), set).effect, 'deny');
  assert.equal(evaluate(ctx({ socket: 'orders', namespace: 'shop', action: { protocol: 'tls' } }), set).effect, 'allow');
});

test('on_behalf_of: a service and the person it acts for in one decision', () => {
  const set = setOf({ name: 'api', services: ['api'], rules: [
    { effect: 'allow', who: { service: { app: 'ui' }, on_behalf_of: { email: ['joe@corp.example'] } }, what: { http: { methods: ['GET'], paths: ['/joe/*'] } } },
  ] });
  const ui = { id: 'spiffe://td/ns/default/svc/ui', labels: { app: 'ui' } };
  const request = (principal: object, path = '/joe/orders') => ({ socket: { kind: 'service' as const, name: 'api', namespace: '', tags: {} }, principal, clientIp: '10.0.0.1', at: new Date('2025-03-24T10:00:00Z'), action: http('GET', path) });
  assert.equal(evaluate(request({ service: ui, user: joe.user }), set).effect, 'allow');
  const asAnn = explain(request({ service: ui, user: ann.user }), set);
  assert.equal(asAnn.effect, 'deny');
  assert.equal(asAnn.rules[0]!.outcome, 'who-on-behalf-of');
  assert.match(asAnn.rules[0]!.detail, /ann@partner\.example is not email joe@corp\.example/);
  const alone = explain(request({ service: ui }), set);
  assert.equal(alone.effect, 'deny');
  assert.match(alone.rules[0]!.detail, /acts for no signed-in user/);
  assert.equal(evaluate(request({ user: joe.user }), set).effect, 'deny');
});
