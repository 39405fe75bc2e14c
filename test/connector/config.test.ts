// The connector's YAML file: defaults, and every mistake as one config_invalid line that names
// the field.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PosternError } from '../../src/errors.js';
import { loadConnectorConfig, parseConnectorConfig } from '../../src/connector/config.js';

const valid = `
server: https://postern.example.com:8443
sockets:
  - name: web
    upstream: http://127.0.0.1:3000
`;

function rejects(text: string, pattern: RegExp): void {
  assert.throws(() => parseConnectorConfig(text, 'cfg.yaml'), (err: unknown) => {
    assert.ok(err instanceof PosternError, String(err));
    assert.equal(err.code, 'config_invalid');
    assert.doesNotMatch(err.message, /\n/, 'one line');
    assert.match(err.message, /^cfg\.yaml: /);
    assert.match(err.message, pattern);
    return true;
  });
}

test('connector config: a minimal file parses with defaults', () => {
  assert.deepEqual(parseConnectorConfig(valid, 'cfg.yaml'), {
    server: 'https://postern.example.com:8443',
    credentials: 'connector-credentials.json',
    connections: 2,
    sockets: [{ name: 'web', type: 'http', upstream: 'http://127.0.0.1:3000', upstream_tls_verify: true }],
  });
});

test('connector config: every field set', () => {
  const config = parseConnectorConfig(`
server: https://edge.example.com
credentials: /etc/postern/creds.json
token: pjt1.secret.pin
edges: [https://edge1.example.com, https://edge2.example.com]
proxy: http://proxy.internal:3128
connections: 4
sockets:
  - { name: web, type: https, upstream: "https://10.0.0.5:8443", upstream_tls_verify: false }
  - { name: ssh, type: tls, upstream: "tcp://127.0.0.1:22" }
`, 'cfg.yaml');
  assert.equal(config.connections, 4);
  assert.deepEqual(config.edges, ['https://edge1.example.com', 'https://edge2.example.com']);
  assert.equal(config.proxy, 'http://proxy.internal:3128');
  assert.deepEqual(config.sockets.map((s) => [s.name, s.type, s.upstream_tls_verify]), [['web', 'https', false], ['ssh', 'tls', true]]);
});

test('connector config: an unknown key is named', () => {
  rejects(`${valid}colour: red\n`, /^cfg\.yaml: Unrecognized key: "colour"$/);
  rejects(valid.replace('upstream:', 'upstream: http://x\n    upsteam:'), /^cfg\.yaml: sockets\[0\].*upsteam/);
});

test('connector config: a bad upstream URL names sockets[i].upstream', () => {
  rejects(valid.replace('http://127.0.0.1:3000', 'localhost:3000'), /^cfg\.yaml: sockets\[0\]\.upstream: must be a URL/);
  rejects(valid.replace('http://127.0.0.1:3000', 'ftp://files'), /^cfg\.yaml: sockets\[0\]\.upstream: /);
  rejects(`${valid}  - name: two\n    upstream: not a url\n`, /^cfg\.yaml: sockets\[1\]\.upstream: /);
});

test('connector config: bad server, name, connections and an empty socket list are named', () => {
  rejects(valid.replace('https://postern.example.com:8443', 'postern.example.com'), /^cfg\.yaml: server: /);
  rejects(valid.replace('name: web', 'name: Web_App'), /^cfg\.yaml: sockets\[0\]\.name: must be a DNS label/);
  rejects(`${valid}connections: 0\n`, /^cfg\.yaml: connections: /);
  rejects(`${valid}connections: 17\n`, /^cfg\.yaml: connections: /);
  rejects('server: https://a.example\nsockets: []\n', /^cfg\.yaml: sockets: /);
  rejects('sockets:\n  - name: web\n    upstream: http://x\n', /^cfg\.yaml: server: /);
  rejects(valid.replace('upstream: http', 'type: udp\n    upstream: http'), /^cfg\.yaml: sockets\[0\]\.type: /);
});

test('connector config: a socket name listed twice is rejected', () => {
  rejects(`${valid}  - name: web\n    upstream: http://127.0.0.1:4000\n`, /sockets\[1\]\.name: "web" is listed twice/);
});

test('connector config: socket type and upstream scheme must agree', () => {
  rejects(valid.replace('upstream: http', 'type: tls\n    upstream: http'), /sockets\[0\]\.upstream: "web" of type tls cannot use a http: upstream/);
  rejects(valid.replace('http://127.0.0.1:3000', 'tcp://127.0.0.1:22'), /sockets\[0\]\.upstream: "web" of type http cannot use a tcp: upstream/);
  rejects(valid.replace('upstream: http', 'type: https\n    upstream: tcp'), /of type https cannot use a tcp: upstream/);
  rejects(valid.replace('upstream: http', 'type: ssh\n    upstream: http'), /sockets\[0\]\.upstream: "web" of type ssh cannot use a http: upstream/);
  rejects(valid.replace('upstream: http', 'type: sshd\n    upstream: tcp'), /sockets\[0\]\.type: .*"ssh"/);
});

test('connector config: an ssh socket is piped as raw TCP to a tcp:// upstream, like tls', () => {
  const config = parseConnectorConfig(`
server: https://postern.example.com
sockets:
  - { name: prod, type: ssh, upstream: "tcp://127.0.0.1:22" }
  - { name: db, type: tls, upstream: "tcp://127.0.0.1:5432" }
`, 'cfg.yaml');
  assert.deepEqual(config.sockets, [
    { name: 'prod', type: 'ssh', upstream: 'tcp://127.0.0.1:22', upstream_tls_verify: true },
    { name: 'db', type: 'tls', upstream: 'tcp://127.0.0.1:5432', upstream_tls_verify: true },
  ]);
});

test('connector config: a file with several mistakes reports all of them in one line', () => {
  const text = 'server: not a url\nconnections: 99\nsockets:\n  - name: Bad Name\n    upstream: ftp://x\n  - name: web\n    colour: blue\n    upstream: http://127.0.0.1:1\n';
  rejects(text, /^cfg\.yaml: 5 problems: server: .*; connections: .*; sockets\[0\]\.name: .*; sockets\[0\]\.upstream: must be a URL .*; sockets\[1\]: .*colour/);
  rejects(`${valid}  - name: web\n    upstream: tcp://127.0.0.1:22\n`, /^cfg\.yaml: 2 problems: sockets\[1\]\.name: "web" is listed twice; sockets\[1\]\.upstream: "web" of type http cannot use a tcp: upstream$/);
});

test('connector config: text that is not YAML, or not a mapping, is config_invalid', () => {
  rejects('server: [unclosed\nsockets: {', /not valid YAML/);
  rejects('\tserver: x\n  - : :', /not valid YAML: .*line 1/);
  rejects('just a string', /expected object/);
  rejects('', /expected object/);
});

test('loadConnectorConfig: relative paths are resolved against the file; a missing file is config_invalid', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'postern-connector-'));
  try {
    const file = join(dir, 'connector.yaml');
    await writeFile(file, valid);
    const config = await loadConnectorConfig(file);
    assert.equal(config.credentials, join(dir, 'connector-credentials.json'));
    await writeFile(file, `${valid}credentials: /abs/creds.json\n`);
    const absolute = await loadConnectorConfig(file);
    assert.equal(absolute.credentials, '/abs/creds.json');
    await assert.rejects(loadConnectorConfig(join(dir, 'missing.yaml')), (err: unknown) => {
      assert.ok(err instanceof PosternError);
      assert.equal(err.code, 'config_invalid');
      assert.match(err.message, /^cannot read .*missing\.yaml: ENOENT$/);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
