// E2E: OpenID Connect sign-in with a real OpenID provider (oidc-provider, in this process, over
// http on 127.0.0.1 — allowed only through the provider's `allow_insecure_issuer` setting)
// and a real browser (playwright-core driving Debian's chromium) against a cloudauth socket
// whose upstream echoes its headers: the allowed user's email and a valid assertion upstream,
// 403 for another domain, and a clear 400 for a tampered state or code.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import Provider from 'oidc-provider';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { JSONWebKeySet } from 'jose';
import { spawn } from 'node:child_process';
import { CLI, cleanupAll, startConnector, startServer, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api, httpsFetch } from '../helpers/https.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { freePort, tempDir } from '../helpers/util.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';

const CHROMIUM = '/usr/bin/chromium';
const CLIENT_SECRET = 'a-client-secret-for-tests-only-0123456789';

const accounts: Record<string, { email: string; email_verified: boolean; groups: string[]; name: string }> = {
  alice: { email: 'alice@corp.example', email_verified: true, groups: ['engineering', 'idp-admins'], name: 'Alice Example' },
  bob: { email: 'bob@other.example', email_verified: true, groups: ['sales'], name: 'Bob Other' },
};

interface Echo {
  url: string;
  headers: Record<string, string | undefined>;
}

/** When set, the provider's redirect back to Postern is altered by it (as an attacker in the middle would). */
let tamperWith: ((callback: URL) => void) | undefined;

async function startOpenIdProvider(redirectUri: string): Promise<{ issuer: string; close: () => Promise<void> }> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [{ client_id: 'postern', client_secret: CLIENT_SECRET, redirect_uris: [redirectUri], grant_types: ['authorization_code'], response_types: ['code'] }],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
    findAccount: (_ctx, sub) => {
      const account = accounts[sub];
      return account ? { accountId: sub, claims: () => ({ sub, ...account }) } : undefined;
    },
  });
  provider.use(async (ctx, next) => {
    await next();
    const location = String(ctx.response.get('location') ?? '');
    if (tamperWith && location.startsWith(`${redirectUri}?`)) {
      const url = new URL(location);
      tamperWith(url);
      ctx.set('location', url.href);
    }
  });
  server.on('request', provider.callback());
  return { issuer, close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }) };
}

