// Policy documents: YAML and JSON, normalization, and one-line errors naming the field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePolicyDocument, validatePolicyDocument } from '../../src/policy/document.js';
import { isPosternError } from '../../src/errors.js';

const DESIGN_EXAMPLE = `
name: support-access            # unique per namespace
namespace: corp/support         # optional; parents' denies always apply
sockets: [prod-ssh, grafana]    # or tags: {env: prod}; neither = whole organisation
rules:
  - effect: allow
    who:   { domain: [Corp.Example], group: [support] }
    where: { country_not: [ru, KP], ip: [10.0.0.0/8] }
    when:  { weekdays: [mon, tue, wed, thu, fri], time: "08:00-18:00", tz: europe/amsterdam }
    what:
      http: { methods: [get, HEAD], paths: ["/dashboards/*"] }
      ssh:  { logins: [support], shell: true, exec: true, sftp: false, port_forwarding: false, max_session: 2h }
  - effect: deny
    what: { http: { methods: [POST, PUT, DELETE], paths: ["/admin/*"] } }
`;

test('YAML: the design example parses and is normalized', () => {
  const doc = parsePolicyDocument(DESIGN_EXAMPLE);
  assert.equal(doc.name, 'support-access');
  assert.equal(doc.namespace, 'corp/support');
  assert.deepEqual(doc.sockets, ['prod-ssh', 'grafana']);
  const [allow, deny] = doc.rules;
  assert.deepEqual(allow!.who, { domain: ['corp.example'], group: ['support'] });
  assert.deepEqual(allow!.where, { country_not: ['RU', 'KP'], ip: ['10.0.0.0/8'] });
  assert.equal(allow!.when!.tz, 'Europe/Amsterdam');
  assert.deepEqual(allow!.what!.http!.methods, ['GET', 'HEAD']);
  assert.equal(allow!.what!.ssh!.max_session, '2h');
  assert.equal(deny!.effect, 'deny');
});

test('JSON: detected by a leading {, or forced', () => {
  const json = JSON.stringify({ name: 'p', tags: { env: 'prod' }, rules: [{ effect: 'allow', who: { email: ['Joe@Corp.Example'] } }] });
  const doc = parsePolicyDocument(`  ${json}`);
  assert.deepEqual(doc, { name: 'p', tags: { env: 'prod' }, rules: [{ effect: 'allow', who: { email: ['joe@corp.example'] } }] });
  assert.deepEqual(parsePolicyDocument(json, 'json'), doc);
  assert.deepEqual(parsePolicyDocument(json, 'yaml'), doc); // JSON is YAML too
});

/** The message of the bad_request error the document raises. */
function problem(source: string | unknown): string {
  try {
    if (typeof source === 'string') parsePolicyDocument(source);
    else validatePolicyDocument(source);
  } catch (err) {
    assert.ok(isPosternError(err, 'bad_request'), String(err));
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    return err.message;
  }
  assert.fail('expected the document to be refused');
}

const withRule = (rule: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ name: 'p', rules: [{ effect: 'allow' }, rule], ...extra });

