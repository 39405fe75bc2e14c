// Canonical paths: a deny rule for /admin/* must hold however the client spells the path, for
// upstreams that decode (wsgiref), fold case or drop `;` parameters. What the policy decided is
// exactly what the upstream receives; what cannot be normalised safely is refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { curl } from '../helpers/https.js';
import { tempDir } from '../helpers/util.js';
import { head, startEdgeFixture, statuses } from './edge-fixture.js';
import type { EdgeFixture } from './edge-fixture.js';
import type { WsgiEcho } from '../helpers/wsgi.js';

describe('security: canonical paths', () => {
  let f: EdgeFixture;

  before(async () => {
    f = await startEdgeFixture();
  });

  after(async () => {
    await f?.close();
  });

  const get = async (socket: string, path: string) => {
    const cookie = socket === 'pub' ? '' : await f.cookieFor(socket);
    const result = await curl(['-sS', '--path-as-is', '-H', 'Accept: application/json', ...(cookie ? ['-H', `Cookie: ${cookie}`] : []), '-w', '\n%{http_code}', `https://${socket}.localhost:${f.server.port}${path}`], { caFile: f.server.caFile });
    assert.equal(result.code, 0, result.stderr);
    const at = result.stdout.lastIndexOf('\n');
    return { status: Number(result.stdout.slice(at + 1)), body: result.stdout.slice(0, at) };
  };

  const DENIED_SPELLINGS = [
    '/admin/x', '/%61dmin/x', '/%61%64%6d%69%6e/x', '/ADMIN/x', '/Admin/X', '/admin//x', '//admin/x', '/admin/./x', '/x/../admin/x',
    '/public/%2e%2e/admin/x', '/public/%2E%2E/%2e/admin/x', '/a/b/../../admin/x', '/%2e/admin/x', '/../admin/x',
  ];

  for (const socket of ['wsgi', 'app']) {
    test(`every spelling of /admin/x is denied on ${socket}`, async () => {
      for (const path of DENIED_SPELLINGS) {
        const { status, body } = await get(socket, path);
        assert.equal(status, 403, `${path}: ${body}`);
      }
    });
  }

  test('what cannot be normalised safely is refused with a code, and never reaches the upstream', async () => {
    const before = f.node.seen.length;
    for (const path of ['/admin;/x', '/admin;jsessionid=1/x', '/admin%2fx', '/admin%2Fx', '/admin%5cx', '/admin\\x', '/admin%00/x', '/a%0d%0aX-Auth-Email:%20x']) {
      for (const socket of ['app', 'pub']) {
        const { status, body } = await get(socket, path);
        assert.equal(status, 400, `${socket}${path}: ${body}`);
        assert.match(body, /path_ambiguous/, `${socket}${path}`);
      }
    }
    assert.equal(f.node.seen.length, before);
  });

  test('policy test decides the path the edge would decide', async () => {
    for (const path of ['/%61dmin/x', '/ADMIN/x', '/x/../admin/x']) {
      const result = await f.server.cli(['policy', 'test', '--socket', 'wsgi', '--email', 'ana@corp.example', '--ip', '127.0.0.1', '--method', 'GET', '--path', path]);
      assert.match(result.stdout, /^DENY: denied by rule no-admin#1/, `${path}: ${result.stdout}${result.stderr}`);
    }
    const ambiguous = await f.server.cli(['policy', 'test', '--socket', 'wsgi', '--email', 'ana@corp.example', '--ip', '127.0.0.1', '--path', '/admin;/x']);
    assert.equal(ambiguous.code, 1);
    assert.match(ambiguous.stderr, /the edge refuses this path before any policy \(path_ambiguous\)/);
  });

  test('a fragment in the request target is refused (it is never sent by a browser)', async () => {
    const before = f.node.seen.length;
    for (const target of ['/x#/../admin/x', '/public#', '/x?#']) {
      const result = await f.raw('pub', [head(f, 'pub', `GET ${target} HTTP/1.1`, ['Connection: close'])]);
      assert.deepEqual(statuses(result.text), [400], `${target}: ${result.text}`);
      assert.match(result.text, /request_target_invalid|bad_request/);
    }
    assert.equal(f.node.seen.length, before);
  });

  test('the upstream receives the path the policy decided on', async () => {
    const { status, body } = await get('wsgi', '/%70ublic/./a//b/../c?q=%2F..%2Fadmin');
    assert.equal(status, 200, body);
    const echo = JSON.parse(body) as WsgiEcho;
    assert.equal(echo.raw_path, '/public/a/c?q=%2F..%2Fadmin');
    assert.equal(echo.path_info, '/public/a/c');
    const node = await get('pub', '/caf%c3%a9/%7euser');
    assert.equal(node.status, 200, node.body);
    assert.equal((JSON.parse(node.body) as { url: string }).url, '/caf%C3%A9/~user');
  });

  test('a socket created with --raw-paths keeps ambiguous sequences as sent', async () => {
    for (const [path, sent] of [['/files/a%2Fb', '/files/a%2Fb'], ['/files;v=1/x', '/files;v=1/x'], ['/files/a%5cb', '/files/a%5Cb'], ['/f%69les/./a%2fb', '/files/a%2Fb']]) {
      const { status, body } = await get('rawapp', path!);
      assert.equal(status, 200, `${path}: ${body}`);
      assert.equal((JSON.parse(body) as { url: string }).url, sent);
    }
    const shown = await f.server.cli(['socket', 'show', 'rawapp', '--json']);
    assert.equal((JSON.parse(shown.stdout) as { rawPaths: boolean }).rawPaths, true);
  });

  test('on a raw-paths socket, a deny rule with paths catches every ambiguous path', async () => {
    const file = join((await tempDir()).path, 'raw-deny.yaml');
    await writeFile(file, 'name: raw-no-admin\nsockets: [rawapp]\nrules:\n  - effect: deny\n    what: { http: { paths: ["/admin/*"] } }\n');
    const applied = await f.server.cli(['policy', 'apply', '-f', file]);
    assert.equal(applied.code, 0, applied.stderr);
    for (const path of ['/admin/x', '/ADMIN/x', '/admin%2fx', '/files;v=1/x', '/%61dmin/x']) {
      const { status, body } = await get('rawapp', path);
      assert.equal(status, 403, `${path}: ${body}`);
    }
    assert.equal((await get('rawapp', '/files/plain')).status, 200);
  });
});
