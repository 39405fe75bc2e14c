// SAML service provider against a test IdP that signs real assertions: a valid signed assertion
// is accepted and mapped (email, groups); unsigned, signed by another key, wrong audience, wrong
// recipient, expired, InResponseTo mismatch and a wrong issuer are refused; config errors, SP
// metadata, the AuthnRequest and the signed state cookie.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { isPosternError } from '../../src/errors.js';
import {
  isRelayState, newRelayState, newSamlRequestId, openSamlState, parseSamlConfig, samlAuthorizeUrl, samlMetadata,
  samlLinkIssuer, samlServiceProvider, samlSpKey, sealSamlState, validateSamlResponse,
} from '../../src/identity/saml.js';
import { createPublicKey, verify } from 'node:crypto';
import type { SamlProviderSettings } from '../../src/identity/saml.js';
import { authnRequestFrom, createIdpKey, encryptAssertion, samlResponse } from '../helpers/saml-idp.js';
import type { AssertionInput, IdpKey } from '../helpers/saml-idp.js';

const sp = samlServiceProvider('https://localhost:8443', 'corp-idp');
const GROUPS = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups';
const EMAIL = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isPosternError(err, 'identity_invalid'), String(err));
    return err.message;
  }
  assert.fail('expected the response to be refused');
}

