// Which issuers Postern talks to: https; plain http only to loopback addresses and only with
// allow_insecure_issuer; the endpoints a plain-http provider names must stay on this machine;
// the scopes requested by default carry the groups claim.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkIssuerUrl, isLoopbackHost, loopbackOnlyFetch } from '../../src/identity/issuer-url.js';
import { OidcClient, newTransaction, requestedScopes } from '../../src/identity/oidc.js';
import { PosternError } from '../../src/errors.js';

function refused(issuer: string, allow: boolean, pattern: RegExp): void {
  assert.throws(() => checkIssuerUrl(issuer, allow), (err: unknown) => {
    assert.ok(err instanceof PosternError && err.code === 'config_invalid', String(err));
    assert.doesNotMatch(err.message, /\n/);
    assert.match(err.message, pattern);
    return true;
  }, issuer);
}

test('loopback hosts: 127.0.0.0/8, ::1 and localhost, nothing that only looks like them', () => {
  for (const host of ['127.0.0.1', '127.1.2.3', '127.255.255.254', '[::1]', 'localhost', 'LOCALHOST']) assert.ok(isLoopbackHost(host), host);
  for (const host of ['128.0.0.1', '10.0.0.1', '0.0.0.0', '[::]', '[::ffff:7f00:1]', 'localhost.example', 'evil-localhost', '127.0.0.1.nip.io', 'app.localhost', '[fe80::1]']) {
    assert.ok(!isLoopbackHost(host), host);
  }
});

test('issuers: https always; http on loopback only with the flag; never elsewhere', () => {
  assert.equal(checkIssuerUrl('https://id.corp.example', false).host, 'id.corp.example');
  for (const issuer of ['http://127.0.0.1:9400', 'http://localhost:9400/realms/x', 'http://[::1]:9400', 'http://127.1:9400', 'http://2130706433:9400']) {
    assert.equal(checkIssuerUrl(issuer, true).protocol, 'http:', issuer);
    refused(issuer, false, /uses plain http: add --allow-insecure-issuer/);
  }
  for (const issuer of ['http://idp.example', 'http://10.0.0.5:9400', 'http://[::ffff:127.0.0.1]:9400', 'http://localhost.evil.example', 'http://127.0.0.1.nip.io', 'http://0.0.0.0:9400']) {
    refused(issuer, true, /must be an https:\/\/ URL: plain http is allowed only for a provider on this machine/);
    refused(issuer, false, /must be an https:\/\/ URL/);
  }
  refused('ftp://127.0.0.1', true, /must be an https:\/\/ URL/);
  refused('not a url', true, /is not a URL/);
});

test('a plain-http provider cannot send Postern to plain http elsewhere', async () => {
  const seen: string[] = [];
  const guarded = loopbackOnlyFetch((async (url: string) => {
    seen.push(url);
    return new Response('{}');
  }) as typeof fetch);
  await guarded('http://127.0.0.1:9400/token', {});
  await guarded('https://id.corp.example/token', {});
  await assert.rejects(guarded('http://attacker.example/token', {}), /allowed only on this machine/);
  assert.deepEqual(seen, ['http://127.0.0.1:9400/token', 'https://id.corp.example/token']);
});

test('scopes: default openid email profile, plus groups with a groups claim (not for presets); a list replaces it', () => {
  assert.deepEqual(requestedScopes({}), ['openid', 'email', 'profile']);
  assert.deepEqual(requestedScopes({ groups_claim: 'groups' }), ['openid', 'email', 'profile', 'groups']);
  assert.deepEqual(requestedScopes({ groups_claim: 'groups', preset: 'google' }), ['openid', 'email', 'profile']);
  assert.deepEqual(requestedScopes({ groups_claim: 'roles', scopes: ['email', 'roles'] }), ['openid', 'email', 'roles']);
  assert.deepEqual(requestedScopes({ scopes: ['openid', 'email', 'openid'] }), ['openid', 'email']);
});

test('a stored plain-http provider off this machine is never contacted; its loopback discovery cannot point elsewhere', async () => {
  const seen: string[] = [];
  const fakeFetch = (async (url: string | URL) => {
    seen.push(String(url));
    return Response.json({
      issuer: 'http://127.0.0.1:9400', authorization_endpoint: 'http://127.0.0.1:9400/auth', jwks_uri: 'http://127.0.0.1:9400/jwks',
      token_endpoint: 'http://attacker.example/token', response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'],
    });
  }) as typeof fetch;
  const far = new OidcClient({ issuer: 'http://idp.example', client_id: 'x', allow_insecure_issuer: true }, 'secret', fakeFetch);
  await assert.rejects(far.authorizationUrl('https://localhost/cb', newTransaction()), /must be an https:\/\/ URL/);
  assert.equal(seen.length, 0, 'nothing was fetched');

  const local = new OidcClient({ issuer: 'http://127.0.0.1:9400', client_id: 'x', allow_insecure_issuer: true }, 'secret', fakeFetch);
  const tx = newTransaction();
  assert.equal((await local.authorizationUrl('https://localhost/cb', tx)).origin, 'http://127.0.0.1:9400');
  await assert.rejects(local.finish(new URL(`https://localhost/cb?code=c0de&state=${tx.state}`), tx), /allowed only on this machine/);
  assert.ok(!seen.some((url) => url.includes('attacker.example')), seen.join(' '));
});
