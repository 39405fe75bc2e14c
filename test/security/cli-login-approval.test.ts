// Security: `/auth/cli/start` once redirected any signed-in browser straight to a loopback port
// with a sign-in code. A link crafted by someone else (their port, state and challenge) then
// handed the victim's CLI session to whatever listened on that port of the victim's machine.
// Now the person approves on a page (CSRF-protected, naming what is approved), and a code is
// redeemed only with the PKCE verifier of the CLI that started the sign-in.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, spawnCli, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api, httpsFetch } from '../helpers/https.js';
import type { HttpsResponse } from '../helpers/https.js';
import { ControlBrowser, hidden, laptopFor } from '../helpers/login.js';
import { withTimeout } from '../helpers/util.js';
import { newPkceVerifier, pkceCheckCode, s256Challenge } from '../../src/identity/pkce.js';

const EMAIL = 'victim@corp.example';
const PASSWORD = 'correct horse battery staple';
const STATE = 'attacker-state-0123456789';

function startPath(port: number, challenge: string | undefined, extra: Record<string, string> = {}): string {
  return `/auth/cli/start?${new URLSearchParams({ port: String(port), state: STATE, ...(challenge ? { code_challenge: challenge, code_challenge_method: 'S256' } : {}), ...extra })}`;
}

describe('security: CLI loopback sign-in needs approval and the PKCE verifier', () => {
  let server: ServerHandle;
  let browser: ControlBrowser;

  before(async () => {
    server = await startServer();
    assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email: EMAIL, password: PASSWORD } })).status, 201);
    browser = new ControlBrowser(server, EMAIL, PASSWORD);
    // Signed in on the control host already, as a victim who uses the dashboard would be.
    const signedIn = await browser.openSigningIn('/device');
    assert.equal(signedIn.status, 200, signedIn.text);
  });

  after(async () => {
    await cleanupAll();
  });

  const token = (form: Record<string, string>): Promise<HttpsResponse> => httpsFetch({
    port: server.port, ca: server.caPem, path: '/api/v1/auth/token', method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(),
  });

  /** Presses a button on the approval page, optionally tampering with the form or the cookies. */
  const decide = (page: HttpsResponse, decision: string, change: Record<string, string> = {}) => browser.request('/auth/cli/start', {
    method: 'POST',
    form: { csrf: hidden(page.text, 'csrf')!, port: hidden(page.text, 'port')!, state: hidden(page.text, 'state')!, code_challenge: hidden(page.text, 'code_challenge')!, decision, ...change },
  });

  test('a signed-in browser following a start link gets an approval page naming what it approves, never a redirect', async () => {
    const challenge = s256Challenge(newPkceVerifier());
    const page = await browser.request(startPath(40123, challenge));
    assert.equal(page.status, 200, page.text);
    assert.equal(page.headers.location, undefined);
    assert.doesNotMatch(page.text, /pac1_/, 'no code on the page');
    assert.match(page.text, /victim@corp\.example/);
    assert.match(page.text, /http:\/\/127\.0\.0\.1:40123/);
    assert.match(page.text, new RegExp(pkceCheckCode(challenge)));
    assert.equal(page.headers['x-frame-options'], 'DENY', 'not to be framed and clicked through');
    assert.match(page.text, /name="decision" value="approve"/);
    assert.match(page.text, /name="decision" value="deny"/);
  });

  test('a start link without an S256 challenge is refused (older CLIs, downgrades)', async () => {
    for (const path of [
      startPath(40123, undefined),
      startPath(40123, s256Challenge(newPkceVerifier()), { code_challenge_method: 'plain' }),
      startPath(40123, 'short'),
      startPath(80, s256Challenge(newPkceVerifier())),
    ]) {
      const res = await browser.request(path);
      assert.equal(res.status, 400, path);
      assert.equal(res.headers.location, undefined, path);
    }
  });

  test('approving without the CSRF token, or with a wrong one, is refused and sends nothing to the loopback port', async () => {
    const page = await browser.request(startPath(40124, s256Challenge(newPkceVerifier())));
    assert.equal(page.status, 200);
    for (const csrf of ['', 'A'.repeat(43), hidden(page.text, 'csrf')!.slice(1)]) {
      const res = await decide(page, 'approve', { csrf });
      assert.equal(res.status, 403, `csrf=${csrf}`);
      assert.equal(res.headers.location, undefined);
    }
    // A cross-site form post carries the field the attacker guessed but not the SameSite=Strict cookie.
    const saved = new Map(browser.jar);
    browser.jar.delete('__Host-postern_csrf');
    const crossSite = await decide(page, 'approve');
    browser.jar.clear();
    for (const [k, v] of saved) browser.jar.set(k, v);
    assert.equal(crossSite.status, 403);
    assert.equal(crossSite.headers.location, undefined);
  });

  test('an approved code is refused without the verifier, with a wrong one, or with another sign-in\'s; the right one works once', async () => {
    const verifier = newPkceVerifier();
    const page = await browser.request(startPath(40125, s256Challenge(verifier)));
    const approved = await decide(page, 'approve');
    assert.equal(approved.status, 303, approved.text);
    const callback = new URL(approved.headers.location!);
    assert.equal(`${callback.origin}${callback.pathname}`, 'http://127.0.0.1:40125/callback');
    assert.equal(callback.searchParams.get('state'), STATE);
    const code = callback.searchParams.get('code')!;
    assert.match(code, /^pac1_/);

    for (const wrong of [{} as Record<string, string>, { code_verifier: '' }, { code_verifier: newPkceVerifier() }, { code_verifier: s256Challenge(verifier) }, { code_verifier: `${verifier}x` }, { code_verifier: 'a'.repeat(200) }]) {
      const res = await token({ grant_type: 'authorization_code', code, ...wrong });
      assert.equal(res.status, 400, JSON.stringify(wrong));
      assert.equal(res.json<{ error: string }>().error, 'invalid_grant', JSON.stringify(wrong));
    }
    const ok = await token({ grant_type: 'authorization_code', code, code_verifier: verifier });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json<{ email: string }>().email, EMAIL);
    assert.equal((await token({ grant_type: 'authorization_code', code, code_verifier: verifier })).json<{ error: string }>().error, 'invalid_grant', 'once');
  });

  test('Deny sends the CLI an error, no code; the real `postern login --browser` then stops with one line', async () => {
    const { env } = await laptopFor(server);
    const login = spawnCli('login --browser', ['login', '--browser'], env);
    const start = (await login.waitForOutput(/(https:\/\/\S+\/auth\/cli\/start\?\S+)/))[1]!;
    const page = await browser.request(new URL(start).pathname + new URL(start).search);
    assert.equal(page.status, 200, page.text);
    const denied = await decide(page, 'deny');
    assert.equal(denied.status, 303);
    const callback = new URL(denied.headers.location!);
    assert.equal(callback.searchParams.get('error'), 'access_denied');
    assert.equal(callback.searchParams.get('code'), null);
    const answered = await fetch(callback);
    assert.equal(answered.status, 200);
    const exit = await withTimeout(login.exited, 20_000, 'postern login --browser to give up');
    assert.equal(exit.code, 1);
    assert.equal(login.stderr, 'postern: the sign-in was denied in the browser\n');
  });
});
