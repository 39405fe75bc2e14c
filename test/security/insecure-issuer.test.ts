// Security: an OpenID issuer over plain http. The API once took an undocumented
// `insecure_issuer_for_tests` field that let a provider anywhere be reached without TLS, so whoever
// sat on the path could read authorization codes and serve forged ID tokens. Now plain http is
// allowed only to this machine (127.0.0.0/8, ::1, localhost) with `allow_insecure_issuer`, on
// create and on update, whatever the spelling of the host.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';

const REMOTE = [
  'http://idp.example', 'http://IDP.example:80/realms/corp', 'http://10.0.0.8:9400', 'http://192.168.1.1', 'http://0.0.0.0:9400',
  'http://[::ffff:127.0.0.1]:9400', 'http://[fe80::1]:9400', 'http://localhost.idp.example', 'http://127.0.0.1.nip.io:9400', 'http://localhost@idp.example',
];

describe('plain-http issuers stay on this machine', () => {
  let server: ServerHandle;

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await cleanupAll();
  });

  test('creating a provider with a remote http issuer is refused, with either setting', async () => {
    for (const issuer of REMOTE) {
      for (const flag of ['allow_insecure_issuer', 'insecure_issuer_for_tests']) {
        const res = await api(server, '/api/v1/identity-providers', { method: 'POST', body: { name: 'far', kind: 'oidc', config: { issuer, client_id: 'x', [flag]: true } } });
        assert.equal(res.status, 400, `${issuer} with ${flag}: ${res.text}`);
      }
    }
    assert.equal((await api(server, '/api/v1/identity-providers/far')).status, 404);
  });

  test('an https provider cannot be switched to a remote http issuer later', async () => {
    const created = await api(server, '/api/v1/identity-providers', { method: 'POST', body: { name: 'corp', kind: 'oidc', config: { issuer: 'https://id.corp.example', client_id: 'x' } } });
    assert.equal(created.status, 201, created.text);
    for (const issuer of REMOTE) {
      const res = await api(server, '/api/v1/identity-providers/corp', { method: 'PATCH', body: { config: { issuer, allow_insecure_issuer: true } } });
      assert.equal(res.status, 400, `${issuer}: ${res.text}`);
    }
    const shown = (await api(server, '/api/v1/identity-providers/corp')).json<{ config: { issuer: string } }>();
    assert.equal(shown.config.issuer, 'https://id.corp.example');
  });

  test('loopback http needs the setting, and then works', async () => {
    for (const issuer of ['http://127.0.0.1:9400', 'http://127.8.9.10', 'http://[::1]:9400', 'http://localhost:9400']) {
      const refused = await api(server, '/api/v1/identity-providers', { method: 'POST', body: { name: 'local', kind: 'oidc', config: { issuer, client_id: 'x' } } });
      assert.equal(refused.status, 400, refused.text);
      assert.match(refused.json<{ detail: string }>().detail, /add --allow-insecure-issuer/);
      const created = await api(server, '/api/v1/identity-providers', { method: 'POST', body: { name: 'local', kind: 'oidc', config: { issuer, client_id: 'x', allow_insecure_issuer: true } } });
      assert.equal(created.status, 201, `${issuer}: ${created.text}`);
      assert.equal((await api(server, '/api/v1/identity-providers/local', { method: 'DELETE' })).status, 204);
    }
  });
});
