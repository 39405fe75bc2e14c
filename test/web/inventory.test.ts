import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import {
  connectLines, connectorOnline, connectorYaml, filterSockets, formatTags, groupsOf, hasTag, joinTokenState, parseConfigJson,
  parseList, parseTags, problemField, socketHost, sshdSetupLines, tagChoices,
} from '../../web/src/lib/inventory.js';
import type { SocketView } from '../../src/control/inventory-types.js';
import { connectorConfigSchema } from '../../src/connector/config.js';

function socket(name: string, extra: Partial<SocketView> = {}): SocketView {
  return {
    id: `sock_${name}`, name, type: 'http', upstream: null, description: '', tags: {}, rawPaths: false, url: `https://${name}.localhost:8443/`, online: false,
    auth: { cloudauth: false, allowedEmailDomains: [], allowedEmailAddresses: [] }, createdAt: '', updatedAt: '', recordInput: false, upstreamHostKey: null, database: null, connectors: [], ...extra,
  };
}

describe('inventory: tag and list fields', () => {
  it('parses key=value pairs separated by commas or new lines and names each bad one', () => {
    assert.deepEqual(parseTags(' env=prod, team = ops\nempty='), { tags: { env: 'prod', team: 'ops', empty: '' }, errors: [] });
    const bad = parseTags('env, sp ace=1, env2=a, env2=b');
    assert.deepEqual(bad.tags, { env2: 'a' });
    assert.equal(bad.errors.length, 3);
    assert.match(bad.errors[0]!, /"env" is not key=value/);
    assert.match(bad.errors[1]!, /sp ace/);
    assert.match(bad.errors[2]!, /env2 is given twice/);
    assert.equal(formatTags({ env: 'prod', team: 'ops' }), 'env=prod, team=ops');
    assert.deepEqual(parseTags(formatTags({ env: 'prod', team: 'ops' })).tags, { env: 'prod', team: 'ops' });
  });

  it('splits lists on commas, spaces and new lines, once each', () => {
    assert.deepEqual(parseList(' a@x.example, b@x.example\nb@x.example  c@x.example,,'), ['a@x.example', 'b@x.example', 'c@x.example']);
    assert.deepEqual(parseList('  '), []);
  });
});

describe('inventory: socket filter', () => {
  const sockets = [
    socket('grafana', { tags: { env: 'prod', team: 'ops' }, upstream: 'http://127.0.0.1:3000' }),
    socket('db', { type: 'tls', tags: { env: 'dev' }, upstream: 'tcp://10.0.0.5:5432' }),
    socket('wiki', { description: 'Team handbook' }),
  ];
  it('matches a tag exactly, or by key alone', () => {
    assert.equal(hasTag({ env: 'prod' }, 'env=prod'), true);
    assert.equal(hasTag({ env: 'prod' }, 'env=dev'), false);
    assert.equal(hasTag({ env: 'prod' }, 'env'), true);
    assert.equal(hasTag({}, 'toString'), false);
    assert.deepEqual(filterSockets(sockets, { tag: 'env' }).map((s) => s.name), ['grafana', 'db']);
    assert.deepEqual(filterSockets(sockets, { tag: 'env=dev' }).map((s) => s.name), ['db']);
  });
  it('finds text in name, type, upstream, description and tags, case-insensitively', () => {
    assert.deepEqual(filterSockets(sockets, { text: '5432' }).map((s) => s.name), ['db']);
    assert.deepEqual(filterSockets(sockets, { text: 'HANDBOOK' }).map((s) => s.name), ['wiki']);
    assert.deepEqual(filterSockets(sockets, { text: 'team' }).map((s) => s.name), ['grafana', 'wiki']);
    assert.deepEqual(filterSockets(sockets, { text: 'ops', tag: 'env=dev' }), []);
    assert.equal(filterSockets(sockets, {}).length, 3);
    assert.deepEqual(tagChoices(sockets), ['env=dev', 'env=prod', 'team=ops']);
  });
});

