// Which credential the CLI sends: the stored sign-in, with the local admin token file behind it
// only for the server that data dir belongs to, and never behind a token given explicitly.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { resolveContext } from '../../src/cli/context.js';
import type { CliContext } from '../../src/cli/context.js';
import { saveLogin } from '../../src/cli/credentials.js';
import type { ApiClientOptions } from '../../src/api-client/index.js';

let dir = '';
let env: NodeJS.ProcessEnv = {};
const LOCAL = 'https://localhost:9443';
const OTHER = 'https://postern.elsewhere.example:8443';

/** The options the context's client was made with (what it will send). */
const sent = (ctx: CliContext) => (ctx.client() as unknown as { options: ApiClientOptions }).options;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'postern-context-'));
  const data = join(dir, 'data');
  await mkdir(data);
  await writeFile(join(data, 'server.json'), JSON.stringify({ url: LOCAL }));
  await writeFile(join(data, 'admin.token'), 'the-admin-token\n');
  env = { POSTERN_DATA_DIR: data, POSTERN_CONFIG_DIR: join(dir, 'config') };
  const login = (token: string) => ({ token, email: 'bob@corp.example', sessionId: 'ses_1', expiresAt: new Date(Date.now() + 3_600_000).toISOString(), savedAt: new Date().toISOString() });
  saveLogin(join(dir, 'config'), LOCAL, login('pst1_local'));
  saveLogin(join(dir, 'config'), OTHER, login('pst1_other'));
});
after(() => rm(dir, { recursive: true, force: true }));

test('on the server machine: the sign-in first, the admin token file behind it', () => {
  const ctx = resolveContext({}, env);
  assert.equal(ctx.tokenSource, 'login');
  assert.equal(sent(ctx).token, 'pst1_local');
  assert.equal(sent(ctx).adminFallbackToken, 'the-admin-token');
});

test('another server never gets this machine\'s admin token', () => {
  const ctx = resolveContext({ server: OTHER }, env);
  assert.equal(sent(ctx).token, 'pst1_other');
  assert.equal(sent(ctx).adminFallbackToken, undefined);
});

test('an explicit token is what is sent, alone', () => {
  for (const ctx of [resolveContext({ token: 'pst1_flag' }, env), resolveContext({}, { ...env, POSTERN_TOKEN: 'pst1_env' })]) {
    assert.match(sent(ctx).token!, /^pst1_(flag|env)$/);
    assert.equal(sent(ctx).adminFallbackToken, undefined);
  }
});

test('without a sign-in the admin token file is the token', () => {
  const ctx = resolveContext({}, { ...env, POSTERN_CONFIG_DIR: join(dir, 'empty') });
  assert.equal(ctx.tokenSource, 'admin-file');
  assert.equal(sent(ctx).token, 'the-admin-token');
  assert.equal(sent(ctx).adminFallbackToken, undefined);
});
