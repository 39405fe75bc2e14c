// Real TLS handshakes on 127.0.0.1 with certificates from the CA: trusted by its root only.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { CertificateAuthority, createKeyCipher } from '../../src/ca/index.js';
import { MemorySecrets } from './helpers.js';

const cipher = createKeyCipher(randomBytes(32));
let ca: CertificateAuthority;
let otherRoot = '';
let server: tls.Server;
let port = 0;

before(async () => {
  ca = await CertificateAuthority.loadOrCreate(new MemorySecrets(), cipher);
  otherRoot = (await CertificateAuthority.loadOrCreate(new MemorySecrets(), cipher)).certificatePem;
  const { certPem, keyPem } = await ca.serverCredentials('a.localhost');
  server = tls.createServer({ cert: certPem, key: keyPem }, (socket) => socket.end('hello over tls'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
after(() => server.close());

function handshake(options: tls.ConnectionOptions): Promise<{ socket?: tls.TLSSocket; error?: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...options });
    socket.once('secureConnect', () => resolve({ socket }));
    socket.once('error', (error) => resolve({ error }));
  });
}

test('tls: a client trusting only the root completes the handshake for a.localhost', async () => {
  const { socket, error } = await handshake({ servername: 'a.localhost', ca: ca.certificatePem });
  assert.equal(error, undefined);
  assert.equal(socket!.authorized, true);
  assert.equal(socket!.getPeerCertificate().subject.CN, 'a.localhost');
  let text = '';
  for await (const chunk of socket!) text += String(chunk);
  assert.equal(text, 'hello over tls');
});

test('tls: a client trusting another root refuses the server', async () => {
  const { socket, error } = await handshake({ servername: 'a.localhost', ca: otherRoot });
  assert.equal(socket, undefined);
  assert.ok(error);
  assert.match(String(error.code), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED|CERT_SIGNATURE_FAILURE/);
});

test('tls: the right root but another host name is refused', async () => {
  const { socket, error } = await handshake({ servername: 'b.localhost', ca: ca.certificatePem });
  assert.equal(socket, undefined);
  assert.equal(error?.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
});
