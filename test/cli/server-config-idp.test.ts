// `identity_providers:` in the server config file: each entry's extra keys become the provider's
// config, the secret comes inline, from an environment variable or from a file; bad entries fail
// with one line naming the provider.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PosternError } from '../../src/errors.js';
import { resolveServerSettings } from '../../src/cli/server-config.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'postern-server-config-idp-'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function settingsFrom(yaml: string, env: NodeJS.ProcessEnv = {}) {
  const file = join(dir, `server-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, yaml);
  return resolveServerSettings({ config: file }, { XDG_DATA_HOME: join(dir, 'xdg'), ...env });
}

test('identity_providers: entries become configured providers with their secrets', async () => {
  await writeFile(join(dir, 'gh.secret'), 'from-a-file\n');
  const settings = await settingsFrom([
    'identity_providers:',
    '  - name: corp',
    '    kind: oidc',
    '    display_name: Corp SSO',
    '    issuer: https://id.corp.example',
    '    client_id: abc',
    '    client_secret_env: CORP_SECRET',
    '    groups_claim: groups',
    '    group_map: { idp-admins: admins }',
    '  - name: gh',
    '    kind: github',
    '    client_id: Iv1.x',
    '    client_secret_file: gh.secret',
    '    disabled: true',
  ].join('\n'), { CORP_SECRET: 'from-env' });
  assert.deepEqual(settings.identityProviders, [
    { name: 'corp', kind: 'oidc', displayName: 'Corp SSO', clientSecret: 'from-env', config: { issuer: 'https://id.corp.example', client_id: 'abc', groups_claim: 'groups', group_map: { 'idp-admins': 'admins' } } },
    { name: 'gh', kind: 'github', clientSecret: 'from-a-file', disabled: true, config: { client_id: 'Iv1.x' } },
  ]);
  assert.equal((await settingsFrom('domain: x.example\n')).identityProviders, undefined, 'no section, no providers');
});

test('identity_providers: a missing secret variable or a bad kind fails with one line', async () => {
  const fails = async (yaml: string, pattern: RegExp) => {
    await assert.rejects(settingsFrom(yaml), (err: unknown) => {
      assert.ok(err instanceof PosternError && err.code === 'config_invalid', String(err));
      assert.doesNotMatch(err.message, /\n/);
      assert.match(err.message, pattern);
      return true;
    });
  };
  await fails('identity_providers:\n  - { name: corp, kind: oidc, client_id: a, issuer: "https://x.example", client_secret_env: NOPE_NOT_SET }\n', /corp: the environment variable NOPE_NOT_SET/);
  await fails('identity_providers:\n  - { name: corp, kind: ldap }\n', /kind/);
  await fails('identity_providers:\n  - { name: corp, kind: oidc, client_secret: a, client_secret_env: B }\n', /only one of/);
});