describe('inventory: what to copy for a socket', () => {
  it('gives the URL of an http socket and CLI commands for tls and ssh ones', () => {
    assert.deepEqual(connectLines(socket('grafana'), 'https://localhost:8443'), [{ label: 'Open in a browser', text: 'https://grafana.localhost:8443/' }]);
    assert.equal(socketHost(socket('db', { url: 'https://db.corp.example/' })), 'db.corp.example');
    const tls = connectLines(socket('db', { type: 'tls' }), 'https://localhost:8443', 15432).map((l) => l.text);
    assert.ok(tls.includes('export POSTERN_SERVER=https://localhost:8443'));
    assert.ok(tls.includes('postern client tls --host db.localhost --listen 127.0.0.1:15432'));
    assert.ok(tls.includes("ssh -o ProxyCommand='postern client tls --host %h' <login>@db.localhost"));
    assert.ok(tls.includes('openssl s_client -connect localhost:8443 -servername db.localhost'));
    const ssh = connectLines(socket('prod', { type: 'ssh' }), 'https://corp.example').map((l) => l.text);
    assert.deepEqual(ssh, ['export POSTERN_SERVER=https://corp.example', 'postern client ssh-config >> ~/.ssh/config', 'ssh <login>@prod.localhost']);
  });
  it('spells out the sshd side with the CA key and every config line', () => {
    const text = sshdSetupLines({ publicKey: 'ssh-ed25519 AAAA postern-user-ca', sshdConfig: ['TrustedUserCAKeys /etc/ssh/postern_user_ca.pub', 'AuthorizedPrincipalsFile /etc/ssh/postern_principals/%u'] });
    assert.match(text, /^echo 'ssh-ed25519 AAAA postern-user-ca' \| sudo tee \/etc\/ssh\/postern_user_ca\.pub$/m);
    assert.match(text, /^TrustedUserCAKeys \/etc\/ssh\/postern_user_ca\.pub$/m);
    assert.match(text, /^AuthorizedPrincipalsFile \/etc\/ssh\/postern_principals\/%u$/m);
  });
});

describe('inventory: connectors and join tokens', () => {
  it('writes a connector YAML the connector accepts, with the token as given', () => {
    const token = 'pjt1.ABC-def_123.sha256:Zm9v/+=';
    const yaml = connectorYaml('https://localhost:8443', token, [{ name: 'grafana', type: 'http', upstream: 'http://127.0.0.1:3000' }, { name: 'db', type: 'tls', upstream: null }]);
    const parsed = connectorConfigSchema.parse(parseYaml(yaml));
    assert.equal(parsed.token, token);
    assert.equal(parsed.server, 'https://localhost:8443');
    assert.deepEqual(parsed.sockets.map((s) => [s.name, s.type, s.upstream]), [['grafana', 'http', 'http://127.0.0.1:3000'], ['db', 'tls', 'tcp://127.0.0.1:22']]);
    assert.equal(connectorConfigSchema.parse(parseYaml(connectorYaml('https://x.example', '012345', []))).token, '012345', 'a token of digits stays a string');
  });
  it('tells used, expired and usable tokens apart, and online connectors', () => {
    const now = new Date('2030-01-01T12:00:00Z');
    assert.equal(joinTokenState({ usedAt: '2030-01-01T11:00:00Z', expiresAt: '2030-01-01T13:00:00Z' }, now), 'used');
    assert.equal(joinTokenState({ usedAt: null, expiresAt: '2030-01-01T12:00:00Z' }, now), 'expired');
    assert.equal(joinTokenState({ usedAt: null, expiresAt: '2030-01-01T12:00:01Z' }, now), 'usable');
    const tunnel = { id: 't', connectorId: 'c', connectorName: 'n', remoteAddress: '127.0.0.1', transport: 'tls' as const, sockets: [], activeStreams: 0, draining: false, connectedAt: '' };
    assert.equal(connectorOnline({ revokedAt: null, tunnels: [tunnel] }), true);
    assert.equal(connectorOnline({ revokedAt: null, tunnels: [] }), false);
    assert.equal(connectorOnline({ revokedAt: '2030-01-01T00:00:00Z', tunnels: [tunnel] }), false);
  });
});

describe('inventory: users, groups and providers', () => {
  it('derives groups from the users that carry them', () => {
    assert.deepEqual(groupsOf([
      { email: 'b@x.example', groups: ['staff', 'admins'] },
      { email: 'a@x.example', groups: ['staff'] },
      { email: 'c@x.example', groups: [] },
    ]), [{ group: 'admins', members: ['b@x.example'] }, { group: 'staff', members: ['a@x.example', 'b@x.example'] }]);
  });
  it('reads provider settings as a JSON object or says why not', () => {
    assert.deepEqual(parseConfigJson('{"client_id":"abc"}'), { config: { client_id: 'abc' } });
    assert.deepEqual(parseConfigJson(''), { config: {} });
    assert.match((parseConfigJson('[1]') as { error: string }).error, /JSON object/);
    assert.match((parseConfigJson('{client_id:') as { error: string }).error, /not valid JSON/);
  });
  it('finds the field a problem names', () => {
    assert.equal(problemField('body: name: must be a DNS label: a-z, 0-9'), 'name');
    assert.equal(problemField('body: allowed_email_domains[0]: must be a domain such as corp.example'), 'allowed_email_domains');
    assert.equal(problemField('config: client_id: Invalid input'), 'client_id');
    assert.equal(problemField('socket "x" already exists'), undefined);
  });
});
