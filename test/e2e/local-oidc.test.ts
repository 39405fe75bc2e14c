// E2E: a local OpenID provider, as a new user adds one to try Postern: `idp add oidc --issuer
// http://127.0.0.1:… --allow-insecure-issuer --groups-claim groups` against a real oidc-provider
// on a loopback http port. With the flag it signs in and the groups arrive (the groups scope is
// requested by default); without the flag it is refused with one line naming the flag; a
// non-loopback http issuer is refused even with it, from the CLI and the server's YAML file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI, cleanupAll, spawnCli, startServer } from '../helpers/processes.js';
import type { CliResult, ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { CookieBrowser } from '../helpers/browser.js';
import { OP_CLIENT_ID, OP_CLIENT_SECRET, startOpenIdProvider } from '../helpers/openid-provider.js';
import type { TestOpenIdProvider } from '../helpers/openid-provider.js';
import { freePort, tempDir, withTimeout } from '../helpers/util.js';

/** `postern <args>` with `stdin` piped in (the client secret). */
async function cliWithStdin(server: ServerHandle, args: readonly string[], stdin: string): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], { env: server.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(stdin);
  const code = await withTimeout(new Promise<number | null>((resolve) => child.on('close', resolve)), 30_000, `postern ${args.join(' ')}`);
  return { code, stdout, stderr };
}

function assertOneLine(result: CliResult, pattern: RegExp): void {
  assert.equal(result.code, 1, result.stdout);
  assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr);
  assert.match(result.stderr, pattern);
}

describe('a local OpenID provider over plain http on loopback', () => {
  let server: ServerHandle;
  let op: TestOpenIdProvider;

  before(async () => {
    const port = await freePort();
    op = await startOpenIdProvider([`https://localhost:${port}/auth/oidc/local/callback`]);
    server = await startServer({ port });
  });

  after(async () => {
    await cleanupAll();
    await op?.close();
  });

  test('without --allow-insecure-issuer: refused with one line that names the flag', async () => {
    const refused = await server.cli(['idp', 'add', 'oidc', '--name', 'local', '--issuer', op.issuer, '--client-id', OP_CLIENT_ID]);
    assertOneLine(refused, /^postern: issuer "http:\/\/127\.0\.0\.1:\d+" uses plain http: add --allow-insecure-issuer/);
    assert.equal((await api(server, '/api/v1/identity-providers/local')).status, 404);
  });

  test('a non-loopback http issuer is refused even with the flag', async () => {
    for (const issuer of ['http://idp.example', 'http://10.1.2.3:9400', 'http://localhost.idp.example:9400', 'http://[::ffff:127.0.0.1]:9400']) {
      const refused = await server.cli(['idp', 'add', 'oidc', '--name', 'remote', '--issuer', issuer, '--client-id', 'x', '--allow-insecure-issuer']);
      assertOneLine(refused, /must be an https:\/\/ URL: plain http is allowed only for a provider on this machine \(127\.0\.0\.0\/8, ::1, localhost\)/);
    }
    const viaApi = await api(server, '/api/v1/identity-providers', { method: 'POST', body: { name: 'remote', kind: 'oidc', config: { issuer: 'http://idp.example', client_id: 'x', allow_insecure_issuer: true } } });
    assert.equal(viaApi.status, 400, viaApi.text);
  });

  test('with the flag: signs in, and the groups arrive', async () => {
    const added = await cliWithStdin(server, ['idp', 'add', 'oidc', '--name', 'local', '--display-name', 'Local', '--issuer', op.issuer, '--client-id', OP_CLIENT_ID, '--client-secret-stdin', '--allow-insecure-issuer', '--groups-claim', 'groups'], `${OP_CLIENT_SECRET}\n`);
    assert.equal(added.code, 0, added.stderr);
    const shown = (await api(server, '/api/v1/identity-providers/local')).json<{ config: Record<string, unknown> }>();
    assert.equal(shown.config.allow_insecure_issuer, true);

    op.accounts.set('dana', { email: 'dana@corp.example', email_verified: true, name: 'Dana', groups: ['admins', 'eng'] });
    op.signInAs = 'dana';
    const browser = new CookieBrowser(server);
    let url = `${server.url}/auth/oidc/local/start`;
    let asked: URL | undefined;
    for (let hop = 0; hop < 12 && new URL(url).pathname !== '/auth/oidc/local/callback'; hop++) {
      const res = await browser.request(url);
      assert.ok(res.status >= 300 && res.status < 400, `${res.status} at ${url}: ${res.text.slice(0, 300)}`);
      url = new URL(res.headers.location!, url).href;
      if (new URL(url).pathname.endsWith('/auth')) asked ??= new URL(url);
    }
    assert.deepEqual(asked?.searchParams.get('scope')?.split(' '), ['openid', 'email', 'profile', 'groups'], 'the scope that carries the groups claim is requested');
    const back = await browser.request(url);
    assert.ok(back.status === 303 || back.status === 302 || back.status === 200, `${back.status}: ${back.text.slice(0, 300)}`);
    const user = await api(server, '/api/v1/users/dana@corp.example');
    assert.equal(user.status, 200, user.text);
    assert.deepEqual(user.json<{ groups: string[] }>().groups, ['admins', 'eng']);
  });

  test('the server\'s YAML file: allow_insecure_issuer works on loopback and is refused elsewhere', async () => {
    const dir = (await tempDir('postern-local-oidc-')).path;
    const file = join(dir, 'server.yaml');
    await writeFile(file, stringify({ identity_providers: [{ name: 'far', kind: 'oidc', issuer: 'http://idp.example', client_id: 'x', allow_insecure_issuer: true }] }));
    const child = spawnCli('server with a remote http issuer', ['server', '--listen', `127.0.0.1:${await freePort()}`, '--config', file, '--data-dir', join(dir, 'data')], server.env);
    const exit = await withTimeout(child.exited, 30_000, 'the server to refuse its config');
    assert.notEqual(exit.code, 0);
    assert.match(child.stderr, /identity_providers: far: issuer "http:\/\/idp\.example" must be an https:\/\/ URL: plain http is allowed only for a provider on this machine/);
  });
});
