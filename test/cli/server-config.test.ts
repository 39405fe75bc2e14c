// `postern server` settings: flags > env > file > defaults, one-line config_invalid errors
// naming the setting, and parseDuration.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PosternError } from '../../src/errors.js';
import { parseDuration, resolveServerSettings } from '../../src/cli/server-config.js';
import type { ServerFlags } from '../../src/cli/server-config.js';

let dir = '';
let configFile = '';
const baseEnv = (): NodeJS.ProcessEnv => ({ XDG_DATA_HOME: join(dir, 'xdg') });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'postern-server-config-'));
  configFile = join(dir, 'server.yaml');
  await writeFile(configFile, [
    'listen: 0.0.0.0:1001', 'domain: file.example', `data_dir: ${join(dir, 'file-data')}`, 'role: edge',
    'public_port: 443', 'connector_cert_ttl: 12h',
  ].join('\n'));
});
after(() => rm(dir, { recursive: true, force: true }));

function rejects(flags: ServerFlags, env: NodeJS.ProcessEnv, pattern: RegExp): void {
  assert.throws(() => resolveServerSettings(flags, env), (err: unknown) => {
    assert.ok(err instanceof PosternError, String(err));
    assert.equal(err.code, 'config_invalid');
    assert.doesNotMatch(err.message, /\n/, 'one line');
    assert.match(err.message, pattern);
    return true;
  });
}

const HTTP_DEFAULTS = { headerTimeout: 30_000, bodyIdleTimeout: 30_000, keepAliveTimeout: 65_000, maxStreamsPerClient: 256, adminGroup: 'admins' };
const RECORDING_DEFAULTS = { recordingMaxBytes: 64 * 1024 * 1024 };

test('server settings: defaults', () => {
  const settings = resolveServerSettings({}, baseEnv());
  assert.deepEqual(settings, {
    listen: { host: '127.0.0.1', port: 8443 },
    domain: 'localhost',
    dataDir: join(dir, 'xdg', 'postern'),
    db: join(dir, 'xdg', 'postern', 'postern.db'),
    role: 'all',
    connectorCertTtl: 24 * 3_600_000, agentCertTtl: 3_600_000, sessionTtl: 12 * 3_600_000, sessionIdle: 2 * 3_600_000,
    trustedProxies: [], auditExporters: [], ...HTTP_DEFAULTS, ...RECORDING_DEFAULTS,
  });
});

test('server settings: the file overrides defaults', () => {
  const settings = resolveServerSettings({ config: configFile }, baseEnv());
  assert.deepEqual(settings, {
    listen: { host: '0.0.0.0', port: 1001 },
    domain: 'file.example',
    dataDir: join(dir, 'file-data'),
    db: join(dir, 'file-data', 'postern.db'),
    role: 'edge',
    publicPort: 443,
    connectorCertTtl: 12 * 3_600_000, agentCertTtl: 3_600_000, sessionTtl: 12 * 3_600_000, sessionIdle: 2 * 3_600_000,
    trustedProxies: [], auditExporters: [], ...HTTP_DEFAULTS, ...RECORDING_DEFAULTS,
  });
  assert.equal(resolveServerSettings({}, { ...baseEnv(), POSTERN_CONFIG: configFile }).domain, 'file.example');
});

test('server settings: env overrides the file, flags override env', () => {
  const env = {
    ...baseEnv(), POSTERN_CONFIG: configFile, POSTERN_LISTEN: '127.0.0.1:2002', POSTERN_DOMAIN: 'env.example',
    POSTERN_DATA_DIR: join(dir, 'env-data'), POSTERN_ROLE: 'control', POSTERN_PUBLIC_PORT: '8443', POSTERN_CONNECTOR_CERT_TTL: '30m',
    POSTERN_DB: 'postgres://u@db/postern',
  };
  const fromEnv = resolveServerSettings({}, env);
  assert.deepEqual(fromEnv, {
    listen: { host: '127.0.0.1', port: 2002 }, domain: 'env.example', dataDir: join(dir, 'env-data'), db: 'postgres://u@db/postern',
    role: 'control', publicPort: 8443, connectorCertTtl: 30 * 60_000, agentCertTtl: 3_600_000, sessionTtl: 12 * 3_600_000, sessionIdle: 2 * 3_600_000,
    trustedProxies: [], auditExporters: [], ...HTTP_DEFAULTS, ...RECORDING_DEFAULTS,
  });
  const flags: ServerFlags = {
    listen: '[::1]:3003', domain: 'Flag.Example', dataDir: join(dir, 'flag-data'), role: 'all', publicPort: '9443', connectorCertTtl: '7d', db: ':memory:',
  };
  assert.deepEqual(resolveServerSettings(flags, env), {
    listen: { host: '::1', port: 3003 }, domain: 'flag.example', dataDir: join(dir, 'flag-data'), db: ':memory:',
    role: 'all', publicPort: 9443, connectorCertTtl: 7 * 86_400_000, agentCertTtl: 3_600_000, sessionTtl: 12 * 3_600_000, sessionIdle: 2 * 3_600_000,
    trustedProxies: [], auditExporters: [], ...HTTP_DEFAULTS, ...RECORDING_DEFAULTS,
  });
});

