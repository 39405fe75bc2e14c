// The policy API as the dashboard's editor uses it, on a real server: every problem of a text
// placed on its line and column (syntax and schema), an apply with a problem storing nothing,
// versions with their YAML, author and time, paged either way, and `policies/test` answering
// with the very lines `postern policy test` prints.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import type { PolicyCheckAnswer, PolicyTestAnswer, PolicyVersionView, PolicyVersionsAnswer, PolicyView } from '../../src/control/policy-types.js';

const GOOD = [
  'name: web-rules',
  'sockets: [app]',
  'rules:',
  '  - name: staff-read',
  '    effect: allow',
  '    who: { group: [staff] }',
  '    what: { http: { methods: [GET] } }',
  '  - name: no-admin',
  '    effect: deny',
  '    what: { http: { paths: ["/admin/*"] } }',
  '',
].join('\n');

describe('the policy API for the editor', () => {
  let server: ServerHandle;
  const check = async (text: string) => {
    const res = await api(server, '/api/v1/policies/check', { method: 'POST', body: { text } });
    assert.equal(res.status, 200, res.text);
    return res.json<PolicyCheckAnswer>();
  };

  before(async () => {
    server = await startServer();
    assert.equal((await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'app', type: 'http' } })).status, 201);
    assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email: 'ana@corp.example', password: 'correct horse battery staple', groups: ['staff'] } })).status, 201);
    const applied = await api(server, '/api/v1/policies', { method: 'PUT', body: { text: GOOD } });
    assert.equal(applied.status, 200, applied.text);
  });

  after(async () => {
    await cleanupAll();
  });

  test('a schema typo is placed on its line and column: a wrong value at the value, an unknown field at its key', async () => {
    const typo = GOOD.replace('    effect: deny', '    effect: dny').replace('    who: { group: [staff] }', '    whoo: { group: [staff] }');
    const answer = await check(typo);
    assert.equal(answer.valid, false);
    assert.equal(answer.document, null);
    const byPath = new Map(answer.errors.map((e) => [e.path, e]));
    assert.deepEqual(byPath.get('rules[1].effect'), { line: 9, column: 13, path: 'rules[1].effect', message: 'expected allow or deny, got "dny"' });
    assert.deepEqual(byPath.get('rules[0].whoo'), { line: 6, column: 5, path: 'rules[0].whoo', message: 'unknown field' });
    assert.equal(answer.errors.length, 2, JSON.stringify(answer.errors));
  });

  test('a missing field is placed at its parent; syntax errors where the parser stopped; the good text is valid with its ref', async () => {
    const missing = await check(GOOD.replace('    effect: deny\n', ''));
    assert.deepEqual(missing.errors.map((e) => [e.line, e.path, e.message]), [[8, 'rules[1].effect', 'expected allow or deny, got undefined']]);
    const syntax = await check('name: p\nrules:\n  - effect: allow\n    who: {email: [a\n');
    assert.equal(syntax.valid, false);
    assert.equal(syntax.errors[0]!.path, '');
    assert.ok(syntax.errors[0]!.line >= 4, JSON.stringify(syntax.errors));
    assert.deepEqual((await check('{"name": "p", "rules": [{"effect": "allow",}]}')).errors.map((e) => e.line), [1]);
    const good = await check(GOOD);
    assert.deepEqual([good.valid, good.errors, good.ref], [true, [], 'web-rules']);
  });

  test('an apply with a typo answers 400 naming the line and stores nothing', async () => {
    const res = await api(server, '/api/v1/policies', { method: 'PUT', body: { text: GOOD.replace('effect: deny', 'effect: dny') } });
    assert.equal(res.status, 400, res.text);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    const problem = res.json<{ detail: string; code: string; errors: unknown[] }>();
    assert.equal(problem.detail, 'line 9, column 13: rules[1].effect: expected allow or deny, got "dny"');
    assert.equal(problem.code, 'bad_request');
    assert.deepEqual(problem.errors, [{ line: 9, column: 13, path: 'rules[1].effect', message: 'expected allow or deny, got "dny"' }], 'each problem with its line, for an editor');
    const validated = await api(server, '/api/v1/policies/validate', { method: 'POST', body: { text: GOOD.replace('effect: deny', 'effect: dny') } });
    assert.equal(validated.status, 400);
    assert.deepEqual(validated.json<{ errors: unknown[] }>().errors, problem.errors);
    const stored = (await api(server, '/api/v1/policies/web-rules')).json<PolicyView>();
    assert.equal(stored.version, 1);
    assert.match(stored.yaml, /effect: deny/);
    assert.equal((await api(server, '/api/v1/policies/web-rules/versions')).json<PolicyVersionsAnswer>().versions.length, 1);
  });

  test('versions carry their YAML, author and time, newest first on request, one page at a time', async () => {
    for (const method of ['HEAD', 'POST']) {
      const res = await api(server, '/api/v1/policies', { method: 'PUT', body: { text: GOOD.replace('methods: [GET]', `methods: [GET, ${method}]`) } });
      assert.equal(res.status, 200, res.text);
    }
    const first = (await api(server, '/api/v1/policies/web-rules/versions?order=desc&limit=2')).json<PolicyVersionsAnswer>();
    assert.deepEqual(first.versions.map((v) => v.version), [3, 2]);
    assert.equal(first.next, 2);
    assert.equal(first.versions[0]!.author, 'token:first-admin');
    assert.ok(!Number.isNaN(Date.parse(first.versions[0]!.createdAt)));
    assert.match(first.versions[0]!.yaml!, /methods:\n\s+- GET\n\s+- POST/);
    const rest = (await api(server, `/api/v1/policies/web-rules/versions?order=desc&limit=2&cursor=${first.next}`)).json<PolicyVersionsAnswer>();
    assert.deepEqual([rest.versions.map((v) => v.version), rest.next], [[1], null]);
    const oldest = (await api(server, '/api/v1/policies/web-rules/versions')).json<PolicyVersionsAnswer>();
    assert.deepEqual(oldest.versions.map((v) => v.version), [1, 2, 3]);
    const one = (await api(server, '/api/v1/policies/web-rules/versions/1')).json<PolicyVersionView>();
    assert.deepEqual([one.version, one.yaml], [1, rest.versions[0]!.yaml]);
    assert.equal((await api(server, '/api/v1/policies/web-rules/versions/9')).status, 404);
  });

  test('test answers with per-rule outcomes and exactly the lines `postern policy test` prints', async () => {
    const cases: { body: Record<string, unknown>; args: string[]; effect: string; rule: string | null }[] = [
      { body: { email: 'ana@corp.example', method: 'GET', path: '/home' }, args: ['--email', 'ana@corp.example', '--method', 'GET', '--path', '/home'], effect: 'allow', rule: 'web-rules#staff-read' },
      { body: { email: 'ana@corp.example', method: 'GET', path: '/admin/users' }, args: ['--email', 'ana@corp.example', '--method', 'GET', '--path', '/admin/users'], effect: 'deny', rule: 'web-rules#no-admin' },
      { body: { email: 'new@corp.example', groups: ['guests'], method: 'GET', path: '/' }, args: ['--email', 'new@corp.example', '--group', 'guests', '--method', 'GET', '--path', '/'], effect: 'deny', rule: null },
    ];
    for (const c of cases) {
      const res = await api(server, '/api/v1/policies/test', { method: 'POST', body: { socket: 'app', ip: '10.1.2.3', ...c.body } });
      assert.equal(res.status, 200, res.text);
      const answer = res.json<PolicyTestAnswer>();
      assert.deepEqual([answer.effect, answer.rule], [c.effect, c.rule]);
      assert.deepEqual(answer.rules.map((r) => r.label), ['web-rules#staff-read', 'web-rules#no-admin']);
      const printed = await server.cli(['policy', 'test', '--socket', 'app', '--ip', '10.1.2.3', ...c.args]);
      assert.equal(printed.code, 0, printed.stderr);
      assert.deepEqual(answer.lines, printed.stdout.trimEnd().split('\n'));
    }
    const stranger = (await api(server, '/api/v1/policies/test', { method: 'POST', body: { socket: 'app', ip: '10.1.2.3', email: 'new@corp.example', groups: ['guests'], method: 'GET', path: '/' } })).json<PolicyTestAnswer>();
    assert.deepEqual(stranger.groups, ['guests']);
    assert.equal(stranger.rules[0]!.outcome, 'who-group');
  });
});