describe('OpenID Connect sign-in with a real provider and a real browser', { skip: existsSync(CHROMIUM) || process.env.CI === 'true' ? false : `no ${CHROMIUM} (apt-get install chromium)` }, () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let op: { issuer: string; close: () => Promise<void> };
  let browser: Browser;
  let appUrl: string;

  before(async () => {
    upstream = await startUpstream();
    const port = await freePort();
    op = await startOpenIdProvider(`https://localhost:${port}/auth/oidc/corp/callback`);
    // The provider comes from the server config file (applied at start), its secret from the environment.
    const dir = (await tempDir()).path;
    const configFile = join(dir, 'server.yaml');
    await writeFile(configFile, stringify({
      identity_providers: [{
        name: 'corp', kind: 'oidc', display_name: 'Corp SSO', client_secret_env: 'CORP_OIDC_SECRET',
        // No scopes: the groups scope is requested because a groups claim is set.
        issuer: op.issuer, client_id: 'postern', groups_claim: 'groups', group_map: { 'idp-admins': 'admins' }, keep_unmapped_groups: true, allow_insecure_issuer: true,
      }],
    }));
    process.env.CORP_OIDC_SECRET = CLIENT_SECRET;
    try {
      server = await startServer({ port, extraArgs: ['--config', configFile] });
    } finally {
      delete process.env.CORP_OIDC_SECRET;
    }
    assert.equal(server.url, `https://localhost:${port}`);
    appUrl = `https://app.localhost:${server.port}`;
    const shown = await api(server, '/api/v1/identity-providers/corp');
    assert.equal(shown.status, 200, shown.text);
    assert.equal(shown.json<{ hasSecret: boolean }>().hasSecret, true);
    assert.equal(shown.json<{ redirectUri: string }>().redirectUri, `${server.url}/auth/oidc/corp/callback`);
    assert.doesNotMatch(shown.text, new RegExp(CLIENT_SECRET), 'the secret is write-only');
    const socket = await server.cli(['socket', 'create', '--name', 'app', '--type', 'http', '--upstream', upstream.url, '--cloudauth', '--allowed-email-domains', 'corp.example']);
    assert.equal(socket.code, 0, socket.stderr);
    const token = await server.cli(['connector', 'token', 'create', '--name', 'oidc', '--socket', 'app']);
    const config = await writeConnectorConfig(dir, 'c.yaml', { server: server.url, token: token.stdout.trim(), sockets: [{ name: 'app', type: 'http', upstream: upstream.url }] });
    await startConnector(['connector', 'start', '--config', config], server.env);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'],
    });
  });

  after(async () => {
    await browser?.close();
    await cleanupAll();
    await op?.close();
    await upstream?.close();
  });

  const newContext = () => browser.newContext({ ignoreHTTPSErrors: true });

  /** From the socket, through the login page and the provider's login and consent pages. */
  async function signInAt(page: Page, account: string): Promise<void> {
    await page.goto(`${appUrl}/reports/q3?x=1`);
    assert.equal(new URL(page.url()).origin, server.url, 'sent to the control plane\'s login page');
    await page.click('a.provider:has-text("Corp SSO")');
    await page.waitForURL((url) => url.origin === op.issuer);
    await page.fill('input[name="login"]', account);
    await page.fill('input[name="password"]', 'any');
    await page.click('button[type="submit"]');
    // Consent (first sign-in of this account in this context).
    await page.waitForURL((url) => url.origin !== op.issuer || /interaction/.test(url.pathname));
    if (new URL(page.url()).origin === op.issuer) {
      await page.click('button[type="submit"]');
    }
  }

  test('an allowed user signs in and the upstream sees its email, groups and a valid assertion', async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      await signInAt(page, 'alice');
      await page.waitForURL(`${appUrl}/reports/q3?x=1`);
      const echo = JSON.parse(await page.locator('body').innerText()) as Echo;
      assert.equal(echo.url, '/reports/q3?x=1');
      assert.equal(echo.headers['x-auth-email'], 'alice@corp.example');
      assert.equal(echo.headers['x-auth-groups'], 'engineering,admins', 'groups from the claim, mapped');
      const jwks = (await httpsFetch({ port: server.port, ca: server.caPem, path: '/.well-known/jwks.json' })).json<JSONWebKeySet>();
      const { payload } = await jwtVerify(echo.headers['x-postern-jwt-assertion']!, createLocalJWKSet(jwks), { issuer: server.url, audience: appUrl });
      assert.equal(payload.email, 'alice@corp.example');

      const sessions = (await api(server, '/api/v1/sessions')).json<{ sessions: { user: string; provider: string }[] }>().sessions;
      assert.ok(sessions.some((s) => s.user === 'alice@corp.example' && s.provider === 'corp'), 'the session names the provider');
      const users = (await api(server, '/api/v1/users/alice@corp.example')).json<{ name: string; groups: string[] }>();
      assert.equal(users.name, 'Alice Example');
      assert.deepEqual(users.groups, ['engineering', 'admins']);
    } finally {
      await context.close();
    }
  });

  test('a user from another domain signs in at the provider but gets a 403 that says why', async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      const final = page.waitForResponse((res) => res.url().startsWith(`${appUrl}/reports/q3`) && res.status() !== 302 && res.status() !== 303);
      await signInAt(page, 'bob');
      const response = await final;
      assert.equal(response.status(), 403);
      assert.match(await page.content(), /no rule allows this .*email domain other\.example is not one of corp\.example/);
    } finally {
      await context.close();
    }
  });

  /** Signs in but, when the provider sends the browser back, presents `tamper(callbackUrl)` instead. */
  async function tamperedCallback(tamper: (url: URL) => void, atProvider?: (context: BrowserContext) => Promise<void>): Promise<{ status: number; reason: string }> {
    const context: BrowserContext = await newContext();
    tamperWith = tamper;
    try {
      const page = await context.newPage();
      if (atProvider) {
        let done = false;
        await context.route((url) => url.origin === op.issuer, async (route) => {
          if (!done) {
            done = true;
            await atProvider(context);
          }
          await route.continue();
        });
      }
      const final = page.waitForResponse((res) => new URL(res.url()).pathname === '/auth/oidc/corp/callback');
      await signInAt(page, 'alice');
      const response = await final;
      await page.waitForSelector('#reason');
      return { status: response.status(), reason: await page.locator('#reason').innerText() };
    } finally {
      tamperWith = undefined;
      await context.close();
    }
  }

  test('a tampered state is refused with a clear error', async () => {
    const { status, reason } = await tamperedCallback((url) => url.searchParams.set('state', `${url.searchParams.get('state')!.slice(0, 16)}tampered`));
    assert.equal(status, 400);
    assert.match(reason, /state/i);
  });

  test('a state from another browser is refused with a clear error', async () => {
    const { status, reason } = await tamperedCallback((url) => url.searchParams.set('state', 'AAAAAAAAAAAAAAAAAAAAAAAA'));
    assert.equal(status, 400);
    assert.match(reason, /state parameter does not match a sign-in started in this browser/);
  });

  test('an altered sign-in cookie (state, nonce, verifier) is refused with a clear error', async () => {
    const { status, reason } = await tamperedCallback(() => undefined, async (context) => {
      const cookie = (await context.cookies(server.url)).find((c) => c.name.startsWith('__Host-postern_sso_'));
      assert.ok(cookie, 'the sign-in transaction cookie was set');
      const flipped = cookie.value.slice(0, 20) + (cookie.value[20] === 'A' ? 'B' : 'A') + cookie.value.slice(21);
      await context.addCookies([{ ...cookie, value: flipped }]);
    });
    assert.equal(status, 400);
    assert.match(reason, /sign-in cookie was altered/);
  });

  test('a tampered code is refused with a clear error', async () => {
    const { status, reason } = await tamperedCallback((url) => url.searchParams.set('code', `${url.searchParams.get('code')}x`));
    assert.equal(status, 400);
    assert.match(reason, /rejected the code: invalid_grant/);
  });

  test('the login page lists the provider; a disabled provider is hidden and refuses to start', async () => {
    const login = await httpsFetch({ port: server.port, ca: server.caPem, path: '/auth/login?socket=app&return_to=%2Fx' });
    assert.match(login.text, /href="\/auth\/oidc\/corp\/start\?socket=app&#38;return_to=%2Fx">Sign in with Corp SSO/);
    const disabled = await api(server, '/api/v1/identity-providers/corp', { method: 'PATCH', body: { disabled: true } });
    assert.equal(disabled.status, 200, disabled.text);
    try {
      const hidden = await httpsFetch({ port: server.port, ca: server.caPem, path: '/auth/login' });
      assert.doesNotMatch(hidden.text, /Corp SSO/);
      const start = await httpsFetch({ port: server.port, ca: server.caPem, path: '/auth/oidc/corp/start' });
      assert.equal(start.status, 403);
    } finally {
      await api(server, '/api/v1/identity-providers/corp', { method: 'PATCH', body: { disabled: false } });
    }
  });

  test('idp CLI: add github and oidc (secret from stdin), ls, rm; the redirect URI is printed', async () => {
    const open = await server.cli(['idp', 'add', 'github', '--name', 'gh-open', '--client-id', 'Iv1.test', '--groups-from-orgs']);
    assert.equal(open.code, 1, 'groups from any organisation would let anyone create one named "admins"');
    assert.match(open.stderr, /^postern: .*orgs: groups from organisations need --orgs naming the organisations whose membership counts/);
    const child = spawn(process.execPath, [CLI, 'idp', 'add', 'github', '--name', 'gh', '--client-id', 'Iv1.test', '--client-secret-stdin', '--groups-from-orgs', '--orgs', 'corp'], { env: server.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin.end('gh-secret-value\n');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, stderr);
    assert.ok(stdout.includes(`${server.url}/auth/oidc/gh/callback`), stdout);
    const entra = await server.cli(['idp', 'add', 'oidc', '--name', 'entra', '--preset', 'microsoft', '--tenant', 'contoso.onmicrosoft.com', '--client-id', 'abc', '--groups-claim', 'groups']);
    assert.equal(entra.code, 0, entra.stderr);
    const bad = await server.cli(['idp', 'add', 'oidc', '--name', 'plain', '--issuer', 'http://idp.example', '--client-id', 'abc']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /must be an https/);
    const ls = JSON.parse((await server.cli(['idp', 'ls', '--json'])).stdout) as { name: string; kind: string; hasSecret: boolean; config: Record<string, unknown> }[];
    assert.deepEqual(ls.map((p) => [p.name, p.kind, p.hasSecret]), [['corp', 'oidc', true], ['entra', 'oidc', false], ['gh', 'github', true]]);
    assert.equal(ls.find((p) => p.name === 'entra')!.config.tenant, 'contoso.onmicrosoft.com');
    assert.doesNotMatch(JSON.stringify(ls), /gh-secret-value/);
    const login = await httpsFetch({ port: server.port, ca: server.caPem, path: '/auth/login' });
    assert.match(login.text, /href="\/auth\/github\/gh\/start">Sign in with GitHub/);
    for (const name of ['gh', 'entra']) assert.equal((await server.cli(['idp', 'rm', name])).code, 0);
    assert.equal((await server.cli(['idp', 'rm', 'gh'])).code === 0, false, 'removing twice fails');
  });
});