test('server settings: trusted proxies, a GeoIP file and audit exporters', async () => {
  const file = join(dir, 'exporters.yaml');
  await writeFile(file, [
    'trusted_proxies: [10.0.0.0/8]', 'geoip_file: GeoLite2-Country.mmdb', 'audit_exporters:',
    '  - { name: siem, kind: webhook, url: "https://siem.example/in", format: jsonl, secret_env: SIEM_SECRET }',
    '  - { name: logs, kind: syslog, url: "udp://127.0.0.1:514", facility: local3 }',
  ].join('\n'));
  const settings = resolveServerSettings({ config: file }, baseEnv());
  assert.deepEqual(settings.trustedProxies, ['10.0.0.0/8']);
  assert.equal(settings.geoipFile, join(process.cwd(), 'GeoLite2-Country.mmdb'));
  assert.deepEqual(settings.auditExporters.map((e) => [e.name, e.kind]), [['siem', 'webhook'], ['logs', 'syslog']]);
  assert.deepEqual(resolveServerSettings({ config: file, trustedProxies: '127.0.0.2, ::1' }, baseEnv()).trustedProxies, ['127.0.0.2', '::1']);
  rejects({ trustedProxies: 'everyone' }, baseEnv(), /^trusted-proxies\[0\]: must be IP addresses or CIDRs/);
  const badExporter = join(dir, 'bad-exporter.yaml');
  await writeFile(badExporter, 'audit_exporters:\n  - { name: x, kind: syslog, url: "http://nope" }\n');
  rejects({ config: badExporter }, baseEnv(), /bad-exporter\.yaml: audit_exporters\[0\]\.url: must be udp:\/\/host:port or tcp:\/\/host:port/);
});

test('server settings: HTTP timeouts and the per-address stream cap', async () => {
  const file = join(dir, 'http.yaml');
  await writeFile(file, 'header_timeout: 10s\nbody_idle_timeout: 2m\nkeep_alive_timeout: 5s\nmax_streams_per_client: 64\n');
  const settings = resolveServerSettings({ config: file }, baseEnv());
  assert.deepEqual([settings.headerTimeout, settings.bodyIdleTimeout, settings.keepAliveTimeout, settings.maxStreamsPerClient], [10_000, 120_000, 5_000, 64]);
  const flagged = resolveServerSettings({ config: file, bodyIdleTimeout: '1s', maxStreamsPerClient: '8' }, { ...baseEnv(), POSTERN_HEADER_TIMEOUT: '3s' });
  assert.deepEqual([flagged.headerTimeout, flagged.bodyIdleTimeout, flagged.maxStreamsPerClient], [3_000, 1_000, 8]);
  rejects({ bodyIdleTimeout: '500ms' }, baseEnv(), /^body-idle-timeout: must be at least 1s/);
  rejects({ headerTimeout: 'soon' }, baseEnv(), /^header-timeout: must be a duration/);
  rejects({ maxStreamsPerClient: '0' }, baseEnv(), /^max-streams-per-client: /);
});

test('server settings: the recording size cap as bytes or KiB/MiB/GiB, from the file, env or flag', async () => {
  const file = join(dir, 'recording.yaml');
  await writeFile(file, 'recording_max_bytes: 512KiB\n');
  assert.equal(resolveServerSettings({ config: file }, baseEnv()).recordingMaxBytes, 512 * 1024);
  assert.equal(resolveServerSettings({ config: file }, { ...baseEnv(), POSTERN_RECORDING_MAX_BYTES: '2MiB' }).recordingMaxBytes, 2 * 1024 * 1024);
  assert.equal(resolveServerSettings({ config: file, recordingMaxBytes: '65536' }, baseEnv()).recordingMaxBytes, 65536);
  rejects({ recordingMaxBytes: 'lots' }, baseEnv(), /^recording-max-bytes: "lots" is not a size/);
  rejects({ recordingMaxBytes: '10' }, baseEnv(), /^recording-max-bytes: must be from 1KiB/);
});

