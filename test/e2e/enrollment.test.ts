// E2E: enrollment refusals (wrong, foreign, reused, expired join tokens) and one-line errors from the CLI, the server and the API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { baseEnv, cleanupAll, runCli, startConnector, startServer, writeConnectorConfig } from '../helpers/processes.js';
import type { CliResult, ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { freePort, tempDir } from '../helpers/util.js';

/** Exactly one `postern: …` line on stderr, nothing on stdout, the given exit code; returns the message. */
function oneLineError(result: CliResult, exitCode = 1): string {
  assert.equal(result.stdout, '', `nothing on stdout (stderr: ${result.stderr})`);
  assert.match(result.stderr, /^postern: [^\n]+\n$/, `exactly one line on stderr, got:\n${result.stderr}`);
  assert.equal(result.code, exitCode, result.stderr);
  return result.stderr.slice('postern: '.length).trim();
}

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
}

describe('enrollment and errors', () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let workDir: string;

  const createToken = async (): Promise<{ id: string; token: string }> => {
    const result = await server.cli(['connector', 'token', 'create', '--json', '--ttl', '10m', '--socket', 'enroll']);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as { id: string; token: string };
  };
  const config = (file: string, token: string) => writeConnectorConfig(workDir, file, {
    server: server.url, token, sockets: [{ name: 'enroll', type: 'http', upstream: upstream.url }],
  });
  const connectorIds = async (): Promise<string[]> =>
    (await api(server, '/api/v1/connectors')).json<{ connectors: { id: string }[] }>().connectors.map((c) => c.id).sort();
  const startWith = (path: string) => runCli(['connector', 'start', '--config', path], server.env);

  before(async () => {
    workDir = (await tempDir()).path;
    upstream = await startUpstream();
    server = await startServer();
    const res = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'enroll', upstream: upstream.url } });
    assert.equal(res.status, 201, res.text);
  });

  after(async () => {
    await cleanupAll();
    await upstream?.close();
  });

  test('a wrong join token is refused in one line that names the token', async () => {
    const { token } = await createToken();
    const [, , pin] = token.split('.');
    const path = await config('wrong.yaml', `pjt1.${randomBytes(32).toString('base64url')}.${pin}`);
    assert.match(oneLineError(await startWith(path)), /join token is not valid/);
    assert.equal(existsSync(`${path}.creds.json`), false, 'no credentials written');
  });

  test('a malformed join token and one pinned to another CA are refused in one line', async () => {
    const malformed = await config('malformed-token.yaml', 'not-a-join-token');
    assert.match(oneLineError(await startWith(malformed)), /join token is malformed/);
    const { token } = await createToken();
    const [prefix, secret] = token.split('.');
    const foreign = await config('foreign.yaml', `${prefix}.${secret}.${randomBytes(32).toString('base64url')}`);
    assert.match(oneLineError(await startWith(foreign)), /does not match the join token's pin/);
  });

  test('a join token works once; reusing it is refused ("already used")', async () => {
    const { id, token } = await createToken();
    const first = await startConnector(['connector', 'start', '--config', await config('first.yaml', token)], server.env);
    assert.equal((await first.stop('SIGTERM')).code, 0);
    const connectorsBefore = await connectorIds();
    const again = oneLineError(await startWith(await config('second.yaml', token)));
    assert.match(again, /join token has already been used/);
    assert.deepEqual(await connectorIds(), connectorsBefore, 'the refused enrollment left no connector behind');
    const listed = await server.cli(['connector', 'token', 'ls', '--json']);
    const record = (JSON.parse(listed.stdout) as { id: string; usedAt: string | null; connectorId: string | null }[]).find((t) => t.id === id);
    assert.ok(record?.usedAt, 'usedAt is recorded');
    assert.equal(record.connectorId, first.id, 'the token names the connector it enrolled');
  });

  test('an expired join token is refused with its expiry', async () => {
    const { id, token } = await createToken();
    // Tokens live at least 60 s; move this one's expiry into the past in the store instead of waiting.
    const db = new Database(join(server.dataDir, 'postern.db'), { timeout: 5_000 });
    try {
      assert.equal(db.prepare('UPDATE join_tokens SET expires_at = ? WHERE id = ?').run(new Date(Date.now() - 60_000).toISOString(), id).changes, 1);
    } finally {
      db.close();
    }
    assert.match(oneLineError(await startWith(await config('expired.yaml', token))), /join token expired at \d{4}-/);
  });

  test('malformed connector YAML: one line naming the file and the field, exit 1', async () => {
    const write = async (file: string, text: string) => {
      const path = join(workDir, file);
      await writeFile(path, text);
      return path;
    };
    const socket = (type: string, upstream: string) => `sockets:\n  - name: app\n    type: ${type}\n    upstream: ${upstream}\n`;
    const cases: { path: string; message: RegExp | string }[] = [];
    const badUpstream = await write('bad-upstream.yaml', `server: ${server.url}\n${socket('http', 'localhost:3000')}`);
    cases.push({ path: badUpstream, message: `${badUpstream}: sockets[0].upstream: must be a URL such as http://127.0.0.1:3000 or tcp://127.0.0.1:22` });
    const notYaml = await write('not-yaml.yaml', 'server: [unclosed\n  sockets: {\n');
    cases.push({ path: notYaml, message: new RegExp(`^${notYaml}: not valid YAML`) });
    cases.push({ path: await write('unknown-key.yaml', `server: ${server.url}\ncolour: blue\n${socket('http', 'http://127.0.0.1:1')}`), message: /unknown-key\.yaml: .*colour/ });
    cases.push({ path: await write('tls-http.yaml', `server: ${server.url}\n${socket('tls', 'http://127.0.0.1:1')}`), message: /"app" of type tls cannot use a http: upstream/ });
    cases.push({ path: await write('no-sockets.yaml', `server: ${server.url}\nsockets: []\n`), message: /no-sockets\.yaml: sockets: / });
    cases.push({ path: join(workDir, 'missing.yaml'), message: /cannot read .*missing\.yaml: ENOENT/ });
    const results = await Promise.all(cases.map(({ path }) => startWith(path)));
    results.forEach((result, i) => {
      const { message } = cases[i]!;
      if (typeof message === 'string') assert.equal(oneLineError(result), message);
      else assert.match(oneLineError(result), message);
    });
  });

  test('unknown flags, unknown commands and missing options: one line, exit 2', async () => {
    const env = baseEnv({ POSTERN_DATA_DIR: server.dataDir });
    const cases: { args: string[]; message: RegExp | string }[] = [
      { args: ['--bogus'], message: "unknown option '--bogus'" },
      { args: ['socket', 'ls', '--bogus'], message: "unknown option '--bogus'" },
      { args: ['connector', 'start', '--config', 'x.yaml', '--frobnicate'], message: "unknown option '--frobnicate'" },
      { args: ['frobnicate'], message: "unknown command 'frobnicate'" },
      { args: ['socket', 'create'], message: /required option '--name <name>' not specified/ },
    ];
    const results = await Promise.all(cases.map(({ args }) => runCli(args, env)));
    results.forEach((result, i) => {
      const { message } = cases[i]!;
      if (typeof message === 'string') assert.equal(oneLineError(result, 2), message);
      else assert.match(oneLineError(result, 2), message);
    });
  });

  test('`server` with a bad --listen (or a busy port) fails in one line', async () => {
    const env = baseEnv({ POSTERN_DATA_DIR: (await tempDir()).path });
    assert.equal(oneLineError(await runCli(['server', '--listen', 'nonsense'], env)), 'listen: "nonsense" is not host:port (e.g. 127.0.0.1:8443)');
    assert.match(oneLineError(await runCli(['server', '--listen', '127.0.0.1:70000'], env)), /^listen: "127\.0\.0\.1:70000" is not host:port/);
    const busy = net.createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => busy.listen(port, '127.0.0.1', resolve));
    try {
      assert.match(oneLineError(await runCli(['server', '--listen', `127.0.0.1:${port}`], env)), new RegExp(`EADDRINUSE.*127\\.0\\.0\\.1:${port}`));
    } finally {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    }
  });

  test('API without a token (or with a wrong one) answers 401 problem+json', async () => {
    for (const token of [null, 'pat1_not-a-real-token']) {
      const res = await api(server, '/api/v1/sockets', { token });
      assert.equal(res.status, 401);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const problem = res.json<Problem>();
      assert.equal(problem.status, 401);
      assert.equal(problem.code, 'unauthenticated');
      assert.match(problem.type, /^https:\/\//);
      assert.ok(problem.detail.length > 0);
    }
  });

  test('API with a bad body answers 400 problem+json naming the field', async () => {
    const cases: { body: unknown; field: RegExp }[] = [
      { body: { name: 'fine', type: 'ftp' }, field: /^body: type: / },
      { body: { name: 'Not A Label!' }, field: /^body: name: / },
      { body: { name: 'fine', colour: 'blue' }, field: /colour/ },
      { body: '{"name":', field: /JSON/ },
    ];
    for (const { body, field } of cases) {
      const res = await api(server, '/api/v1/sockets', { method: 'POST', body });
      assert.equal(res.status, 400, res.text);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const problem = res.json<Problem>();
      assert.equal(problem.code, 'bad_request');
      assert.match(problem.detail, field);
    }
    const tokenRes = await api(server, '/api/v1/connectors/tokens', { method: 'POST', body: { ttl_seconds: 5 } });
    assert.equal(tokenRes.status, 400);
    assert.match(tokenRes.json<Problem>().detail, /ttl_seconds/);
  });

  test('sockets, connectors and users page with ?after=&limit= (`next` until the last page); without them the whole list', async () => {
    for (const name of ['page-a', 'page-b', 'page-c']) assert.equal((await api(server, '/api/v1/sockets', { method: 'POST', body: { name } })).status, 201);
    for (const email of ['page-a@corp.example', 'page-b@corp.example', 'page-c@corp.example']) assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email } })).status, 201);
    const walk = async (path: string, field: string, key: string): Promise<string[]> => {
      const keys: string[] = [];
      let after: string | undefined;
      for (let pages = 0; pages < 50; pages++) {
        const res = await api(server, `${path}?limit=2${after === undefined ? '' : `&after=${encodeURIComponent(after)}`}`);
        assert.equal(res.status, 200, res.text);
        const body = res.json<Record<string, unknown> & { next?: string }>();
        const rows = body[field] as Record<string, string>[];
        assert.ok(rows.length <= 2);
        keys.push(...rows.map((r) => r[key]!));
        if (body.next === undefined) return keys;
        assert.equal(body.next, keys.at(-1), 'next is the key of the last row shown');
        after = body.next;
      }
      throw new Error(`${path} did not reach its last page`);
    };
    const whole = async (path: string, field: string, key: string) => {
      const body = (await api(server, path)).json<Record<string, unknown>>();
      assert.equal(body.next, undefined, `${path} without a page is the whole list`);
      return (body[field] as Record<string, string>[]).map((r) => r[key]!);
    };
    const sockets = await whole('/api/v1/sockets', 'sockets', 'name');
    assert.ok(sockets.length >= 4);
    assert.deepEqual(await walk('/api/v1/sockets', 'sockets', 'name'), sockets);
    assert.deepEqual(await walk('/api/v1/users', 'users', 'email'), await whole('/api/v1/users', 'users', 'email'));
    assert.deepEqual(await walk('/api/v1/connectors', 'connectors', 'id'), (await whole('/api/v1/connectors', 'connectors', 'id')).sort());

    const bad = await api(server, '/api/v1/sockets?limit=0');
    assert.equal(bad.status, 400);
    assert.match(bad.json<Problem>().detail, /^query: limit: /);
  });

  test('GET /api/v1/openapi.json is an OpenAPI 3.1 document listing /api/v1/sockets', async () => {
    const res = await api(server, '/api/v1/openapi.json', { token: null });
    assert.equal(res.status, 200);
    const doc = res.json<{
      openapi: string; info: { title: string; version: string };
      components: { securitySchemes: Record<string, unknown> };
      paths: Record<string, Record<string, { responses: Record<string, unknown>; security?: Record<string, unknown>[]; parameters?: { name: string; in: string; required: boolean }[] }>>;
    }>();
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    assert.equal(typeof doc.info.title, 'string');
    assert.equal(typeof doc.info.version, 'string');
    assert.ok(doc.paths['/api/v1/sockets']?.get && doc.paths['/api/v1/sockets'].post, 'GET and POST /api/v1/sockets');
    assert.ok(doc.paths['/api/v1/sockets/{name}']?.delete);
    const methods = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);
    for (const [path, item] of Object.entries(doc.paths)) {
      assert.match(path, /^\/api\/v1\//);
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const [method, operation] of Object.entries(item)) {
        assert.ok(methods.has(method), `${path}: ${method} is an HTTP method`);
        assert.ok(Object.keys(operation.responses).length > 0, `${method} ${path} has responses`);
        for (const name of templated) {
          assert.ok(operation.parameters?.some((p) => p.name === name && p.in === 'path' && p.required), `${method} ${path} declares {${name}}`);
        }
        for (const requirement of operation.security ?? []) {
          for (const scheme of Object.keys(requirement)) assert.ok(doc.components.securitySchemes[scheme], `${method} ${path}: scheme ${scheme} is defined`);
        }
      }
    }
  });
});
