// External sign-in pieces that need no network: GitHub's mapping (verified primary email only,
// org/team groups, state and token errors) with an injected fetch, the OIDC presets and issuer
// checks, and the idempotent apply of configured providers with sealed secrets.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isPosternError } from '../../src/errors.js';
import { GithubClient, newTransaction, normalizeOidcConfig, presetIssuers } from '../../src/identity/oidc.js';
import { applyConfiguredProviders, checkProviderConfig } from '../../src/control/idp-api.js';
import { signInClientFor } from '../../src/control/oidc-routes.js';
import { createKeyCipher } from '../../src/ca/key-cipher.js';
import { openStore, silentLogger } from '../../src/store/index.js';

interface GithubWorld {
  emails?: unknown;
  orgs?: unknown;
  teams?: unknown;
  token?: unknown;
}

/** A fake github.com + api.github.com; records every request. */
function fakeGithub(world: GithubWorld): { fetch: typeof fetch; calls: { url: string; auth: string | null; body: string | null }[] } {
  const calls: { url: string; auth: string | null; body: string | null }[] = [];
  const json = (value: unknown, status = 200) => new Response(JSON.stringify(value), { status, headers: { 'content-type': 'application/json' } });
  const fake = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const headers = new Headers(init?.headers);
    calls.push({ url: url.href, auth: headers.get('authorization'), body: typeof init?.body === 'string' ? init.body : null });
    if (url.href === 'https://github.com/login/oauth/access_token') return json(world.token ?? { access_token: 'gho_test', token_type: 'bearer' });
    if (headers.get('authorization') !== 'Bearer gho_test') return json({ message: 'Bad credentials' }, 401);
    if (url.pathname === '/user') return json({ id: 4242, login: 'octocat', name: 'The Octocat' });
    if (url.pathname === '/user/emails') return json(world.emails ?? []);
    if (url.pathname === '/user/orgs') return json(world.orgs ?? []);
    if (url.pathname === '/user/teams') return json(world.teams ?? []);
    return json({ message: 'Not Found' }, 404);
  };
  return { fetch: fake as typeof fetch, calls };
}

const REDIRECT = 'https://postern.localhost:8443/auth/oidc/gh/callback';

async function githubSignIn(world: GithubWorld, config: Record<string, unknown> = {}, tamperState = false) {
  const { fetch, calls } = fakeGithub(world);
  const github = new GithubClient({ client_id: 'Iv1.abc', ...config }, 'shh', fetch);
  const tx = newTransaction();
  const authorize = await github.authorizationUrl(REDIRECT, tx);
  const callback = new URL(REDIRECT);
  callback.searchParams.set('code', 'the-code');
  callback.searchParams.set('state', tamperState ? `${tx.state}x` : tx.state);
  return { authorize, calls, identity: github.finish(callback, tx), tx };
}

test('github: the authorize URL carries the client, redirect, state, PKCE and scopes', async () => {
  const { authorize, tx } = await githubSignIn({ emails: [{ email: 'o@x.example', verified: true, primary: true }] });
  assert.equal(authorize.origin + authorize.pathname, 'https://github.com/login/oauth/authorize');
  assert.equal(authorize.searchParams.get('client_id'), 'Iv1.abc');
  assert.equal(authorize.searchParams.get('redirect_uri'), REDIRECT);
  assert.equal(authorize.searchParams.get('state'), tx.state);
  assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(authorize.searchParams.get('scope'), 'read:user user:email');
});

test('github: the email is the verified primary one from /user/emails, never another', async () => {
  const { identity, calls } = await githubSignIn({
    emails: [
      { email: 'unverified@evil.example', verified: false, primary: false },
      { email: 'other@x.example', verified: true, primary: false },
      { email: 'Octo@Corp.Example', verified: true, primary: true },
    ],
  });
  const who = await identity;
  assert.equal(who.email, 'octo@corp.example');
  assert.equal(who.name, 'The Octocat');
  assert.equal(who.subject, '4242');
  assert.deepEqual([who.issuer, who.emailVerified], ['https://github.com', true], 'linked as (github.com, user id); GitHub verified the address');
  assert.deepEqual(who.groups, []);
  const token = calls.find((c) => c.url.endsWith('/login/oauth/access_token'))!;
  const form = new URLSearchParams(token.body!);
  assert.equal(form.get('client_secret'), 'shh');
  assert.equal(form.get('code'), 'the-code');
  assert.equal(form.get('redirect_uri'), REDIRECT);
  assert.ok(form.get('code_verifier'));
  assert.ok(!calls.some((c) => c.url.includes('/user/orgs')), 'no org lookups unless asked');
});

test('github: a primary address that is not verified is refused', async () => {
  const { identity } = await githubSignIn({ emails: [{ email: 'octo@corp.example', verified: false, primary: true }, { email: 'x@y.example', verified: true, primary: false }] });
  await assert.rejects(identity, (err: unknown) => isPosternError(err, 'identity_invalid') && /no verified primary email/.test(err.message));
});

test('github: a state that does not match is refused before any call to GitHub', async () => {
  const { identity, calls } = await githubSignIn({ emails: [{ email: 'o@x.example', verified: true, primary: true }] }, {}, true);
  await assert.rejects(identity, (err: unknown) => isPosternError(err, 'identity_invalid') && /state/.test(err.message));
  assert.equal(calls.length, 0);
});

