// Security: behind a load balancer the control plane must see the client the edge resolved
// (X-Forwarded-For and the PROXY protocol, believed only from --trusted-proxies), not the
// balancer. Once, five wrong passwords through the balancer locked the account for everyone
// and the audit showed 127.0.0.1; parallel guesses all got 401 before the first 429 because
// attempts were counted only after the (slow, async) password check.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { auditEvents, cleanupAll, startServer, waitForAudit } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api, httpsFetch } from '../helpers/https.js';
import type { HttpsOptions } from '../helpers/https.js';

const PASSWORD = 'correct horse battery staple';

/** How a request reaches the edge: straight, through a trusted proxy (XFF or PROXY protocol), or from an untrusted peer. */
type Via = Pick<HttpsOptions, 'localAddress' | 'proxySource'> & { forwardedFor?: string };

describe('security: the control plane sees the resolved client address', () => {
  let server: ServerHandle;

  before(async () => {
    server = await startServer({ extraArgs: ['--trusted-proxies', '127.0.0.1'] });
    for (const email of ['victim@corp.example', 'proxied@corp.example', 'untrusted@corp.example', 'parallel@corp.example']) {
      const created = await api(server, '/api/v1/users', { method: 'POST', body: { email, password: PASSWORD } });
      assert.equal(created.status, 201, created.text);
    }
  });

  after(async () => {
    await cleanupAll();
  });

  /** GET the form (for its CSRF cookie and field), then POST the password; the status of the POST. */
  async function signIn(email: string, password: string, via: Via): Promise<number> {
    const base = { port: server.port, ca: server.caPem, ...(via.localAddress ? { localAddress: via.localAddress } : {}), ...(via.proxySource ? { proxySource: via.proxySource } : {}) };
    const xff: Record<string, string> = via.forwardedFor ? { 'x-forwarded-for': via.forwardedFor } : {};
    const form = await httpsFetch({ ...base, path: '/auth/login', headers: xff });
    assert.equal(form.status, 200, form.text);
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)![1]!;
    const cookie = String(form.headers['set-cookie']).split(';')[0]!;
    const posted = await httpsFetch({
      ...base, path: '/auth/login', method: 'POST', body: new URLSearchParams({ csrf, email, password }).toString(),
      headers: { ...xff, cookie, 'content-type': 'application/x-www-form-urlencoded' },
    });
    return posted.status;
  }

  const failedFrom = async (email: string) => (await auditEvents(server, ['--type', 'login.failed'])).filter((e) => e.actor === email).map((e) => e.clientIp);

  test('X-Forwarded-For from a trusted proxy: the attacker address is locked out, another address still signs in, the audit names both', async () => {
    const attacker: Via = { forwardedFor: '198.51.100.7' };
    for (let i = 0; i < 5; i++) assert.equal(await signIn('victim@corp.example', 'wrong', attacker), 401);
    assert.equal(await signIn('victim@corp.example', 'wrong', attacker), 429, 'the sixth guess from the attacker');
    assert.equal(await signIn('victim@corp.example', PASSWORD, attacker), 429, 'even the right password, from the locked-out address');
    assert.equal(await signIn('victim@corp.example', PASSWORD, { forwardedFor: '203.0.113.9' }), 303, 'the person, from their own address behind the same proxy');
    assert.equal(await signIn('victim@corp.example', PASSWORD, { forwardedFor: '10.9.8.7, 203.0.113.10' }), 303, 'the rightmost untrusted hop is the client');

    assert.deepEqual(await failedFrom('victim@corp.example'), Array(5).fill('198.51.100.7'));
    const started = await waitForAudit(server, ['--type', 'session.start', '--user', 'victim@corp.example'], (e) => e.clientIp === '203.0.113.9', 'the sign-in from 203.0.113.9');
    assert.equal(started.decision, 'allow');
    const sessions = JSON.parse((await server.cli(['sessions', 'ls', '--json'])).stdout) as { user: string; clientIp: string }[];
    assert.deepEqual(sessions.filter((s) => s.user === 'victim@corp.example').map((s) => s.clientIp).sort(), ['203.0.113.10', '203.0.113.9']);
  });

  test('PROXY protocol from a trusted proxy: per announced source, in the limiter and the audit', async () => {
    const attacker: Via = { proxySource: '192.0.2.77' };
    for (let i = 0; i < 5; i++) assert.equal(await signIn('proxied@corp.example', 'wrong', attacker), 401);
    assert.equal(await signIn('proxied@corp.example', 'wrong', attacker), 429);
    assert.equal(await signIn('proxied@corp.example', PASSWORD, { proxySource: '192.0.2.78' }), 303, 'another client behind the same balancer');
    assert.deepEqual(await failedFrom('proxied@corp.example'), Array(5).fill('192.0.2.77'));
    // The PROXY source is the peer for X-Forwarded-For too: an untrusted client's header stays ignored.
    assert.equal(await signIn('proxied@corp.example', 'wrong', { proxySource: '192.0.2.79', forwardedFor: '192.0.2.200' }), 401);
    assert.deepEqual((await failedFrom('proxied@corp.example')).at(-1), '192.0.2.79');
  });

  test('an untrusted peer\'s X-Forwarded-For is ignored: no spoofed audit, no escaping the limiter by rotating it', async () => {
    const peer = '127.0.0.3';
    for (let i = 0; i < 5; i++) assert.equal(await signIn('untrusted@corp.example', 'wrong', { localAddress: peer, forwardedFor: `203.0.113.${100 + i}` }), 401);
    assert.equal(await signIn('untrusted@corp.example', 'wrong', { localAddress: peer, forwardedFor: '203.0.113.200' }), 429);
    await assert.rejects(signIn('untrusted@corp.example', 'wrong', { localAddress: peer, proxySource: '203.0.113.201' }), 'a PROXY header from an untrusted peer is no TLS handshake');
    assert.deepEqual(await failedFrom('untrusted@corp.example'), Array(5).fill(peer));
  });

  test('twenty parallel wrong passwords: only five reach the password check, the rest are refused at once', async () => {
    const statuses = await Promise.all(Array.from({ length: 20 }, () => signIn('parallel@corp.example', 'wrong', { forwardedFor: '198.51.100.20' })));
    assert.equal(statuses.filter((s) => s === 401).length, 5, statuses.join(' '));
    assert.equal(statuses.filter((s) => s === 429).length, 15, statuses.join(' '));
    assert.equal(await signIn('parallel@corp.example', PASSWORD, { forwardedFor: '198.51.100.21' }), 303);
  });

  test('admin changes record the address the proxy vouched for', async () => {
    const created = await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'audited' }, headers: { 'x-forwarded-for': '192.0.2.55' } });
    assert.equal(created.status, 201, created.text);
    const change = await waitForAudit(server, ['--type', 'admin.change'], (e) => e.details.entity === 'socket' && (e.details.after as { name?: string } | null)?.name === 'audited', 'the socket creation');
    assert.equal(change.clientIp, '192.0.2.55');
    const untrusted = await httpsFetch({
      port: server.port, ca: server.caPem, path: '/api/v1/sockets/audited', method: 'DELETE', localAddress: '127.0.0.3',
      headers: { authorization: `Bearer ${server.adminToken}`, 'x-forwarded-for': '192.0.2.56' },
    });
    assert.equal(untrusted.status, 204, untrusted.text);
    const deleted = await waitForAudit(server, ['--type', 'admin.change'], (e) => e.details.entity === 'socket' && e.details.after === null, 'the socket deletion');
    assert.equal(deleted.clientIp, '127.0.0.3', 'an untrusted peer is its own address, whatever it forwards');
  });
});
