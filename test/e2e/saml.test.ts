// E2E: SAML sign-in in front of a cloudauth socket. A test IdP signs real assertions; the
// provider is added through the API; the browser goes socket → login page → /auth/saml/…/start
// (AuthnRequest) → the IdP's signed response POSTed to the ACS → hand-off → the upstream sees the
// email and mapped groups. Unsigned, foreign-signed, replayed and cookie-less responses are refused.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupAll, startConnector, startServer, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api, httpsFetch } from '../helpers/https.js';
import { CookieBrowser } from '../helpers/browser.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { tempDir } from '../helpers/util.js';
import { authnRequestFrom, createIdpKey, encryptAssertion, samlResponse } from '../helpers/saml-idp.js';
import type { AssertionInput, IdpKey } from '../helpers/saml-idp.js';

interface Echo {
  url: string;
  headers: Record<string, string | undefined>;
}

const EMAIL = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
const GROUPS = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups';
const PROVIDER = 'corp-saml';

/** Just enough of a browser: one cookie jar per host, manual redirects. */
class Browser extends CookieBrowser {}

describe('SAML sign-in for cloudauth sockets', () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let appUrl: string;
  let idp: IdpKey;
  let entityId: string;
  let acsUrl: string;

  /** Opens the socket, follows to the login page, clicks the SAML button; returns the AuthnRequest. */
  const startSignIn = async (browser: Browser, path: string) => {
    const first = await browser.request(`${appUrl}${path}`);
    assert.equal(first.status, 302, first.text);
    const login = await browser.request(first.headers.location!);
    assert.equal(login.status, 200);
    const href = new RegExp(`href="(/auth/saml/${PROVIDER}/start[^"]*)"`).exec(login.text)?.[1]?.replace(/&(?:amp|#38);/g, '&');
    assert.ok(href, `the login page offers the SAML provider:\n${login.text}`);
    const start = await browser.request(`${server.url}${href}`);
    assert.equal(start.status, 303, start.text);
    assert.ok(start.headers.location!.startsWith('https://idp.test/sso?'), start.headers.location);
    return { ...await authnRequestFrom(start.headers.location!), signed: new URL(start.headers.location!).searchParams.has('Signature') };
  };

  const respond = (request: { id: string }, extra: Partial<AssertionInput> = {}) => samlResponse({
    signer: idp, audience: entityId, acsUrl, inResponseTo: request.id, nameId: 'persistent-1',
    nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    attributes: { [EMAIL]: 'Alice@Corp.Example', [GROUPS]: ['g-staff', 'g-ops', 'g-other'] },
    ...extra,
  });

  const postAcs = (browser: Browser, relay: string | null, body: string) =>
    browser.request(acsUrl, { method: 'POST', form: { SAMLResponse: body, RelayState: relay ?? '' } });

  before(async () => {
    idp = await createIdpKey('e2e-idp');
    upstream = await startUpstream();
    server = await startServer();
    appUrl = `https://sapp.localhost:${server.port}`;
    entityId = `${server.url}/auth/saml/${PROVIDER}/metadata`;
    acsUrl = `${server.url}/auth/saml/${PROVIDER}/acs`;
    const socket = await server.cli(['socket', 'create', '--name', 'sapp', '--type', 'http', '--upstream', upstream.url, '--cloudauth', '--allowed_email_domains', 'corp.example']);
    assert.equal(socket.code, 0, socket.stderr);
    const created = await api(server, '/api/v1/identity-providers', { method: 'POST', body: {
      name: PROVIDER, kind: 'saml', display_name: 'Corp SAML',
      config: {
        entry_point: 'https://idp.test/sso', idp_cert: idp.certPem, idp_issuer: 'https://idp.test/metadata',
        email_attribute: EMAIL, groups_attribute: GROUPS, group_map: { 'g-staff': 'staff', 'g-ops': ['ops', 'staff'] },
      },
    } });
    assert.equal(created.status, 201, created.text);
    const token = await server.cli(['connector', 'token', 'create', '--name', 'saml', '--socket', 'sapp']);
    const dir = (await tempDir()).path;
    const config = await writeConnectorConfig(dir, 'c.yaml', { server: server.url, token: token.stdout.trim(), sockets: [{ name: 'sapp', type: 'http', upstream: upstream.url }] });
    await startConnector(['connector', 'start', '--config', config], server.env);
  });

  after(async () => {
    await cleanupAll();
    await upstream?.close();
  });

  test('the SP metadata names the entity id and the ACS and asks for signed assertions', async () => {
    const res = await httpsFetch({ port: server.port, ca: server.caPem, path: `/auth/saml/${PROVIDER}/metadata` });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /samlmetadata\+xml/);
    assert.ok(res.text.includes(`entityID="${entityId}"`), res.text);
    assert.ok(res.text.includes(`Location="${acsUrl}"`), res.text);
    assert.match(res.text, /WantAssertionsSigned="true"/);
    assert.equal((await httpsFetch({ port: server.port, ca: server.caPem, path: '/auth/saml/nope/metadata' })).status, 404);
    const bad = await api(server, '/api/v1/identity-providers', { method: 'POST', body: { name: 'bad-saml', kind: 'saml', config: { entry_point: 'https://idp.test/sso', idp_cert: 'not a certificate!' } } });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.text, /idp_cert/);
  });

  test('`postern idp add saml` creates a provider from a certificate file and prints what the IdP needs', async () => {
    const dir = (await tempDir()).path;
    await writeFile(join(dir, 'idp.pem'), idp.certPem);
    const added = await server.cli(['idp', 'add', 'saml', '--name', 'cli-saml', '--entry-point', 'https://idp.test/sso', '--idp-cert-file', join(dir, 'idp.pem'), '--email-attribute', 'mail']);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, new RegExp(`metadata: +${server.url}/auth/saml/cli-saml/metadata`));
    assert.match(added.stdout, new RegExp(`ACS URL: +${server.url}/auth/saml/cli-saml/acs`));
    const missing = await server.cli(['idp', 'add', 'saml', '--name', 'x', '--entry-point', 'https://idp.test/sso', '--idp-cert-file', join(dir, 'nope.pem')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^postern: cannot read --idp-cert-file .*ENOENT\n$/);
  });

  test('a signed assertion signs the browser in; the upstream sees the email and mapped groups', async () => {
    const browser = new Browser(server);
    const request = await startSignIn(browser, '/dash?x=1');
    assert.equal(request.acsUrl, acsUrl);
    assert.equal(request.issuer, entityId);
    const acs = await postAcs(browser, request.relayState, respond(request));
    assert.equal(acs.status, 303, acs.text);
    assert.ok(acs.headers.location!.startsWith(`${appUrl}/_postern/callback?code=`), acs.headers.location);
    assert.ok(browser.cookies('localhost').has('__Host-postern_session'), 'the control host has its session cookie');
    assert.ok(![...browser.cookies('localhost').keys()].some((k) => k.startsWith('__Host-postern_saml_')), 'the state cookie is cleared');
    const callback = await browser.request(acs.headers.location!);
    assert.equal(callback.status, 303, callback.text);
    const res = await browser.request(new URL(callback.headers.location!, appUrl).toString());
    assert.equal(res.status, 200, res.text);
    const echo = res.json<Echo>();
    assert.equal(echo.url, '/dash?x=1');
    assert.equal(echo.headers['x-auth-email'], 'alice@corp.example');
    assert.equal(echo.headers['x-auth-groups'], 'staff,ops');

    const listed = await server.cli(['sessions', 'ls', '--user', 'alice@corp.example', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const sessions = JSON.parse(listed.stdout) as { provider: string }[];
    assert.ok(sessions.some((s) => s.provider === PROVIDER), listed.stdout);
  });

  test('a large response (hundreds of groups) is taken', async () => {
    const browser = new Browser(server);
    const request = await startSignIn(browser, '/');
    const groups = Array.from({ length: 400 }, (_, i) => `cn=group-${i},ou=groups,dc=corp,dc=example`);
    const body = respond(request, { attributes: { [EMAIL]: 'carol@corp.example', [GROUPS]: ['g-staff', ...groups] } });
    assert.ok(body.length > 32 * 1024, `${body.length} bytes`);
    const acs = await postAcs(browser, request.relayState, body);
    assert.equal(acs.status, 303, acs.text);
  });

  test('an unsigned or foreign-signed response is refused with a page that says why', async () => {
    const browser = new Browser(server);
    const request = await startSignIn(browser, '/');
    const unsigned = await postAcs(browser, request.relayState, respond(request, { signer: undefined }));
    assert.equal(unsigned.status, 403);
    assert.match(unsigned.text, /Sign-in failed/);
    assert.match(unsigned.text, /Invalid signature/);
    assert.ok(!browser.cookies('localhost').has('__Host-postern_session'));

    const again = await startSignIn(browser, '/');
    const attacker = await createIdpKey('attacker');
    const foreign = await postAcs(browser, again.relayState, respond(again, { signer: attacker }));
    assert.equal(foreign.status, 403);
    assert.match(foreign.text, /Invalid signature/);
    assert.ok(!browser.cookies('localhost').has('__Host-postern_session'));
  });

  test('a response for another request, or without the browser that started it, is refused', async () => {
    const browser = new Browser(server);
    const request = await startSignIn(browser, '/');
    const mismatch = await postAcs(browser, request.relayState, respond({ id: '_not-the-request-id' }));
    assert.equal(mismatch.status, 403);
    assert.match(mismatch.text, /InResponseTo/);

    const victim = new Browser(server);
    const second = await startSignIn(browser, '/');
    const stolen = await postAcs(victim, second.relayState, respond(second));
    assert.equal(stolen.status, 403, 'a browser without the state cookie cannot finish the sign-in');
    assert.match(stolen.text, /no sign-in cookie/);

    const idpInitiated = await postAcs(new Browser(server), null, respond({ id: '_x' }));
    assert.equal(idpInitiated.status, 403);
    assert.match(idpInitiated.text, /RelayState/);
  });

  test('a response is good for one sign-in only (the state cookie is spent)', async () => {
    const browser = new Browser(server);
    const request = await startSignIn(browser, '/');
    const cookieName = `__Host-postern_saml_${request.relayState}`;
    const stateCookie = browser.cookies('localhost').get(cookieName)!;
    const body = respond(request);
    assert.equal((await postAcs(browser, request.relayState, body)).status, 303);
    // The browser dropped the cookie; a replay without it fails.
    const replay = await postAcs(browser, request.relayState, body);
    assert.equal(replay.status, 403);
    assert.ok(stateCookie.length > 0);
  });

  test('a user outside the socket allow-list signs in but gets the 403 that says why', async () => {
    const browser = new Browser(server);
    const request = await startSignIn(browser, '/');
    const acs = await postAcs(browser, request.relayState, respond(request, { nameId: 'persistent-bob', attributes: { [EMAIL]: 'bob@other.example' } }));
    assert.equal(acs.status, 303, acs.text);
    const callback = await browser.request(acs.headers.location!);
    const res = await browser.request(new URL(callback.headers.location!, appUrl).toString());
    assert.equal(res.status, 403);
    assert.match(res.text, /no rule allows this .*email domain other\.example is not one of corp\.example/);
  });

  test('with an SP key (the provider secret): signed AuthnRequests, key in the metadata, encrypted assertions', async () => {
    const spKey = await createIdpKey('postern-sp');
    const patched = await api(server, `/api/v1/identity-providers/${PROVIDER}`, { method: 'PATCH', body: { config: { sp_cert: spKey.certPem }, client_secret: spKey.privateKeyPem } });
    assert.equal(patched.status, 200, patched.text);
    const metadata = await httpsFetch({ port: server.port, ca: server.caPem, path: `/auth/saml/${PROVIDER}/metadata` });
    assert.match(metadata.text, /AuthnRequestsSigned="true"/);
    assert.match(metadata.text, /use="encryption"/);
    const browser = new Browser(server);
    const request = await startSignIn(browser, '/enc');
    assert.ok(request.signed, 'the AuthnRequest is signed');
    const acs = await postAcs(browser, request.relayState, await encryptAssertion(respond(request), spKey.certPem));
    assert.equal(acs.status, 303, acs.text);
    const callback = await browser.request(acs.headers.location!);
    const res = await browser.request(new URL(callback.headers.location!, appUrl).toString());
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json<Echo>().headers['x-auth-email'], 'alice@corp.example');
  });
});
