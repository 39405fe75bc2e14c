// caPin (src/ca/pin.ts): the join token's CA pin is the SHA-256 of the DER, so it is
// stable for one certificate however its PEM is laid out.
import assert from 'node:assert/strict';
import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { CertificateAuthority, caPin, createKeyCipher } from '../../src/ca/index.js';
import { MemorySecrets } from './helpers.js';

const cipher = createKeyCipher(randomBytes(32));

test('caPin: stable for the same certificate, whatever the PEM whitespace', async () => {
  const secrets = new MemorySecrets();
  const pem = (await CertificateAuthority.loadOrCreate(secrets, cipher)).certificatePem;
  const pin = caPin(pem);
  assert.match(pin, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(caPin(pem), pin);
  assert.equal(caPin((await CertificateAuthority.loadOrCreate(secrets, cipher)).certificatePem), pin);
  assert.equal(caPin(pem.replace(/\n/g, '\r\n')), pin);
  assert.equal(caPin(`\n\n${pem.trim()}`), pin);
  assert.equal(pin, createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url'));
});

test('caPin: differs between roots; throws on something that is not a certificate', async () => {
  const a = (await CertificateAuthority.loadOrCreate(new MemorySecrets(), cipher)).certificatePem;
  const b = (await CertificateAuthority.loadOrCreate(new MemorySecrets(), cipher)).certificatePem;
  assert.notEqual(caPin(a), caPin(b));
  assert.throws(() => caPin('not a certificate'));
});
