// Security: OIDC account linking ("nOAuth"). A person at another provider (another Entra tenant,
// an attacker's IdP) whose account claims the victim's address must not sign in as the victim
// unless that provider vouches for it; a returning person is found by (issuer, sub), whatever
// the email claim says; allowed email domains refuse the rest with a page and an audit event;
// the microsoft preset refuses multi-tenant endpoints. Real server, real oidc-provider.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startServer, waitForAudit } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { CookieBrowser } from '../helpers/browser.js';
import { OP_CLIENT_ID, OP_CLIENT_SECRET, startOpenIdProvider } from '../helpers/openid-provider.js';
import type { TestOpenIdProvider } from '../helpers/openid-provider.js';
import { freePort } from '../helpers/util.js';

const VICTIM = 'victim@corp.example';

interface Identity { provider: string; issuer: string; subject: string; email: string }
interface Outcome { status: number; reason: string; user?: string }

describe('OIDC account linking: an email claim alone never makes someone an existing user', () => {
  let server: ServerHandle;
  /** The victim's own identity provider: it verifies addresses. */
  let corp: TestOpenIdProvider;
  /** Another provider the admin also added (another tenant): its accounts may claim any address. */
  let other: TestOpenIdProvider;

  const callback = (port: number, name: string) => `https://localhost:${port}/auth/oidc/${name}/callback`;

  const addProvider = async (name: string, op: TestOpenIdProvider) => {
    const created = await api(server, '/api/v1/identity-providers', { method: 'POST', body: {
      name, kind: 'oidc', client_secret: OP_CLIENT_SECRET, config: { issuer: op.issuer, client_id: OP_CLIENT_ID, allow_insecure_issuer: true },
    } });
    assert.equal(created.status, 201, created.text);
  };

  const configure = async (name: string, config: Record<string, unknown>) => {
    const res = await api(server, `/api/v1/identity-providers/${name}`, { method: 'PATCH', body: { config } });
    assert.equal(res.status, 200, res.text);
  };

  const identities = async (email: string) => (await api(server, `/api/v1/users/${email}`)).json<{ identities: Identity[] }>().identities;
  const sessionIds = async () => new Set((await api(server, '/api/v1/sessions')).json<{ sessions: { id: string }[] }>().sessions.map((s) => s.id));

  /** A fresh browser signs in through `provider` as `account` (whose claims the test set); who did it become? */
  async function signIn(provider: string, op: TestOpenIdProvider, account: string, claims: Record<string, unknown>): Promise<Outcome> {
    op.accounts.set(account, claims);
    op.signInAs = account;
    const before = await sessionIds();
    const browser = new CookieBrowser(server);
    let url = `${server.url}/auth/oidc/${provider}/start`;
    for (let hop = 0; hop < 12; hop++) {
      const res = await browser.request(url);
      const back = new URL(url).pathname === `/auth/oidc/${provider}/callback`;
      if (back || res.status < 300 || res.status >= 400) {
        assert.ok(back, `the sign-in ended before coming back to Postern: ${res.status} ${url}\n${res.text}`);
        const reason = /<p class="error" role="alert" id="reason">([^<]*)<\/p>/.exec(res.text)?.[1]?.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c))) ?? '';
        const sessions = (await api(server, '/api/v1/sessions')).json<{ sessions: { id: string; user: string; provider: string }[] }>().sessions;
        const fresh = sessions.filter((s) => !before.has(s.id));
        assert.ok(fresh.length <= 1, 'one sign-in, at most one session');
        if (fresh[0]) assert.equal(fresh[0].provider, provider);
        return { status: res.status, reason, ...(fresh[0] ? { user: fresh[0].user } : {}) };
      }
      url = new URL(res.headers.location!, url).href;
    }
    throw new Error('too many redirects');
  }

  before(async () => {
    const port = await freePort();
    corp = await startOpenIdProvider([callback(port, 'corp')]);
    other = await startOpenIdProvider([callback(port, 'other')]);
    server = await startServer({ port });
    await addProvider('corp', corp);
    await addProvider('other', other);
    for (const email of [VICTIM, 'boss@corp.example', 'staff@corp.example']) {
      const res = await api(server, '/api/v1/users', { method: 'POST', body: { email, password: 'correct horse battery staple' } });
      assert.equal(res.status, 201, res.text);
    }
  });

  after(async () => {
    await cleanupAll();
    await corp?.close();
    await other?.close();
  });

  test('another provider\'s account claiming the victim\'s address without email_verified true is refused and audited', async () => {
    const variants: [string, Record<string, unknown>][] = [
      ['missing', { email: VICTIM }],
      ['false', { email: VICTIM, email_verified: false }],
      ['the string "true"', { email: VICTIM, email_verified: 'true' }],
      ['the string "TRUE"', { email: VICTIM, email_verified: 'TRUE' }],
      ['the number 1', { email: VICTIM, email_verified: 1 }],
      ['missing, address in other case', { email: 'Victim@CORP.example' }],
      ['missing, address with spaces', { email: ` ${VICTIM} ` }],
    ];
    for (const [i, [what, claims]] of variants.entries()) {
      const outcome = await signIn('other', other, `mallory-${i}`, { name: 'Mallory', ...claims });
      assert.equal(outcome.user, undefined, `email_verified ${what}: signed in as ${outcome.user}`);
      assert.ok(outcome.status === 403 || outcome.status === 400, `email_verified ${what}: ${outcome.status}`);
      assert.match(outcome.reason, /does not vouch for victim@corp\.example|has not verified the email address victim@corp\.example/, what);
    }
    assert.deepEqual(await identities(VICTIM), [], 'nothing was linked to the victim');
    const failed = await waitForAudit(server, ['--type', 'login.failed'], (e) => e.actor === VICTIM && /does not vouch/.test(e.reason), 'the refused sign-in in the audit trail');
    assert.equal(failed.decision, 'deny');
  });

  test('a verified address links once; then (issuer, sub) decides, whatever the email claim says', async () => {
    const first = await signIn('corp', corp, 'victim-sub', { email: VICTIM, email_verified: true, name: 'Victim' });
    assert.equal(first.user, VICTIM, first.reason);
    assert.deepEqual((await identities(VICTIM)).map((l) => [l.provider, l.issuer, l.subject]), [['corp', corp.issuer, 'victim-sub']]);
    for (const email of ['victim.renamed@corp.example', 'boss@corp.example', 'someone@elsewhere.example']) {
      const again = await signIn('corp', corp, 'victim-sub', { email, email_verified: true });
      assert.equal(again.user, VICTIM, `with the email claim ${email}`);
    }
    assert.deepEqual(await identities('boss@corp.example'), [], 'the boss\'s address in a linked account\'s claim does not reach the boss');
    assert.equal((await api(server, '/api/v1/users/victim.renamed@corp.example')).status, 404, 'no user was made from a changed claim');
  });

  test('another sub with the same verified address, from a second provider, links to the same user (by design)', async () => {
    const outcome = await signIn('other', other, 'victim-elsewhere', { email: VICTIM, email_verified: true });
    assert.equal(outcome.user, VICTIM, outcome.reason);
    assert.deepEqual((await identities(VICTIM)).map((l) => [l.issuer, l.subject]).sort(), [[corp.issuer, 'victim-sub'], [other.issuer, 'victim-elsewhere']].sort());
    const shown = await server.cli(['user', 'show', VICTIM]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /Linked identities:[\s\S]*victim-sub[\s\S]*victim-elsewhere|Linked identities:[\s\S]*victim-elsewhere[\s\S]*victim-sub/);
  });

  test('an unvouched address makes a new user only when nobody has it, and never links to an existing one later', async () => {
    const fresh = await signIn('other', other, 'fresh-1', { email: 'fresh@corp.example' });
    assert.equal(fresh.user, 'fresh@corp.example', fresh.reason);
    const again = await signIn('other', other, 'fresh-1', { email: 'fresh@corp.example' });
    assert.equal(again.user, 'fresh@corp.example', 'the same person comes back by the link');
    const impostor = await signIn('other', other, 'fresh-2', { email: 'fresh@corp.example' });
    assert.equal(impostor.user, undefined, 'a second account with the same unvouched address is refused');
    assert.deepEqual((await identities('fresh@corp.example')).map((l) => l.subject), ['fresh-1']);
  });

  test('trusted_email_domains makes a provider authoritative for exactly those domains', async () => {
    assert.equal((await signIn('other', other, 'staff-sub', { email: 'staff@corp.example' })).user, undefined);
    await configure('other', { trusted_email_domains: ['Corp.Example'] });
    try {
      assert.equal((await signIn('other', other, 'staff-sub', { email: 'staff@corp.example' })).user, 'staff@corp.example');
      // A sub-domain is not the trusted domain: its existing users stay out of reach.
      const sub = await api(server, '/api/v1/users', { method: 'POST', body: { email: 'ops@eu.corp.example' } });
      assert.equal(sub.status, 201, sub.text);
      assert.equal((await signIn('other', other, 'ops-sub', { email: 'ops@eu.corp.example' })).user, undefined);
    } finally {
      await configure('other', { trusted_email_domains: null });
    }
  });

  test('allowed_email_domains: a sign-in outside them is refused with a clear page and an audit event', async () => {
    await configure('corp', { allowed_email_domains: ['corp.example'] });
    try {
      const outside = await signIn('corp', corp, 'outsider', { email: 'outsider@gmail.example', email_verified: true });
      assert.equal(outside.user, undefined);
      assert.equal(outside.status, 403);
      assert.match(outside.reason, /may not sign in outsider@gmail\.example: its email domain is not one of corp\.example/);
      assert.equal((await api(server, '/api/v1/users/outsider@gmail.example')).status, 404, 'no user was created');
      await waitForAudit(server, ['--type', 'login.failed'], (e) => e.actor === 'outsider@gmail.example' && /not one of corp\.example/.test(e.reason), 'the refusal in the audit trail');
      const inside = await signIn('corp', corp, 'newhire', { email: 'newhire@corp.example', email_verified: true });
      assert.equal(inside.user, 'newhire@corp.example', inside.reason);
    } finally {
      await configure('corp', { allowed_email_domains: null });
    }
  });

  test('the microsoft preset needs one tenant: none, common, organizations and consumers are refused', async () => {
    const add = (...extra: string[]) => server.cli(['idp', 'add', 'oidc', '--name', 'entra', '--preset', 'microsoft', '--client-id', 'abc', ...extra]);
    const missing = await add();
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr.trim(), /^[^\n]*needs a tenant[^\n]*$/, 'one line');
    for (const tenant of ['common', 'organizations', 'consumers', 'Common', '9188040d-6c67-4c5b-b112-36a304b66dad']) {
      const refused = await add('--tenant', tenant);
      assert.notEqual(refused.code, 0, tenant);
      assert.match(refused.stderr, /lets accounts of any tenant sign in/, tenant);
    }
    for (const issuer of ['https://login.microsoftonline.com/common/v2.0', 'https://login.microsoftonline.com/organizations/v2.0', 'https://login.microsoftonline.com/%7Btenantid%7D/v2.0']) {
      const res = await api(server, '/api/v1/identity-providers', { method: 'POST', body: { name: 'entra-raw', kind: 'oidc', config: { issuer, client_id: 'abc' } } });
      assert.equal(res.status, 400, `${issuer}: ${res.text}`);
      assert.equal(res.json<{ code: string }>().code, 'config_invalid');
    }
    const ok = await add('--tenant', 'contoso.onmicrosoft.com', '--allowed-email-domains', 'contoso.example', '--trusted-email-domains', 'contoso.example', '--json');
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout).config, { client_id: 'abc', preset: 'microsoft', tenant: 'contoso.onmicrosoft.com', trusted_email_domains: ['contoso.example'], allowed_email_domains: ['contoso.example'] });
    const widened = await api(server, '/api/v1/identity-providers/entra', { method: 'PATCH', body: { config: { tenant: 'common' } } });
    assert.equal(widened.status, 400, 'an existing provider cannot be widened to every tenant');
    const unset = await api(server, '/api/v1/identity-providers/entra', { method: 'PATCH', body: { config: { tenant: null } } });
    assert.equal(unset.status, 400, 'nor lose its tenant');
    assert.equal((await server.cli(['idp', 'rm', 'entra'])).code, 0);
  });
});
