// A SAML identity provider inside the test: an RSA key with a self-signed certificate, and
// Responses whose Assertion (and optionally the Response) is signed with xml-crypto through
// node-saml's own signing helper, as a real IdP would send them to an ACS.
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { signSamlPost } from '@node-saml/node-saml/lib/saml-post-signing.js';
import xmlenc from 'xml-encryption';
import { x509 } from '../../src/ca/x509.js';

const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 } as const;

export interface IdpKey {
  readonly certPem: string;
  readonly privateKeyPem: string;
}

export async function createIdpKey(commonName = 'test-idp'): Promise<IdpKey> {
  const keys = await crypto.subtle.generateKey(RSA, true, ['sign', 'verify']) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=${commonName}`,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 24 * 3600_000),
    keys,
    signingAlgorithm: RSA,
  });
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  return {
    certPem: cert.toString('pem'),
    privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${pkcs8.match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`,
  };
}

export interface AssertionInput {
  /** Who signs; undefined = unsigned. */
  signer?: IdpKey;
  /** Also sign the whole Response. */
  signResponse?: boolean;
  issuer?: string;
  audience: string;
  acsUrl: string;
  inResponseTo?: string;
  /** Defaults to inResponseTo. */
  subjectInResponseTo?: string;
  nameId: string;
  nameIdFormat?: string;
  attributes?: Record<string, string | string[]>;
  /** Default now. */
  issuedAt?: Date;
  /** Default issuedAt + 5 min. */
  notOnOrAfter?: Date;
}

/** The same response with its (signed) Assertion encrypted for the SP's certificate, as an EncryptedAssertion. */
export async function encryptAssertion(base64Response: string, spCertPem: string): Promise<string> {
  const xml = Buffer.from(base64Response, 'base64').toString('utf8');
  const assertion = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(xml)![0];
  const encrypt = promisify(xmlenc.encrypt) as (content: string, options: xmlenc.EncryptOptions) => Promise<string>;
  const encrypted = await encrypt(assertion, {
    rsa_pub: spCertPem, pem: spCertPem,
    encryptionAlgorithm: 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
    keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
  });
  const wrapped = xml.replace(assertion, `<saml:EncryptedAssertion>${encrypted}</saml:EncryptedAssertion>`);
  return Buffer.from(wrapped, 'utf8').toString('base64');
}

const xmlEscape = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const id = () => `_${randomBytes(16).toString('hex')}`;

/** A base64 SAMLResponse as the IdP would POST it. */
export function samlResponse(input: AssertionInput): string {
  const issuedAt = input.issuedAt ?? new Date();
  const notOnOrAfter = input.notOnOrAfter ?? new Date(issuedAt.getTime() + 5 * 60_000);
  const notBefore = new Date(issuedAt.getTime() - 60_000);
  const issuer = xmlEscape(input.issuer ?? 'https://idp.test/metadata');
  const irt = input.inResponseTo === undefined ? '' : ` InResponseTo="${xmlEscape(input.inResponseTo)}"`;
  const subjectIrt = input.subjectInResponseTo ?? input.inResponseTo;
  const attributes = Object.entries(input.attributes ?? {}).map(([name, value]) =>
    `<saml:Attribute Name="${xmlEscape(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">${
      ([] as string[]).concat(value).map((v) => `<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">${xmlEscape(v)}</saml:AttributeValue>`).join('')
    }</saml:Attribute>`).join('');
  const assertion = `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id()}" Version="2.0" IssueInstant="${issuedAt.toISOString()}">`
    + `<saml:Issuer>${issuer}</saml:Issuer>`
    + `<saml:Subject><saml:NameID Format="${xmlEscape(input.nameIdFormat ?? 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress')}">${xmlEscape(input.nameId)}</saml:NameID>`
    + `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData${subjectIrt === undefined ? '' : ` InResponseTo="${xmlEscape(subjectIrt)}"`} NotOnOrAfter="${notOnOrAfter.toISOString()}" Recipient="${xmlEscape(input.acsUrl)}"/></saml:SubjectConfirmation></saml:Subject>`
    + `<saml:Conditions NotBefore="${notBefore.toISOString()}" NotOnOrAfter="${notOnOrAfter.toISOString()}"><saml:AudienceRestriction><saml:Audience>${xmlEscape(input.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>`
    + `<saml:AuthnStatement AuthnInstant="${issuedAt.toISOString()}" SessionIndex="${id()}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`
    + (attributes ? `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` : '')
    + `</saml:Assertion>`;
  let xml = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id()}" Version="2.0" IssueInstant="${issuedAt.toISOString()}" Destination="${xmlEscape(input.acsUrl)}"${irt}>`
    + `<saml:Issuer>${issuer}</saml:Issuer>`
    + `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>`
    + assertion
    + `</samlp:Response>`;
  if (input.signer) {
    const options = { privateKey: input.signer.privateKeyPem, publicCert: input.signer.certPem, signatureAlgorithm: 'sha256' as const, digestAlgorithm: 'sha256' };
    xml = signSamlPost(xml, "/*[local-name(.)='Response']/*[local-name(.)='Assertion']", options);
    if (input.signResponse) xml = signSamlPost(xml, "/*[local-name(.)='Response']", options);
  }
  return Buffer.from(xml, 'utf8').toString('base64');
}

/** The AuthnRequest inside a redirect-binding URL (deflated, base64). */
export async function authnRequestFrom(url: string): Promise<{ id: string; acsUrl: string | undefined; issuer: string | undefined; relayState: string | null; xml: string }> {
  const { inflateRawSync } = await import('node:zlib');
  const parsed = new URL(url);
  const xml = inflateRawSync(Buffer.from(parsed.searchParams.get('SAMLRequest') ?? '', 'base64')).toString('utf8');
  return {
    id: /\sID="([^"]+)"/.exec(xml)?.[1] ?? '',
    acsUrl: /AssertionConsumerServiceURL="([^"]+)"/.exec(xml)?.[1],
    issuer: /<saml:Issuer[^>]*>([^<]+)</.exec(xml)?.[1],
    relayState: parsed.searchParams.get('RelayState'),
    xml,
  };
}
