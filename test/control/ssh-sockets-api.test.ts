// The control API for managed SSH sockets on a real server: the public host CA and its
// known_hosts line (the same after a restart), `ssh` sockets with tcp:// upstreams, input
// recording and the upstream host key pin — set, refused when malformed, forgotten — and the
// SSH fields refused on other socket types.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';

const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII+qq1xzldjQGwImdjM9bRTyOahKOm4fMeXHxLPb0kTT';

interface Socket {
  name: string;
  type: string;
  upstream: string | null;
  recordInput: boolean;
  upstreamHostKey: string | null;
}

interface Problem {
  status: number;
  code: string;
  detail: string;
}

describe('control API: ssh sockets and the SSH host CA', () => {
  let server: ServerHandle;

  before(async () => {
    server = await startServer();
  });

  after(async () => {
    await cleanupAll();
  });

  test('GET /api/v1/ssh/host-ca needs no sign-in and gives the key and the known_hosts line for *.<domain>', async () => {
    const res = await api(server, '/api/v1/ssh/host-ca', { token: null });
    assert.equal(res.status, 200, res.text);
    const body = res.json<{ public_key: string; known_hosts: string }>();
    assert.deepEqual(Object.keys(body).sort(), ['known_hosts', 'public_key']);
    assert.match(body.public_key, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\S+ postern-host-ca$/);
    assert.equal(body.known_hosts, `@cert-authority *.localhost ${body.public_key}`);
    const userCa = (await api(server, '/api/v1/ssh/ca', { token: null })).json<{ publicKey: string }>().publicKey;
    assert.notEqual(body.public_key.split(' ')[1], userCa.split(' ')[1], 'hosts are certified by a CA of their own');
    const paths = (await api(server, '/api/v1/openapi.json', { token: null })).json<{ paths: Record<string, unknown> }>().paths;
    assert.ok('/api/v1/ssh/host-ca' in paths);
  });

  test('an ssh socket: tcp:// upstream, record_input, no pin until one is set; a pin is checked and can be forgotten', async () => {
    const created = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'prod', type: 'ssh', upstream: 'tcp://127.0.0.1:22', record_input: true } });
    assert.equal(created.status, 201, created.text);
    const socket = created.json<Socket>();
    assert.deepEqual([socket.type, socket.upstream, socket.recordInput, socket.upstreamHostKey], ['ssh', 'tcp://127.0.0.1:22', true, null]);

    const pinned = await api(server, '/api/v1/sockets/prod', { method: 'PATCH', body: { upstream_host_key: HOST_KEY } });
    assert.equal(pinned.status, 200, pinned.text);
    assert.equal(pinned.json<Socket>().upstreamHostKey, HOST_KEY);

    const malformed = await api(server, '/api/v1/sockets/prod', { method: 'PATCH', body: { upstream_host_key: `${HOST_KEY} root@box` } });
    assert.equal(malformed.status, 400);
    assert.match(malformed.headers['content-type'] ?? '', /application\/problem\+json/);
    assert.equal(malformed.json<Problem>().code, 'bad_request');
    assert.match(malformed.json<Problem>().detail, /upstreamHostKey must be an SSH public key/);

    const quiet = await api(server, '/api/v1/sockets/prod', { method: 'PATCH', body: { record_input: false } });
    assert.deepEqual([quiet.json<Socket>().recordInput, quiet.json<Socket>().upstreamHostKey], [false, HOST_KEY], 'other patches keep the pin');
    const forgotten = await api(server, '/api/v1/sockets/prod', { method: 'PATCH', body: { upstream_host_key: null } });
    assert.equal(forgotten.json<Socket>().upstreamHostKey, null);
    assert.equal((await api(server, '/api/v1/sockets/prod')).json<Socket>().upstreamHostKey, null);
  });

  test('an ssh socket refuses an http:// upstream; other types refuse the SSH fields', async () => {
    const http = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'bad-ssh', type: 'ssh', upstream: 'http://127.0.0.1:22' } });
    assert.equal(http.status, 400);
    assert.match(http.json<Problem>().detail, /a ssh socket's upstream must start with tcp:\/\//);

    const web = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'web', type: 'http', record_input: true } });
    assert.equal(web.status, 400);
    assert.match(web.json<Problem>().detail, /record_input applies to ssh sockets only, not to a http socket/);
    assert.equal((await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'web', type: 'http' } })).status, 201);
    const pin = await api(server, '/api/v1/sockets/web', { method: 'PATCH', body: { upstream_host_key: HOST_KEY } });
    assert.equal(pin.status, 400);
    assert.match(pin.json<Problem>().detail, /upstream_host_key applies to ssh sockets only/);
    const off = await api(server, '/api/v1/sockets/web', { method: 'PATCH', body: { record_input: false, upstream_host_key: null } });
    assert.equal(off.status, 200, 'turning them off is harmless on any socket');
  });

  test('the host CA is sealed in the store: the same after a restart', async () => {
    const before = (await api(server, '/api/v1/ssh/host-ca', { token: null })).json<{ public_key: string }>().public_key;
    await server.stop();
    server = await startServer({ dataDir: server.dataDir });
    const after = (await api(server, '/api/v1/ssh/host-ca', { token: null })).json<{ public_key: string }>().public_key;
    assert.equal(after, before);
    assert.equal((await api(server, '/api/v1/sockets/prod')).json<Socket>().type, 'ssh');
  });
});
