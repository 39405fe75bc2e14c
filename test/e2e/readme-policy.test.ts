// The README's policy example, run as written: its web.yaml and its shell lines are read from
// README.md itself, so the example cannot drift from what the CLI does. A policy that names a
// socket outside its namespace is refused in one line instead of silently doing nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { api } from '../helpers/https.js';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { tempDir } from '../helpers/util.js';

const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

/** The fenced block that starts with `firstLine`, without its fences. */
function block(readme: string, firstLine: string): string {
  const start = readme.indexOf(`${firstLine}\n`);
  assert.ok(start >= 0, `README has a block starting with ${firstLine}`);
  return readme.slice(start, readme.indexOf('```', start));
}

/** `npx postern a b "c d"` → ['a', 'b', 'c d'] (the README's lines use no other quoting). */
function argv(line: string): string[] {
  const command = line.replace(/\s+#.*$/, '').replace(/^npx postern\s+/, '');
  return [...command.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

describe('README: the policy example works as written', () => {
  let server: ServerHandle;
  let dir: string;
  let readme: string;

  before(async () => {
    readme = await readFile(README, 'utf8');
    dir = (await tempDir()).path;
    server = await startServer();
    const created = await server.cli(['socket', 'create', '--name', 'grafana', '--type', 'http', '--cloudauth']);
    assert.equal(created.code, 0, created.stderr);
    assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email: 'joe@corp.com', password: 'correct horse battery staple' } })).status, 201);
    await writeFile(join(dir, 'web.yaml'), block(readme, '# web.yaml'));
  });

  after(async () => {
    await cleanupAll();
  });

  test('before the socket is in namespace corp, apply refuses and says how to fix it', async () => {
    const refused = await server.cli(['policy', 'apply', '-f', join(dir, 'web.yaml')]);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr.trim(), 'postern: web.yaml: socket grafana is in namespace "" which is not under corp: tag it namespace=corp or put the policy in ""'.replace('web.yaml', join(dir, 'web.yaml')));
    assert.match((await server.cli(['policy', 'ls'])).stdout, /\(none\)/);
  });

  test('the README lines give the README answers', async () => {
    const lines = block(readme, 'npx postern socket update grafana --tag namespace=corp   # a policy in corp governs only sockets in corp (and below)').split('\n');
    const run = async (prefix: string) => {
      const line = lines.find((l) => l.startsWith(prefix));
      assert.ok(line, `README runs ${prefix}`);
      const args = argv(line).map((a) => (a === 'web.yaml' ? join(dir, 'web.yaml') : a));
      const result = await server.cli(args);
      assert.equal(result.code === 0 || prefix.includes('policy test'), true, `${line}: ${result.stderr}`);
      return { line, result, index: lines.indexOf(line) };
    };
    await run('npx postern socket update grafana');
    const applied = await run('npx postern policy apply -f web.yaml');
    assert.match(applied.line, /"policy corp\/web-rules applied \(version 1\)"/);
    assert.equal(applied.result.stdout.trim(), 'policy corp/web-rules applied (version 1)');
    const ls = await server.cli(['policy', 'ls']);
    assert.match(ls.stdout, /corp\/web-rules\s+1\s+grafana\s+2/);
    const tested = await run('npx postern policy test --socket grafana');
    const printed = lines.slice(tested.index + 1).filter((l) => l.startsWith('#')).map((l) => l.replace(/^# ?/, ''));
    const expected = printed.slice(0, printed.findIndex((l) => l.startsWith('=> ')) + 1);
    assert.deepEqual(tested.result.stdout.trimEnd().split('\n'), expected);
  });
});
