// What tripped a newcomer on day one, as they hit it: piping CLI output, config that was wrong
// but accepted, `connect` with a new port on an existing socket, ids that read alike.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { api } from '../helpers/https.js';
import { CLI, cleanupAll, spawnCli, startConnector, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { freePort, tempDir, withTimeout } from '../helpers/util.js';

/** Runs `postern args | head -1` in bash with pipefail: the exit status is postern's. */
function pipedToHead(server: ServerHandle, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return withTimeout(new Promise((resolve) => {
    const quoted = args.map((a) => `'${a}'`).join(' ');
    const child = spawn('bash', ['-o', 'pipefail', '-c', `node '${CLI}' ${quoted} | head -1`], { env: server.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  }), 30_000, `postern ${args.join(' ')} | head -1`);
}

describe('the first hour of a new user', () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let dir: string;

  before(async () => {
    dir = (await tempDir()).path;
    upstream = await startUpstream();
    server = await startServer();
    // Enough audit (the JSON form carries each socket whole) that `audit search` writes well past a pipe's buffer.
    const created = await Promise.all(Array.from({ length: 80 }, (_, i) => api(server, '/api/v1/sockets', { method: 'POST', body: { name: `s${i}`, description: 'x'.repeat(1000) } })));
    assert.deepEqual(new Set(created.map((r) => r.status)), new Set([201]));
  });

  after(async () => {
    await cleanupAll();
    await upstream?.close();
  });

  test('piping output into head exits quietly, with no stack trace', async () => {
    for (const args of [['audit', 'search', '--limit', '1000'], ['socket', 'ls'], ['audit', 'search', '--json', '--limit', '1000']]) {
      const result = await pipedToHead(server, args);
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stderr, '');
      assert.equal(result.stdout.split('\n').length, 2);
    }
  });

  test('an upstream the connector could never dial is refused in one line', async () => {
    const ftp = await server.cli(['socket', 'create', '--name', 'files', '--upstream', 'ftp://127.0.0.1/']);
    assert.equal(ftp.code, 1);
    assert.equal(ftp.stderr.trim(), 'postern: a http socket\'s upstream must start with http:// or https://, not ftp://');
    const tls = await server.cli(['socket', 'create', '--name', 'db', '--type', 'tls', '--upstream', 'http://127.0.0.1:5432']);
    assert.equal(tls.stderr.trim(), 'postern: a tls socket\'s upstream must start with tcp://, not http://');
    const junk = await server.cli(['socket', 'create', '--name', 'junk', '--upstream', 'not a url']);
    assert.match(junk.stderr, /^postern: upstream "not a url" is not a URL such as http:\/\/127\.0\.0\.1:3000\n$/);
  });

  test('a policy with an unknown country is refused; one naming a missing socket is applied with a warning', async () => {
    const bad = join(dir, 'xx.yaml');
    await writeFile(bad, 'name: xx\nrules:\n  - effect: allow\n    where: { country: [XX] }\n');
    const refused = await server.cli(['policy', 'apply', '-f', bad]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^postern: .*xx\.yaml: line 4, column 24: rules\[0\]\.where\.country\[0\]: "XX" is not a country code \(ISO 3166-1 alpha-2, or EU\)\n$/);
    const later = join(dir, 'later.yaml');
    await writeFile(later, 'name: later\nsockets: [not-yet]\nrules:\n  - effect: allow\n');
    const applied = await server.cli(['policy', 'apply', '-f', later]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stderr, /warning: .*later\.yaml: socket not-yet does not exist \(yet\)/);
    assert.match((await server.cli(['policy', 'ls'])).stdout, /not-yet \(no such socket\)/);
  });

  test('a connector YAML with several mistakes names all of them', async () => {
    const file = join(dir, 'bad-connector.yaml');
    await writeFile(file, `server: ${server.url}\nconnections: 0\nsockets:\n  - name: web\n    upstream: ftp://x\n  - name: web\n    upstream: http://127.0.0.1:1\n    colour: blue\n`);
    const result = await server.cli(['connector', 'start', '--config', file]);
    assert.equal(result.code, 1);
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, /3 problems: connections: .*; sockets\[0\]\.upstream: .*; sockets\[1\]: .*colour/);
  });

  test('connect with another port updates the socket, warns when nothing listens, and ids tell connectors from connections', async () => {
    const closed = await freePort();
    const first = spawnCli('connect (closed port)', ['connect', '--name', 'moved', '--port', String(closed)], server.env);
    await first.waitForOutput(/nothing answers on http:\/\/127\.0\.0\.1:\d+ yet \(connection refused\)/, { stream: 'stderr', timeoutMs: 20_000 });
    const connectorId = (await first.waitForOutput(/connector (\S+) is connected/, { timeoutMs: 20_000 }))[1]!;
    assert.match(connectorId, /^ctr_/, 'connector ids have their own prefix');
    await first.stop();
    const moved = await startConnector(['connect', '--name', 'moved', '--port', String(upstream.port)], server.env);
    assert.match(moved.process.stderr, new RegExp(`socket moved: upstream http://127\\.0\\.0\\.1:${closed} → http://127\\.0\\.0\\.1:${upstream.port}`));
    const shown = JSON.parse((await server.cli(['socket', 'show', 'moved', '--json'])).stdout) as { upstream: string };
    assert.equal(shown.upstream, `http://127.0.0.1:${upstream.port}`);
    await moved.stop();
  });
});