test('errors name the field path, on one line', () => {
  const cases: [unknown, string][] = [
    [withRule({ effect: 'allow', when: { time: '8-18' } }), 'rules[1].when.time: expected HH:MM-HH:MM, got "8-18"'],
    [{ name: 'p', rules: [{ effect: 'allow', where: { ip: ['10.0.0.0/8', '::1', '10.0.0.300'] } }] }, 'rules[0].where.ip[2]: "10.0.0.300" is not an IP address or CIDR'],
    [withRule({ effect: 'permit' }), 'rules[1].effect: expected allow or deny, got "permit"'],
    [withRule({ effect: 'allow', who: { emails: ['a@b'] } }), 'rules[1].who.emails: unknown field'],
    [{ name: 'p', rules: [], colour: 'red' }, 'rules: must not be empty'],
    [{ name: 'p', colour: 'red', rules: [{ effect: 'allow' }] }, 'colour: unknown field'],
    [{ rules: [{ effect: 'allow' }] }, 'name: is required'],
    [{ name: 'Support Access', rules: [{ effect: 'allow' }] }, 'name: "Support Access" is not a valid name: a-z, 0-9, ".", "_" and "-", starting with a letter or digit, at most 63 characters'],
    [{ name: 'p', namespace: 'corp//x', rules: [{ effect: 'allow' }] }, 'namespace: "corp//x" is not a namespace: names of a-z, 0-9, ".", "_" and "-" separated by "/", such as corp/support'],
    [withRule({ effect: 'allow', where: { country: ['NL', 'NLD'] } }), 'rules[1].where.country[1]: "NLD" is not a country code (ISO 3166-1 alpha-2, or EU)'],
    [withRule({ effect: 'allow', where: { country: ['XX'] } }), 'rules[1].where.country[0]: "XX" is not a country code (ISO 3166-1 alpha-2, or EU)'],
    [withRule({ effect: 'deny', where: { country_not: ['ZZ'] } }), 'rules[1].where.country_not[0]: "ZZ" is not a country code (ISO 3166-1 alpha-2, or EU)'],
    [withRule({ effect: 'allow', where: { country_not: ['UK'] } }), 'rules[1].where.country_not[0]: "UK" is not an ISO 3166-1 code: the United Kingdom is GB'],
    [withRule({ effect: 'allow', when: { weekdays: ['monday'] } }), 'rules[1].when.weekdays[0]: expected one of mon, tue, wed, thu, fri, sat, sun, got "monday"'],
    [withRule({ effect: 'allow', when: { tz: 'Mars/Olympus' } }), 'rules[1].when.tz: "Mars/Olympus" is not an IANA time zone (such as Europe/Amsterdam or UTC)'],
    [withRule({ effect: 'allow', when: { after: '2025-02-30' } }), 'rules[1].when.after: "2025-02-30" is not an ISO 8601 date or date-time (2025-06-01, 2025-06-01T08:00, 2025-06-01T08:00:00Z)'],
    [withRule({ effect: 'allow', when: { after: '2025-06-01', before: '2025-05-01' } }), 'rules[1].when.before: "2025-05-01" must be later than after ("2025-06-01")'],
    [withRule({ effect: 'allow', what: { ssh: { max_session: '2 hours' } } }), 'rules[1].what.ssh.max_session: "2 hours" is not a duration such as 90s, 30m, 2h or 1d'],
    [withRule({ effect: 'allow', what: { ssh: { shell: 'yes' } } }), 'rules[1].what.ssh.shell: expected true or false, got "yes"'],
    [withRule({ effect: 'allow', what: { http: { paths: ['admin/*'] } } }), 'rules[1].what.http.paths[0]: "admin/*" must start with "/"'],
    [withRule({ effect: 'allow', what: {} }), 'rules[1].what: needs at least one of http, ssh, tls, database'],
    [withRule({ effect: 'allow', who: { domain: ['@corp.example'] } }), 'rules[1].who.domain[0]: "@corp.example" is not a domain (leave out the "@")'],
    [withRule({ effect: 'allow', who: { email: 'joe@corp.example' } }), 'rules[1].who.email: expected a list, got "joe@corp.example"'],
    [withRule({ effect: 'allow', who: { group: [] } }), 'rules[1].who.group: must not be empty'],
    [withRule({ effect: 'deny', what: { ssh: { sftp: false } } }), 'rules[1].what.ssh.sftp: channel flags go on allow rules (sftp: false there forbids it)'],
    [withRule({ effect: 'deny', what: { ssh: { scp: false } } }), 'rules[1].what.ssh.scp: channel flags go on allow rules (scp: false there forbids it)'],
    [withRule({ effect: 'deny', what: { ssh: { agent_forwarding: true } } }), 'rules[1].what.ssh.agent_forwarding: channel flags go on allow rules (agent_forwarding: false there forbids it)'],
    [withRule({ effect: 'deny', what: { ssh: { x11: false } } }), 'rules[1].what.ssh.x11: channel flags go on allow rules (x11: false there forbids it)'],
    [withRule({ effect: 'deny', what: { ssh: { port_forwarding: { remote: false } } } }), 'rules[1].what.ssh.port_forwarding: channel flags go on allow rules (port_forwarding: false there forbids it)'],
    [withRule({ effect: 'deny', what: { ssh: { exec: ['rm *'] } } }), 'rules[1].what.ssh.exec: channel flags go on allow rules (exec: false there forbids it)'],
    [withRule({ effect: 'allow', what: { ssh: { exec: 'uptime' } } }), 'rules[1].what.ssh.exec: expected true, false or a list of command globs, got "uptime"'],
    [withRule({ effect: 'allow', what: { ssh: { exec: [] } } }), 'rules[1].what.ssh.exec: must not be empty'],
    [withRule({ effect: 'allow', what: { ssh: { exec: ['uptime', ' '] } } }), 'rules[1].what.ssh.exec[1]: " " must not be empty'],
    [withRule({ effect: 'allow', what: { ssh: { exec: ['uptime\nid'] } } }), 'rules[1].what.ssh.exec[0]: "uptime\\nid" must be one line without control characters'],
    [withRule({ effect: 'allow', what: { ssh: { exec: [true] } } }), 'rules[1].what.ssh.exec[0]: expected a string, got true'],
    [withRule({ effect: 'allow', what: { ssh: { port_forwarding: 'local' } } }), 'rules[1].what.ssh.port_forwarding: expected true, false or { local, remote }, got "local"'],
    [withRule({ effect: 'allow', what: { ssh: { port_forwarding: { local: 'no' } } } }), 'rules[1].what.ssh.port_forwarding.local: expected true or false, got "no"'],
    [withRule({ effect: 'allow', what: { ssh: { port_forwarding: { dynamic: false } } } }), 'rules[1].what.ssh.port_forwarding.dynamic: unknown field'],
    [withRule({ effect: 'allow', what: { ssh: { port_forwarding: {} } } }), 'rules[1].what.ssh.port_forwarding: name local or remote (or write true or false for both)'],
    [withRule({ effect: 'allow', what: { ssh: { agent_forwarding: 'off' } } }), 'rules[1].what.ssh.agent_forwarding: expected true or false, got "off"'],
    [withRule({ effect: 'allow', what: { ssh: { x11_forwarding: false } } }), 'rules[1].what.ssh.x11_forwarding: unknown field'],
    [withRule({ effect: 'deny', what: { database: { read_only: true } } }), 'rules[1].what.database.read_only: only allow rules are read-only (a deny rule with database: {} refuses the database)'],
    [{ name: 'p', sockets: ['web'], tags: { env: 'prod' }, rules: [{ effect: 'allow' }] }, 'tags: a policy attaches by one of sockets, services or tags, not sockets and tags'],
    [{ name: 'p', sockets: ['Web_1'], rules: [{ effect: 'allow' }] }, 'sockets[0]: "Web_1" is not a socket name (a DNS label: a-z, 0-9 and "-")'],
    [{ name: 'p', rules: [{ name: 'r', effect: 'allow' }, { name: 'r', effect: 'deny' }] }, 'rules[1].name: "r" is already the name of rules[0]'],
    [null, 'policy document: expected a mapping, got null'],
    [['a'], 'policy document: expected a mapping, got a list'],
  ];
  for (const [input, message] of cases) assert.equal(problem(input), message);
});