test('github: a refused code says why', async () => {
  const { identity } = await githubSignIn({ token: { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' } });
  await assert.rejects(identity, (err: unknown) => isPosternError(err, 'identity_invalid') && /bad_verification_code/.test(err.message));
});

test('github: groups from organisations and teams, limited to the listed orgs, then mapped', async () => {
  const { identity, authorize } = await githubSignIn({
    emails: [{ email: 'o@corp.example', verified: true, primary: true }],
    orgs: [{ login: 'corp' }, { login: 'hobby' }],
    teams: [{ slug: 'sre', organization: { login: 'corp' } }, { slug: 'fun', organization: { login: 'hobby' } }],
  }, { groups_from_orgs: true, orgs: ['Corp'], group_map: { 'corp/sre': 'ops' }, keep_unmapped_groups: true });
  assert.match(authorize.searchParams.get('scope')!, /read:org/);
  assert.deepEqual((await identity).groups, ['corp', 'ops']);
});

test('oidc presets: google, microsoft for one tenant; issuers must be https', () => {
  assert.equal(normalizeOidcConfig({ preset: 'google', client_id: 'x' }).issuer, 'https://accounts.google.com');
  assert.equal(normalizeOidcConfig({ preset: 'microsoft', client_id: 'x', tenant: 'contoso.onmicrosoft.com' }).issuer, 'https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0');
  assert.equal(normalizeOidcConfig({ preset: 'microsoft', client_id: 'x', tenant: '72f988bf-86f1-41af-91ab-2d7cd011db47' }).issuer, presetIssuers.microsoft('72f988bf-86f1-41af-91ab-2d7cd011db47'));
  assert.throws(() => normalizeOidcConfig({ issuer: 'http://idp.example', client_id: 'x' }), /must be an https/);
  assert.equal(normalizeOidcConfig({ issuer: 'http://127.0.0.1:1', client_id: 'x', allow_insecure_issuer: true }).issuer, 'http://127.0.0.1:1');
  assert.throws(() => normalizeOidcConfig({ client_id: 'x' }), /issuer/);
  assert.throws(() => normalizeOidcConfig({ issuer: 'https://idp.example' }), /client id/);
  assert.throws(() => checkProviderConfig('oidc', { issuer: 'https://idp.example', client_id: 'x', typo: 1 }), /typo|unrecognized/i);
  assert.throws(() => checkProviderConfig('github', {}), /client_id/);
});

test('configured providers: created once, updated only when they differ; the secret is sealed', async () => {
  const store = await openStore(':memory:', { logger: silentLogger });
  try {
    await store.migrate();
    const cipher = createKeyCipher(randomBytes(32));
    const wanted = [
      { name: 'corp', kind: 'oidc' as const, displayName: 'Corp', config: { issuer: 'https://id.corp.example', client_id: 'abc', groups_claim: 'groups' }, clientSecret: 's3cret' },
      { name: 'gh', kind: 'github' as const, config: { client_id: 'Iv1.x' } },
    ];
    assert.deepEqual(await applyConfiguredProviders(store, cipher, wanted), { created: ['corp', 'gh'], updated: [] });
    const revision = await store.currentRevision();
    assert.deepEqual(await applyConfiguredProviders(store, cipher, wanted), { created: [], updated: [] });
    assert.equal(await store.currentRevision(), revision, 'an unchanged file records nothing');
    const corp = (await store.identityProviders.get('corp'))!;
    assert.ok(corp.sealedSecret && !corp.sealedSecret.includes('s3cret'));
    assert.ok(signInClientFor(corp, cipher), 'the sealed secret opens');
    const changed = [{ ...wanted[0]!, clientSecret: 'rotated' }, wanted[1]!];
    assert.deepEqual(await applyConfiguredProviders(store, cipher, changed), { created: [], updated: ['corp'] });
    await assert.rejects(applyConfiguredProviders(store, cipher, [{ name: 'bad', kind: 'oidc', config: { issuer: 'http://x.example', client_id: 'a' } }]), /identity_providers: bad/);
    // The server file takes the linking settings too, and refuses a microsoft preset for every tenant.
    const linking = { trusted_email_domains: ['corp.example'], allowed_email_domains: ['corp.example'] };
    await applyConfiguredProviders(store, cipher, [{ name: 'corp', kind: 'oidc', config: { ...wanted[0]!.config, ...linking } }]);
    assert.deepEqual((await store.identityProviders.get('corp'))!.config, { ...wanted[0]!.config, ...linking });
    await assert.rejects(applyConfiguredProviders(store, cipher, [{ name: 'entra', kind: 'oidc', config: { preset: 'microsoft', client_id: 'a' } }]), /identity_providers: entra: the microsoft preset needs a tenant/);
    await assert.rejects(applyConfiguredProviders(store, cipher, [{ name: 'entra', kind: 'oidc', config: { preset: 'microsoft', tenant: 'organizations', client_id: 'a' } }]), /identity_providers: entra: .*any tenant/);
    await assert.rejects(applyConfiguredProviders(store, cipher, [{ name: 'saml', kind: 'saml', config: { entry_point: 'https://idp.example/sso', idp_cert: 'x', trusted_email_domains: ['*.corp.example'] } }]), /identity_providers: saml: .*trusted_email_domains/);
  } finally {
    await store.close();
  }
});