describe('SAML service provider', () => {
  let idp: IdpKey;
  let other: IdpKey;
  let settings: SamlProviderSettings;
  const requestId = newSamlRequestId();
  const issuedAt = new Date();
  const base = (): AssertionInput => ({
    audience: sp.entityId, acsUrl: sp.acsUrl, inResponseTo: requestId, nameId: 'ignored-persistent-id',
    nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    attributes: { [EMAIL]: 'Alice@Corp.Example', [GROUPS]: ['g-1234', 'g-admins', 'g-unmapped'], displayName: 'Alice A.' },
  });
  const validate = (input: Partial<AssertionInput>, s: SamlProviderSettings = settings, expectedId = requestId) =>
    validateSamlResponse(s, sp, samlResponse({ ...base(), signer: idp, ...input }), { requestId: expectedId, issuedAt });

  before(async () => {
    [idp, other] = await Promise.all([createIdpKey('idp'), createIdpKey('attacker')]);
    settings = parseSamlConfig({
      entry_point: 'https://idp.test/sso', idp_cert: idp.certPem, idp_issuer: 'https://idp.test/metadata',
      email_attribute: EMAIL, groups_attribute: GROUPS, name_attribute: 'displayName',
      group_map: { 'g-1234': 'staff', 'g-admins': ['admins', 'staff'] },
    });
  });

  test('a signed assertion is accepted and mapped: email, name, groups through the map', async () => {
    const login = await validate({});
    assert.deepEqual(login.identity, { email: 'alice@corp.example', name: 'Alice A.', subject: 'ignored-persistent-id', issuer: 'https://idp.test/metadata', emailVerified: false, groups: ['staff', 'admins'] });
    assert.equal(login.issuer, 'https://idp.test/metadata');
    // Attributes never vouch for the address nor name another issuer to link by.
    const spoofed = await validate({ attributes: { ...base().attributes, email_verified: 'true', iss: 'https://other.example', 'saml:Issuer': 'https://other.example' } });
    assert.deepEqual([spoofed.identity.emailVerified, spoofed.identity.issuer], [false, 'https://idp.test/metadata']);
    // Links are keyed by the pinned idp_issuer, else scoped to the provider record.
    assert.equal(samlLinkIssuer(settings, 'idp_1', login.issuer), 'https://idp.test/metadata');
    const unpinned = parseSamlConfig({ entry_point: 'https://idp.test/sso', idp_cert: [idp.certPem] });
    assert.equal(samlLinkIssuer(unpinned, 'idp_1', 'https://idp.test/metadata'), 'urn:postern:saml:idp_1:https://idp.test/metadata');
    const signedTwice = await validate({ signResponse: true });
    assert.equal(signedTwice.identity.email, 'alice@corp.example');
  });

  test('without an email attribute an emailAddress NameID is the email; unmapped groups kept when asked', async () => {
    const s = parseSamlConfig({ entry_point: 'https://idp.test/sso', idp_cert: [idp.certPem], groups_attribute: 'groups', group_map: { a: 'A' }, keep_unmapped_groups: true });
    const login = await validate({ nameId: 'Bob@Corp.Example', nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress', attributes: { groups: ['a', 'b'] } }, s);
    assert.equal(login.identity.email, 'bob@corp.example');
    assert.deepEqual(login.identity.groups, ['A', 'b']);
    const s2 = parseSamlConfig({ entry_point: 'https://idp.test/sso', idp_cert: idp.certPem });
    assert.match(await refusal(validate({ attributes: {} }, s2)), /sent no email address/);
  });

  test('an unsigned assertion is refused, even when the whole response is signed', async () => {
    assert.match(await refusal(validate({ signer: undefined })), /refused: Invalid signature/);
    // Only the Response signed, not the Assertion: wantAssertionsSigned refuses it.
    const responseOnly = samlResponse({ ...base(), signer: idp, signResponse: true });
    const xml = Buffer.from(responseOnly, 'base64').toString('utf8');
    const assertionSignature = /<saml:Assertion[\s\S]*?(<(?:ds:)?Signature[\s\S]*?<\/(?:ds:)?Signature>)/.exec(xml)?.[1];
    assert.ok(assertionSignature);
    const stripped = Buffer.from(xml.replace(assertionSignature, ''), 'utf8').toString('base64');
    assert.match(await refusal(validateSamlResponse(settings, sp, stripped, { requestId, issuedAt })), /refused/);
  });

  test('want_response_signed also requires the signature on the whole Response', async () => {
    const strict = parseSamlConfig({ entry_point: 'https://idp.test/sso', idp_cert: idp.certPem, email_attribute: EMAIL, want_response_signed: true });
    assert.match(await refusal(validate({}, strict)), /Invalid document signature/);
    assert.equal((await validate({ signResponse: true }, strict)).identity.email, 'alice@corp.example');
  });

  test('an assertion signed by another key is refused', async () => {
    assert.match(await refusal(validate({ signer: other })), /refused: Invalid signature/);
  });

  test('a tampered signed assertion is refused', async () => {
    const xml = Buffer.from(samlResponse({ ...base(), signer: idp }), 'base64').toString('utf8');
    const tampered = Buffer.from(xml.replace('Alice@Corp.Example', 'Mallory@Corp.Example'), 'utf8').toString('base64');
    assert.match(await refusal(validateSamlResponse(settings, sp, tampered, { requestId, issuedAt })), /refused: Invalid signature/);
  });

  test('a wrong audience is refused', async () => {
    assert.match(await refusal(validate({ audience: 'https://other-sp.example/metadata' })), /audience mismatch/);
  });

  test('a wrong recipient is refused', async () => {
    assert.match(await refusal(validate({ acsUrl: 'https://evil.example/acs' })), /another recipient/);
  });

  test('an expired assertion is refused (beyond the small clock skew), and one from the future too', async () => {
    const old = new Date(Date.now() - 20 * 60_000);
    assert.match(await refusal(validate({ issuedAt: old, notOnOrAfter: new Date(Date.now() - 60_000) })), /expired|No valid subject confirmation/);
    // Still inside its own NotOnOrAfter, but issued longer ago than the SP's maximum assertion age.
    assert.match(await refusal(validate({ issuedAt: new Date(Date.now() - 15 * 60_000), notOnOrAfter: new Date(Date.now() + 60_000) })), /No valid subject confirmation/);
    const future = new Date(Date.now() + 10 * 60_000);
    assert.match(await refusal(validate({ issuedAt: future })), /not yet valid/);
    // A few seconds past NotOnOrAfter is within the skew.
    assert.equal((await validate({ notOnOrAfter: new Date(Date.now() - 5_000), issuedAt: new Date(Date.now() - 60_000) })).identity.email, 'alice@corp.example');
  });

  test('an InResponseTo mismatch is refused, in the response or in the signed assertion, and a missing one too', async () => {
    assert.match(await refusal(validate({}, settings, newSamlRequestId())), /InResponseTo is not valid/);
    assert.match(await refusal(validate({ subjectInResponseTo: newSamlRequestId() })), /InResponseTo does not match subjectInResponseTo/);
    assert.match(await refusal(validate({ inResponseTo: undefined, subjectInResponseTo: requestId })), /InResponseTo is missing/);
  });

  test('an assertion from another issuer is refused when the issuer is configured', async () => {
    assert.match(await refusal(validate({ issuer: 'https://other-idp.example/' })), /unexpected issuer/);
  });

  test('garbage is refused clearly', async () => {
    assert.match(await refusal(validateSamlResponse(settings, sp, '', { requestId, issuedAt })), /missing or not base64/);
    assert.match(await refusal(validateSamlResponse(settings, sp, Buffer.from('<x/>').toString('base64'), { requestId, issuedAt })), /refused/);
  });

  test('config errors name the field', () => {
    const bad = (config: unknown) => {
      try {
        parseSamlConfig(config);
      } catch (err) {
        assert.ok(isPosternError(err, 'config_invalid'));
        return err.message;
      }
      return '';
    };
    assert.match(bad({ idp_cert: idp.certPem }), /entry_point/);
    assert.match(bad({ entry_point: 'javascript:alert(1)', idp_cert: idp.certPem }), /entry_point must be an http\(s\) URL/);
    assert.match(bad({ entry_point: 'https://idp.test/sso' }), /idp_cert/);
    assert.match(bad({ entry_point: 'https://idp.test/sso', idp_cert: 'not a cert!' }), /PEM certificate/);
    assert.match(bad({ entry_point: 'https://idp.test/sso', idp_cert: 'QUJD' }), /valid X\.509/);
  });

  test('metadata and the AuthnRequest carry the SP entity id and ACS', async () => {
    const xml = samlMetadata(settings, sp);
    assert.match(xml, /entityID="https:\/\/localhost:8443\/auth\/saml\/corp-idp\/metadata"/);
    assert.match(xml, /Location="https:\/\/localhost:8443\/auth\/saml\/corp-idp\/acs"/);
    assert.match(xml, /WantAssertionsSigned="true"/);
    const relay = newRelayState();
    const url = await samlAuthorizeUrl(settings, sp, requestId, relay);
    assert.ok(url.startsWith('https://idp.test/sso?'));
    const request = await authnRequestFrom(url);
    assert.equal(request.id, requestId);
    assert.equal(request.acsUrl, sp.acsUrl);
    assert.equal(request.issuer, sp.entityId);
    assert.equal(request.relayState, relay);
  });

  test('with an SP key: AuthnRequests are signed, metadata publishes the key, encrypted assertions are accepted', async () => {
    const spPair = await createIdpKey('sp');
    const withKey = parseSamlConfig({ entry_point: 'https://idp.test/sso', idp_cert: idp.certPem, email_attribute: EMAIL, sp_cert: spPair.certPem });
    const spKey = samlSpKey(withKey, spPair.privateKeyPem)!;
    assert.equal(samlSpKey(settings, undefined), undefined);
    assert.throws(() => samlSpKey(withKey, undefined), /needs both/);
    assert.throws(() => samlSpKey(withKey, other.privateKeyPem), /does not match sp_cert/);

    const xml = samlMetadata(withKey, sp, spKey);
    assert.match(xml, /AuthnRequestsSigned="true"/);
    assert.match(xml, /use="signing"/);
    assert.match(xml, /use="encryption"/);

    const url = new URL(await samlAuthorizeUrl(withKey, sp, requestId, 'relay-1', spKey));
    assert.equal(url.searchParams.get('SigAlg'), 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    const signed = url.search.slice(1).split('&').filter((p) => !p.startsWith('Signature=')).join('&');
    const signature = Buffer.from(url.searchParams.get('Signature')!, 'base64');
    assert.ok(verify('sha256', Buffer.from(signed), createPublicKey(spPair.certPem), signature), 'the redirect-binding signature verifies with the SP certificate');

    const encrypted = await encryptAssertion(samlResponse({ ...base(), signer: idp }), spPair.certPem);
    assert.doesNotMatch(Buffer.from(encrypted, 'base64').toString('utf8'), /Alice@Corp/);
    const login = await validateSamlResponse(withKey, sp, encrypted, { requestId, issuedAt }, spKey);
    assert.equal(login.identity.email, 'alice@corp.example');
    const unsignedInside = await encryptAssertion(samlResponse({ ...base(), signer: undefined }), spPair.certPem);
    assert.match(await refusal(validateSamlResponse(withKey, sp, unsignedInside, { requestId, issuedAt }, spKey)), /Invalid signature/);
    assert.match(await refusal(validateSamlResponse(withKey, sp, encrypted, { requestId, issuedAt })), /No decryption key/);
  });

  test('the state cookie: sealed, bound to its relay and provider, expires, refuses tampering', () => {
    const key = Buffer.alloc(32, 7);
    const relay = newRelayState();
    assert.ok(isRelayState(relay));
    assert.ok(!isRelayState('x'.repeat(100)));
    const now = new Date();
    const state = { relay, provider: 'corp-idp', requestId, socket: 'app', returnTo: '/x', issuedAt: Math.floor(now.getTime() / 1000), expiresAt: Math.floor(now.getTime() / 1000) + 600 };
    const sealed = sealSamlState(key, state);
    assert.deepEqual(openSamlState(key, sealed, { relay, provider: 'corp-idp', now }), state);
    const fails = (f: () => unknown, pattern: RegExp) => assert.throws(f, (err: unknown) => isPosternError(err, 'identity_invalid') && pattern.test(err.message));
    fails(() => openSamlState(key, undefined, { relay, provider: 'corp-idp', now }), /no sign-in cookie/);
    fails(() => openSamlState(Buffer.alloc(32, 8), sealed, { relay, provider: 'corp-idp', now }), /not valid/);
    fails(() => openSamlState(key, `${Buffer.from(JSON.stringify({ ...state, socket: 'other' })).toString('base64url')}.${sealed.split('.')[1]}`, { relay, provider: 'corp-idp', now }), /not valid/);
    fails(() => openSamlState(key, sealed, { relay: newRelayState(), provider: 'corp-idp', now }), /another sign-in/);
    fails(() => openSamlState(key, sealed, { relay, provider: 'other', now }), /another sign-in/);
    fails(() => openSamlState(key, sealed, { relay, provider: 'corp-idp', now: new Date(now.getTime() + 601_000) }), /expired/);
    fails(() => openSamlState(key, 'garbage', { relay, provider: 'corp-idp', now }), /not valid/);
  });
});