test('server settings: the admin group from flag > env > file, never empty', async () => {
  const file = join(dir, 'admin-group.yaml');
  await writeFile(file, 'admin_group: platform\n');
  assert.equal(resolveServerSettings({ config: file }, baseEnv()).adminGroup, 'platform');
  assert.equal(resolveServerSettings({ config: file }, { ...baseEnv(), POSTERN_ADMIN_GROUP: 'sre' }).adminGroup, 'sre');
  assert.equal(resolveServerSettings({ config: file, adminGroup: 'ops' }, { ...baseEnv(), POSTERN_ADMIN_GROUP: 'sre' }).adminGroup, 'ops');
  rejects({ adminGroup: '' }, baseEnv(), /^admin-group: must name a group/);
  rejects({ adminGroup: ' ops' }, baseEnv(), /^admin-group: must not start or end with spaces/);
});

test('server settings: the db defaults to the resolved data dir', () => {
  const settings = resolveServerSettings({ dataDir: join(dir, 'only-flag') }, { ...baseEnv(), POSTERN_DATA_DIR: join(dir, 'ignored') });
  assert.equal(settings.db, join(dir, 'only-flag', 'postern.db'));
});

test('server settings: listen forms', () => {
  const listen = (value: string) => resolveServerSettings({ listen: value }, baseEnv()).listen;
  assert.deepEqual(listen(':9000'), { host: '0.0.0.0', port: 9000 });
  assert.deepEqual(listen('localhost:0'), { host: 'localhost', port: 0 });
  assert.deepEqual(listen('[2001:db8::1]:65535'), { host: '2001:db8::1', port: 65535 });
});

test('server settings: a bad --listen is one line naming listen', () => {
  for (const value of ['8443', 'nope', '127.0.0.1:70000', '::1:8443', '127.0.0.1:', 'host:123456']) {
    rejects({ listen: value }, baseEnv(), new RegExp(`^listen: "${value.replace(/[.[\]]/g, '\\$&')}" is not host:port`));
  }
});

test('server settings: bad domain, role, port and duration are named', () => {
  rejects({ domain: 'bad_domain!' }, baseEnv(), /^domain: must be a DNS name/);
  rejects({ domain: '-lead.example' }, baseEnv(), /^domain: /);
  rejects({ role: 'primary' }, baseEnv(), /^role: /);
  rejects({ publicPort: 'abc' }, baseEnv(), /^public-port: /);
  rejects({ publicPort: '70000' }, baseEnv(), /^public-port: /);
  rejects({ connectorCertTtl: '5 minutes' }, baseEnv(), /^connector-cert-ttl: must be a duration such as 30m, 24h or 7d$/);
  rejects({}, { ...baseEnv(), POSTERN_CONNECTOR_CERT_TTL: '1.5h' }, /^connector-cert-ttl: /);
});

test('server settings: a bad config file is one line naming the file', async () => {
  const unknownKey = join(dir, 'unknown.yaml');
  await writeFile(unknownKey, 'listen: 127.0.0.1:1\nlisten_port: 9\n');
  rejects({ config: unknownKey }, baseEnv(), /unknown\.yaml: .*listen_port/);
  const wrongType = join(dir, 'wrong-type.yaml');
  await writeFile(wrongType, 'public_port: "443"\n');
  rejects({ config: wrongType }, baseEnv(), /wrong-type\.yaml: public_port: /);
  const broken = join(dir, 'broken.yaml');
  await writeFile(broken, 'listen: [unclosed\n  domain: {\n');
  rejects({ config: broken }, baseEnv(), /broken\.yaml: /);
  rejects({ config: join(dir, 'missing.yaml') }, baseEnv(), /missing\.yaml: .*ENOENT/);
  const empty = join(dir, 'empty.yaml');
  await writeFile(empty, '');
  assert.equal(resolveServerSettings({ config: empty }, baseEnv()).domain, 'localhost');
});

test('parseDuration: units and rejects', () => {
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('45s'), 45_000);
  assert.equal(parseDuration('30m'), 1_800_000);
  assert.equal(parseDuration('24h'), 86_400_000);
  assert.equal(parseDuration('7d'), 604_800_000);
  assert.equal(parseDuration('0s'), 0);
  for (const bad of ['', '10', '1.5h', '-1s', '5 m', '5M', '1w', 'h']) {
    assert.throws(() => parseDuration(bad), (err: unknown) => err instanceof PosternError && err.code === 'config_invalid' && err.message.includes(`"${bad}"`), bad);
  }
});