test('YAML and JSON syntax errors are one line with the line number', () => {
  assert.equal(problem('name: p\nrules:\n  - effect: allow\n    who: {email: [a\n'), 'line 5: Flow sequence in block collection must be sufficiently indented and end with a ]');
  assert.equal(problem('name: p\nname: q\n'), 'line 2: Map keys must be unique');
  // V8's wording varies by version: the line number and the absence of V8's excerpt are ours
  assert.match(problem('{\n  "name": "p",\n  "rules": [}\n'), /^line 3: [^"]*'}'$/);
  assert.match(problem('{\n  "name": "p",\n  "rules": []\n'), /^line 4: /);
  assert.match(problem('{"name": "p", "rules": [{"effect": "allow",}]}'), /^line 1: [^"]*$/);
  assert.equal(problem(''), 'policy document: expected a mapping, got null');
});

test('YAML 1.2: NO, no and dates stay strings', () => {
  const doc = parsePolicyDocument('name: p\nrules:\n  - effect: allow\n    where: {country: [NO, no]}\n    when: {after: 2025-01-01}\n');
  assert.deepEqual(doc.rules[0]!.where!.country, ['NO', 'NO']);
  assert.equal(doc.rules[0]!.when!.after, '2025-01-01');
});

test('accepted values: IPv6 and mapped CIDRs, EU, 24:00, wrap, durations, services', () => {
  const doc = validatePolicyDocument({
    name: 'edge.case_1',
    namespace: 'corp/team-a/app.1',
    rules: [{
      name: 'night-shift',
      effect: 'allow',
      who: { service: ['spiffe://corp.example/ns/*'] },
      where: { ip: ['2001:db8::/32', '::ffff:10.0.0.0/104', '192.168.0.1'], country: ['eu'] },
      when: { time: '22:00-24:00', after: '2025-01-01T00:00:00Z', before: '2026-01-01T08:00+01:00' },
      what: { ssh: { max_session: '90s' }, database: { names: ['app'], read_only: true }, tls: { connect: true } },
    }],
  });
  assert.deepEqual(doc.rules[0]!.where!.country, ['EU']);
});

test('what.ssh: channel flags, exec globs and forwarding per direction parse as written', () => {
  const doc = parsePolicyDocument(`
name: ssh-channels
rules:
  - effect: allow
    what:
      ssh:
        logins: [ops]
        exec: [uptime, "systemctl status *"]
        scp: false
        port_forwarding: { local: true, remote: false }
        agent_forwarding: false
        x11: false
  - effect: allow
    what: { ssh: { exec: false, port_forwarding: true } }
  - effect: deny
    what: { ssh: { logins: [root] } }
`);
  assert.deepEqual(doc.rules[0]!.what!.ssh, {
    logins: ['ops'], exec: ['uptime', 'systemctl status *'], scp: false, port_forwarding: { local: true, remote: false }, agent_forwarding: false, x11: false,
  });
  assert.deepEqual(doc.rules[1]!.what!.ssh, { exec: false, port_forwarding: true });
});

test('who.service as labels and who.spiffe parse; an empty label map or a bad label name is refused', () => {
  const doc = parsePolicyDocument(`
name: payroll-callers
rules:
  - effect: allow
    who: { service: { app: payroll, env: [prod, staging] }, spiffe: ["spiffe://corp.example/ns/fin/*"] }
`);
  assert.deepEqual(doc.rules[0]!.who, { service: { app: 'payroll', env: ['prod', 'staging'] }, spiffe: ['spiffe://corp.example/ns/fin/*'] });
  for (const who of [{ service: {} }, { service: { '1bad': 'x' } }, { spiffe: ['spiffe://x/*/y'] }]) {
    assert.throws(() => validatePolicyDocument({ name: 'x', rules: [{ effect: 'allow', who }] }), (err) => isPosternError(err), JSON.stringify(who));
  }
});

test('who.on_behalf_of goes with a service; services attach a policy; database users are allow-only', () => {
  const doc = parsePolicyDocument(`
name: ui-for-alice
namespace: shop
services: [api]
rules:
  - effect: allow
    who: { service: { app: ui }, on_behalf_of: { email: [Alice@Corp.Example], group: [buyers] } }
    what: { http: { methods: [GET], paths: ["/alice/*"] } }
`);
  assert.deepEqual(doc.services, ['api']);
  assert.deepEqual(doc.rules[0]!.who, { service: { app: 'ui' }, on_behalf_of: { email: ['alice@corp.example'], group: ['buyers'] } });
  const problem = (input: unknown) => {
    try {
      validatePolicyDocument(input);
      return 'ok';
    } catch (err) {
      return (err as Error).message;
    }
  };
  assert.match(problem({ name: 'x', rules: [{ effect: 'allow', who: { on_behalf_of: { email: ['a@b.example'] } } }] }), /who\.on_behalf_of: goes with service or spiffe/);
  assert.match(problem({ name: 'x', rules: [{ effect: 'allow', who: { spiffe: ['spiffe://td/ns/a/svc/b'], on_behalf_of: {} } }] }), /on_behalf_of: name the people/);
  assert.match(problem({ name: 'x', sockets: ['web'], services: ['api'], rules: [{ effect: 'allow' }] }), /services: a policy attaches by one of sockets, services or tags, not sockets and services/);
  assert.equal(problem({ name: 'x', rules: [{ effect: 'allow', what: { database: { users: ['readonly'] } } }] }), 'ok');
  assert.match(problem({ name: 'x', rules: [{ effect: 'deny', what: { database: { users: ['admin'] } } }] }), /what\.database\.users: only allow rules map people to roles/);
});
