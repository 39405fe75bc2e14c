// The connector's PostgreSQL login: the config names a role and where its password is, and the
// connector answers the upstream's authentication itself (SCRAM-SHA-256 checked against RFC 7677).
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConnectorConfig } from '../../src/connector/config.js';
import { UpstreamAuth } from '../../src/connector/postgres.js';
import { encodeBackend } from '../../src/pgwire/backend.js';
import type { BackendMessage } from '../../src/pgwire/backend.js';
import { decodeFrontend, decodeSaslInitialResponse } from '../../src/pgwire/frontend.js';

const packet = (message: BackendMessage) => {
  const raw = encodeBackend(message);
  return { type: String.fromCharCode(raw[0]!), payload: raw.subarray(5), raw };
};
const replyData = (answer: ReturnType<UpstreamAuth['answer']>): Buffer => {
  assert.equal(answer.kind, 'reply');
  const raw = (answer as { bytes: Buffer }).bytes;
  const message = decodeFrontend({ type: 'p', payload: raw.subarray(5) });
  assert.equal(message.type, 'AuthenticationResponse');
  return (message as { data: Buffer }).data;
};

test('a postgres socket needs a postgres login in the connector config, and only it may have one', () => {
  const yaml = (socket: string) => `server: https://localhost:8443\nsockets:\n  - ${socket}\n`;
  const ok = parseConnectorConfig(yaml('{ name: orders, type: postgres, upstream: "tcp://127.0.0.1:5432", postgres: { user: app, password_env: PW } }'), 'c.yaml');
  assert.deepEqual(ok.sockets[0]!.postgres, { user: 'app', password_env: 'PW' });
  assert.throws(() => parseConnectorConfig(yaml('{ name: orders, type: postgres, upstream: "tcp://127.0.0.1:5432" }'), 'c.yaml'), /type postgres needs one/);
  assert.throws(() => parseConnectorConfig(yaml('{ name: db, type: tls, upstream: "tcp://127.0.0.1:5432", postgres: { user: app } }'), 'c.yaml'), /a postgres login goes with type postgres/);
  assert.throws(() => parseConnectorConfig(yaml('{ name: orders, type: postgres, upstream: "tcp://127.0.0.1:5432", postgres: { user: app, password_env: A, password_file: b } }'), 'c.yaml'), /not both/);
});

test('SCRAM-SHA-256 as RFC 7677 shows it; a wrong server signature is refused', () => {
  const auth = new UpstreamAuth('user', 'pencil', () => 'rOprNGfwEbeRWgbNEkqO');
  const first = decodeSaslInitialResponse(replyData(auth.answer(packet({ type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256'] }))));
  assert.equal(first.mechanism, 'SCRAM-SHA-256');
  assert.equal(first.response?.toString(), 'n,,n=*,r=rOprNGfwEbeRWgbNEkqO');
  const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
  const final = replyData(auth.answer(packet({ type: 'AuthenticationSASLContinue', data: Buffer.from(serverFirst) }))).toString();
  // RFC 7677's proof is for username "user" in the bare message; PostgreSQL's is for "*" (it ignores the SCRAM user name).
  assert.match(final, /^c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj\)hNlF\$k0,p=[A-Za-z0-9+/]{43}=$/);
  assert.deepEqual(auth.answer(packet({ type: 'AuthenticationSASLFinal', data: Buffer.from('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=') })), { kind: 'refused', reason: 'the upstream\'s SCRAM server signature did not verify' });
});

test('SCRAM-SHA-256: the proof verifies as a server checks it (StoredKey), and the server\'s signature is accepted', () => {
  const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
  const salted = pbkdf2Sync('pencil', salt, 4096, 32, 'sha256');
  const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest();
  const auth = new UpstreamAuth('app', 'pencil', () => 'clientnonce');
  const bare = decodeSaslInitialResponse(replyData(auth.answer(packet({ type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] })))).response!.toString().slice(3);
  const serverFirst = `r=clientnonceSERVER,s=${salt.toString('base64')},i=4096`;
  const final = replyData(auth.answer(packet({ type: 'AuthenticationSASLContinue', data: Buffer.from(serverFirst) }))).toString();
  const [withoutProof, proof] = final.split(',p=') as [string, string];
  const authMessage = `${bare},${serverFirst},${withoutProof}`;
  const signature = createHmac('sha256', storedKey).update(authMessage).digest();
  const clientKey = Buffer.from(Buffer.from(proof, 'base64').map((b, i) => b ^ signature[i]!));
  assert.deepEqual(createHash('sha256').update(clientKey).digest(), storedKey);
  const serverSignature = createHmac('sha256', createHmac('sha256', salted).update('Server Key').digest()).update(authMessage).digest();
  assert.equal(auth.answer(packet({ type: 'AuthenticationSASLFinal', data: Buffer.from(`v=${serverSignature.toString('base64')}`) })).kind, 'wait');
});

test('MD5 and cleartext answers; no password configured is a refusal that says so', () => {
  const md5 = replyData(new UpstreamAuth('app', 'secret').answer(packet({ type: 'AuthenticationMD5Password', salt: Buffer.from([1, 2, 3, 4]) })));
  assert.match(md5.toString(), /^md5[0-9a-f]{32}\0$/);
  assert.equal(replyData(new UpstreamAuth('app', 'secret').answer(packet({ type: 'AuthenticationCleartextPassword' }))).toString(), 'secret\0');
  const none = new UpstreamAuth('app', undefined).answer(packet({ type: 'AuthenticationCleartextPassword' }));
  assert.equal(none.kind, 'refused');
  assert.match((none as { reason: string }).reason, /password_env or password_file/);
  assert.deepEqual(new UpstreamAuth('app', undefined).answer(packet({ type: 'AuthenticationOk' })), { kind: 'done' });
});
