// Security: SAML account linking. SAML has no email_verified: an IdP's assertion of an existing
// user's address (however it is dressed up) signs in as that user only where the provider is
// trusted for the domain; a returning person is found by (IdP entity id, NameID); and an IdP
// that names another IdP's entity id as its Issuer does not inherit that IdP's links.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startServer, waitForAudit } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { CookieBrowser } from '../helpers/browser.js';
import { authnRequestFrom, createIdpKey, samlResponse } from '../helpers/saml-idp.js';
import type { IdpKey } from '../helpers/saml-idp.js';

const VICTIM = 'victim@corp.example';
const CORP_ISSUER = 'https://idp-corp.test/metadata';

describe('SAML account linking: an asserted email alone never makes someone an existing user', () => {
  let server: ServerHandle;
  let corpKey: IdpKey;
  let rogueKey: IdpKey;

  const sessionIds = async () => new Set((await api(server, '/api/v1/sessions')).json<{ sessions: { id: string }[] }>().sessions.map((s) => s.id));

  /** One SP-initiated sign-in through `provider`, answered with a signed assertion; who did it become? */
  async function signIn(provider: string, signer: IdpKey, nameId: string, attributes: Record<string, string>, issuer?: string): Promise<{ status: number; text: string; user?: string }> {
    const before = await sessionIds();
    const browser = new CookieBrowser(server);
    const start = await browser.request(`${server.url}/auth/saml/${provider}/start`);
    assert.equal(start.status, 303, start.text);
    const request = await authnRequestFrom(start.headers.location!);
    const acsUrl = `${server.url}/auth/saml/${provider}/acs`;
    const body = samlResponse({
      signer, audience: `${server.url}/auth/saml/${provider}/metadata`, acsUrl, inResponseTo: request.id, nameId,
      nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent', attributes, ...(issuer ? { issuer } : {}),
    });
    const res = await browser.request(acsUrl, { method: 'POST', form: { SAMLResponse: body, RelayState: request.relayState ?? '' } });
    const fresh = (await api(server, '/api/v1/sessions')).json<{ sessions: { id: string; user: string }[] }>().sessions.filter((s) => !before.has(s.id));
    return { status: res.status, text: res.text, ...(fresh[0] ? { user: fresh[0].user } : {}) };
  }

  const addSaml = async (name: string, key: IdpKey, extra: Record<string, unknown>) => {
    const res = await api(server, '/api/v1/identity-providers', { method: 'POST', body: { name, kind: 'saml', config: { entry_point: 'https://idp.test/sso', idp_cert: key.certPem, ...extra } } });
    assert.equal(res.status, 201, res.text);
  };

  before(async () => {
    [corpKey, rogueKey] = await Promise.all([createIdpKey('corp-idp'), createIdpKey('rogue-idp')]);
    server = await startServer();
    await addSaml('corp-saml', corpKey, { idp_issuer: CORP_ISSUER, trusted_email_domains: ['corp.example'] });
    await addSaml('rogue-saml', rogueKey, {});
    const res = await api(server, '/api/v1/users', { method: 'POST', body: { email: VICTIM, password: 'correct horse battery staple' } });
    assert.equal(res.status, 201, res.text);
  });

  after(cleanupAll);

  test('an IdP not trusted for the domain cannot reach an existing user, whatever the attributes say', async () => {
    const variants: Record<string, string>[] = [{ email: VICTIM }, { email: 'VICTIM@corp.example', email_verified: 'true' }, { email: VICTIM, iss: CORP_ISSUER }];
    for (const [i, attributes] of variants.entries()) {
      const outcome = await signIn('rogue-saml', rogueKey, `rogue-${i}`, attributes);
      assert.equal(outcome.user, undefined, JSON.stringify(attributes));
      assert.equal(outcome.status, 403);
      assert.match(outcome.text, /does not vouch for victim@corp\.example/);
    }
    await waitForAudit(server, ['--type', 'login.failed'], (e) => e.actor === VICTIM && /does not vouch/.test(e.reason), 'the refusal in the audit trail');
  });

  test('a trusted IdP links the victim once; the NameID finds them again; a rogue IdP naming its Issuer does not', async () => {
    assert.equal((await signIn('corp-saml', corpKey, 'victim-nameid', { email: VICTIM }, CORP_ISSUER)).user, VICTIM);
    assert.equal((await signIn('corp-saml', corpKey, 'victim-nameid', { email: 'victim.renamed@corp.example' }, CORP_ISSUER)).user, VICTIM, 'the link wins over a changed email');
    const spoof = await signIn('rogue-saml', rogueKey, 'victim-nameid', { email: 'mallory@rogue.example' }, CORP_ISSUER);
    assert.notEqual(spoof.user, VICTIM, 'another IdP claiming the trusted entity id does not inherit its links');
    const links = (await api(server, `/api/v1/users/${VICTIM}`)).json<{ identities: { issuer: string; subject: string }[] }>().identities;
    assert.deepEqual(links.map((l) => [l.issuer, l.subject]), [[CORP_ISSUER, 'victim-nameid']]);
  });
});
