// E2E: policies as an admin uses them — files applied, diffed, tested and versioned through the
// CLI; HTTP requests decided per request (methods, paths, countries through a trusted proxy);
// open TLS streams and WebSockets cut when a policy changes or a time window closes; live
// connections listed and killed; the audit trail read back, kept across a restart, and
// delivered to a webhook that was down for a while.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import WebSocket from 'ws';
import type { ClientOptions } from 'ws';
import { createKeyAndCsr } from '../../src/ca/csr.js';
import { auditEvents, cleanupAll, spawnCli, startConnector, startServer, waitForAudit, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api, curl, loopbackLookup } from '../helpers/https.js';
import { SignInBrowser } from '../helpers/browser.js';
import { signedInLaptop } from '../helpers/login.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream } from '../helpers/upstream.js';
import { freePort, tempDir, waitFor, withTimeout } from '../helpers/util.js';
import type { AuditEvent } from '../../src/reporting/events.js';

const PASSWORD = 'correct horse battery staple';
const RUSSIAN_IP = '77.88.8.8';
const BRITISH_IP = '81.2.69.142';

interface Received {
  ids: number[];
}

/** A webhook receiver on a fixed port, started when the test says (the exporter retries until then). */
function startReceiver(port: number, received: Received): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      for (const event of (JSON.parse(body) as { events: AuditEvent[] }).events) received.ids.push(event.id);
      res.writeHead(204).end();
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

describe('policies, continuous evaluation, live sessions and the audit trail', () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let echo: net.Server;
  let dir: string;
  let webhookPort: number;
  let appUrl: string;
  const received: Received = { ids: [] };
  const syslogLines: string[] = [];
  let syslog: dgram.Socket;

  const write = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };
  const cli = async (args: string[]) => {
    const result = await server.cli(args);
    assert.equal(result.code, 0, `postern ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  const certificateFor = async (email: string) => {
    const { keyPem, csrPem } = await createKeyAndCsr(email);
    const res = await api(server, '/api/v1/certificates/tls', { method: 'POST', body: { csr: csrPem, email, ttl_seconds: 600 } });
    assert.equal(res.status, 201, res.text);
    return { key: keyPem, cert: res.json<{ certificate: string }>().certificate };
  };
  /** A TLS stream to the `db` echo socket that has echoed once; resolves when it is open. */
  const openStream = (identity: { key: string; cert: string }) => withTimeout(new Promise<tls.TLSSocket>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: server.port, servername: 'db.localhost', ca: server.caPem, ...identity });
    socket.once('secureConnect', () => socket.write('ping\n'));
    socket.once('data', () => resolve(socket));
    socket.once('error', reject);
  }), 10_000, 'tls stream');
  const closed = (socket: net.Socket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
  const browserFor = async (email: string) => {
    const browser = new SignInBrowser(server, PASSWORD);
    assert.equal((await browser.signIn(`${appUrl}/`, email)).status, 200);
    return { browser, cookie: [...browser.cookies('app.localhost')].map(([k, v]) => `${k}=${v}`).join('; ') };
  };

  before(async () => {
    dir = (await tempDir()).path;
    upstream = await startUpstream();
    echo = net.createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    webhookPort = await freePort();
    syslog = dgram.createSocket('udp4');
    syslog.on('message', (message) => syslogLines.push(message.toString('utf8')));
    await new Promise<void>((resolve) => syslog.bind(0, '127.0.0.1', resolve));
    const config = await write('server.yaml', [
      'audit_exporters:',
      `  - { name: siem, kind: webhook, url: "http://127.0.0.1:${webhookPort}/events" }`,
      `  - { name: logs, kind: syslog, url: "udp://127.0.0.1:${syslog.address().port}" }`, '',
    ].join('\n'));
    server = await startServer({ extraArgs: ['--config', config, '--trusted-proxies', '127.0.0.2'] });
    appUrl = `https://app.localhost:${server.port}`;
    for (const [email, groups] of [['ana@corp.example', 'support'], ['joe@corp.example', 'staff'], ['eve@other.example', '']] as const) {
      const body = { email, password: PASSWORD, ...(groups ? { groups: [groups] } : {}) };
      assert.equal((await api(server, '/api/v1/users', { method: 'POST', body })).status, 201);
    }
    await cli(['socket', 'create', '--name', 'app', '--type', 'http', '--cloudauth', '--tag', 'namespace=corp']);
    await cli(['socket', 'create', '--name', 'db', '--type', 'tls', '--tag', 'namespace=corp']);
    const token = (await cli(['connector', 'token', 'create', '--name', 'policy', '--socket', 'app', '--socket', 'db'])).trim();
    const connector = await writeConnectorConfig(dir, 'c.yaml', {
      server: server.url, token, sockets: [{ name: 'app', type: 'http', upstream: upstream.url }, { name: 'db', type: 'tls', upstream: `tcp://127.0.0.1:${(echo.address() as net.AddressInfo).port}` }],
    });
    await startConnector(['connector', 'start', '--config', connector], server.env);
  });

  after(async () => {
    await cleanupAll();
    await upstream?.close();
    await new Promise<void>((resolve) => echo?.close(() => resolve()));
    syslog?.close();
  });

  test('policy files: apply, unchanged, diff, ls, show, history, test; malformed files fail in one line naming the field', async () => {
    const web = await write('web.yaml', [
      'name: web-rules', 'namespace: corp', 'sockets: [app]', 'rules:',
      '  - name: staff-read', '    effect: allow', '    who: { domain: [corp.example] }', '    what: { http: { methods: [GET, HEAD] } }',
      '  - name: no-admin-writes', '    effect: deny', '    what: { http: { methods: [POST, PUT, DELETE], paths: ["/admin/*"] } }', '',
    ].join('\n'));
    assert.match(await cli(['policy', 'apply', '-f', web]), /policy corp\/web-rules applied \(version 1\)/);
    assert.match(await cli(['policy', 'apply', '-f', web]), /policy corp\/web-rules unchanged \(version 1\)/);
    const next = await write('web2.yaml', (await readFile(web, 'utf8')).replace('[GET, HEAD]', '[GET, HEAD, POST]'));
    const diff = await cli(['policy', 'diff', '-f', next]);
    assert.match(diff, /^\+ +- POST$/m, diff);
    assert.match(await cli(['policy', 'apply', '-f', next]), /version 2/);
    assert.match(await cli(['policy', 'ls']), /corp\/web-rules\s+2\s+app\s+2/);
    assert.match(await cli(['policy', 'show', 'corp/web-rules']), /name: no-admin-writes/);
    const history = JSON.parse(await cli(['policy', 'history', 'corp/web-rules', '--json'])) as { version: number; author: string }[];
    assert.deepEqual(history.map((v) => [v.version, v.author]), [[1, 'token:first-admin'], [2, 'token:first-admin']]);
    const change = (await auditEvents(server, ['--type', 'admin.change'])).at(-1)!;
    assert.match(change.reason, /policy corp\/web-rules updated to version 2/);
    assert.deepEqual((change.details.after as { rules: { what: { http: { methods: string[] } } }[] }).rules[0]!.what.http.methods, ['GET', 'HEAD', 'POST']);
    assert.deepEqual((change.details.before as { rules: { what: { http: { methods: string[] } } }[] }).rules[0]!.what.http.methods, ['GET', 'HEAD']);

    const denied = await cli(['policy', 'test', '--socket', 'app', '--email', 'joe@corp.example', '--ip', '203.0.113.9', '--method', 'POST', '--path', '/admin/users']);
    assert.match(denied, /^DENY: denied by rule corp\/web-rules#no-admin-writes|^DENY: .*no-admin-writes/m, denied);
    assert.match(denied, /staff-read: matched/);
    const allowed = await cli(['policy', 'test', '--socket', 'app', '--email', 'joe@corp.example', '--ip', '203.0.113.9', '--method', 'GET', '--path', '/admin/users']);
    assert.match(allowed, /^ALLOW: /m);
    assert.match(allowed, /no-admin-writes: what-http-method/);

    const broken = await write('broken.yaml', 'name: broken\nrules:\n  - effect: allow\n    when: { time: "8-18" }\n');
    const refused = await server.cli(['policy', 'apply', '-f', broken]);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.match(refused.stderr, /broken\.yaml: .*rules\[0\]\.when\.time/);
    const unknown = await write('unknown.yaml', 'name: x\nrules:\n  - effect: allow\n    whom: {}\n');
    assert.match((await server.cli(['policy', 'apply', '-f', unknown])).stderr, /rules\[0\]/);
  });

  test('every HTTP request is decided: GET passes, POST under /admin is refused with the rule, both in the request log', async () => {
    const { browser } = await browserFor('joe@corp.example');
    assert.equal((await browser.request(`${appUrl}/admin/users`)).status, 200);
    const refused = await browser.request(`${appUrl}/admin/users`, { method: 'POST', form: { x: '1' } });
    assert.equal(refused.status, 403, `${refused.text} ${JSON.stringify(await auditEvents(server, ['--user', 'joe@corp.example']))}`);
    assert.match(refused.text, /denied by rule corp\/web-rules#no-admin-writes/);
    const log = await waitForAudit(server, ['--user', 'joe@corp.example', '--type', 'http.request', '--decision', 'deny'], () => true, 'the denied request in the log');
    assert.deepEqual([log.details.method, log.details.path, log.details.status, log.rule], ['POST', '/admin/users', 403, 'corp/web-rules#no-admin-writes']);
    const ok = (await auditEvents(server, ['--user', 'joe@corp.example', '--type', 'http.request', '--decision', 'allow'])).find((e) => e.details.path === '/admin/users');
    assert.equal(ok?.details.status, 200);
    assert.equal(ok?.rule, 'corp/socket-app-allow-list#1', 'the first allowing rule, policies in name order');
    const tail = await cli(['audit', 'tail', '-n', '5', '--user', 'joe@corp.example']);
    assert.match(tail, /joe@corp\.example POST \/admin\/users on app from 127\.0\.0\.1 → 403, \d+ bytes: denied/);
  });

  test('countries come from the client address a trusted proxy reports; a spoofed X-Forwarded-For from anyone else is ignored', async () => {
    const { cookie } = await browserFor('joe@corp.example');
    await cli(['policy', 'apply', '-f', await write('geo.yaml', 'name: no-russia\nnamespace: corp\nsockets: [app, db]\nrules:\n  - effect: deny\n    where: { country: [RU] }\n')]);
    try {
      const get = (forwardedFor: string, from?: string) => curl([
        ...(from ? ['--interface', from] : []), '-H', `cookie: ${cookie}`, '-H', `X-Forwarded-For: ${forwardedFor}`, '-o', '/dev/null', '-w', '%{http_code}', `${appUrl}/dash`,
      ], { caFile: server.caFile }).then((r) => r.stdout || r.stderr);
      assert.equal(await get(RUSSIAN_IP, '127.0.0.2'), '403', 'a trusted proxy forwarding a Russian address');
      assert.equal(await get(BRITISH_IP, '127.0.0.2'), '200', 'a trusted proxy forwarding a British address');
      assert.equal(upstream.seen.at(-1)?.headers['x-forwarded-for'], BRITISH_IP, 'the upstream sees the address the proxy vouched for');
      // Not a trusted proxy: its header is ignored, so its own (loopback, country unknown) address is decided, and a deny naming countries fails closed.
      assert.equal(await get(BRITISH_IP), '403', 'a spoofed header from an untrusted client');
      const events = (await auditEvents(server, ['--user', 'joe@corp.example', '--type', 'http.request'])).filter((e) => e.details.path === '/dash');
      assert.deepEqual(events.map((e) => [e.clientIp, e.country, e.decision, e.rule]), [
        [RUSSIAN_IP, 'RU', 'deny', 'corp/no-russia#1'], [BRITISH_IP, 'GB', 'allow', 'corp/socket-app-allow-list#1'], ['127.0.0.1', '', 'deny', 'corp/no-russia#1'],
      ]);

      // On the TLS port a trusted load balancer speaks the PROXY protocol instead.
      const identity = await certificateFor('joe@corp.example');
      const viaProxyProtocol = (source: string) => withTimeout(new Promise<string>((resolve) => {
        const raw = net.connect({ host: '127.0.0.1', port: server.port, localAddress: '127.0.0.2' }, () => {
          raw.write(`PROXY TCP4 ${source} 127.0.0.1 40000 ${server.port}\r\n`);
          const socket = tls.connect({ socket: raw, servername: 'db.localhost', ca: server.caPem, ...identity });
          socket.once('secureConnect', () => socket.write('ping\n'));
          socket.once('data', () => (socket.destroy(), resolve('echoed')));
          socket.once('error', () => resolve('refused'));
          socket.once('close', () => resolve('refused'));
        });
      }), 10_000, 'a stream through the PROXY protocol');
      assert.equal(await viaProxyProtocol(RUSSIAN_IP), 'refused');
      assert.equal(await viaProxyProtocol(BRITISH_IP), 'echoed');
      const refused = await waitForAudit(server, ['--socket', 'db', '--type', 'access.denied'], (e) => e.actor === 'joe@corp.example', 'the refusal through the PROXY protocol');
      assert.deepEqual([refused.clientIp, refused.country, refused.rule], [RUSSIAN_IP, 'RU', 'corp/no-russia#1']);
    } finally {
      await cli(['policy', 'delete', 'corp/no-russia']);
    }
  });

  test('a policy edit closes an open TLS stream and a WebSocket, each with the reason in the audit trail', async (t) => {
    const stream = await openStream(await certificateFor('ana@corp.example'));
    const { cookie } = await browserFor('ana@corp.example');
    const ws = await withTimeout(new Promise<WebSocket>((resolve, reject) => {
      const socket = new WebSocket(`wss://app.localhost:${server.port}/ws`, { ca: server.caPem, lookup: loopbackLookup, headers: { cookie }, perMessageDeflate: false } as ClientOptions);
      socket.once('open', () => resolve(socket)).once('error', reject);
    }), 10_000, 'WebSocket open');
    const wsClosed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    const streamClosed = closed(stream);
    await waitFor(async () => ((await api(server, '/api/v1/connections?user=ana@corp.example')).json<{ connections: unknown[] }>().connections.length === 2), { what: 'both connections listed' });
    const policy = await write('deny-ana.yaml', 'name: deny-ana\nnamespace: corp\nrules:\n  - name: ana-out\n    effect: deny\n    who: { email: [ana@corp.example] }\n');
    const started = Date.now();
    await cli(['policy', 'apply', '-f', policy]);
    try {
      await withTimeout(Promise.all([streamClosed, wsClosed]), 5_000, 'both connections cut');
      t.diagnostic(`cut ${Date.now() - started} ms after \`postern policy apply\` started (the CLI's own start-up included)`);
      const cuts = await waitFor(async () => {
        const events = (await auditEvents(server, ['--user', 'ana@corp.example', '--type', 'access.denied'])).filter((e) => e.rule === 'corp/deny-ana#ana-out');
        return events.length === 2 ? events : undefined;
      }, { what: 'two access.denied events' });
      assert.deepEqual(cuts.map((e) => e.details.protocol).sort(), ['tls', 'websocket']);
      const stored = (await api(server, `/api/v1/policies/${encodeURIComponent('corp/deny-ana')}`)).json<{ updatedAt: string }>();
      t.diagnostic(`server side: both cut ${Math.max(...cuts.map((e) => Date.parse(e.at))) - Date.parse(stored.updatedAt)} ms after the policy was stored`);
      for (const cut of cuts) assert.match(cut.reason, /denied by rule corp\/deny-ana#ana-out/);
    } finally {
      await cli(['policy', 'delete', 'corp/deny-ana']);
    }
  });

  test('a deny window that opens later cuts a stream at that moment', async () => {
    const at = new Date(Date.now() + 2_500).toISOString();
    await cli(['policy', 'apply', '-f', await write('window.yaml', `name: maintenance\nnamespace: corp\nsockets: [db]\nrules:\n  - effect: deny\n    when: { after: "${at}" }\n`)]);
    try {
      const stream = await openStream(await certificateFor('joe@corp.example'));
      await withTimeout(closed(stream), 10_000, 'the stream cut when the window opens');
      assert.ok(Date.now() >= Date.parse(at), 'not cut before the window opened');
      await waitForAudit(server, ['--user', 'joe@corp.example', '--type', 'access.denied'], (e) => e.rule === 'corp/maintenance#1', 'the cut in the audit trail');
    } finally {
      await cli(['policy', 'delete', 'corp/maintenance']);
    }
  });

  test('a user moved into a denied group, or disabled, loses the streams already open', async () => {
    await cli(['policy', 'apply', '-f', await write('contractors.yaml', 'name: no-contractors\nnamespace: corp\nsockets: [db]\nrules:\n  - effect: deny\n    who: { group: [contractors] }\n')]);
    try {
      const identity = await certificateFor('joe@corp.example');
      const first = await openStream(identity);
      const firstClosed = closed(first);
      await cli(['user', 'update', 'joe@corp.example', '--groups', 'staff,contractors']);
      await withTimeout(firstClosed, 5_000, 'the stream of a user now in a denied group');
      await waitForAudit(server, ['--user', 'joe@corp.example', '--type', 'access.denied'], (e) => e.rule === 'corp/no-contractors#1', 'the group cut in the audit trail');
      await cli(['user', 'update', 'joe@corp.example', '--groups', 'staff']);
      const second = await openStream(identity);
      const secondClosed = closed(second);
      await cli(['user', 'update', 'joe@corp.example', '--disable']);
      await withTimeout(secondClosed, 5_000, 'the stream of a disabled user');
      await waitForAudit(server, ['--user', 'joe@corp.example', '--type', 'access.denied'], (e) => e.reason === 'joe@corp.example is not an active user', 'the disable cut in the audit trail');
    } finally {
      await cli(['user', 'update', 'joe@corp.example', '--enable', '--groups', 'staff']);
      await cli(['policy', 'delete', 'corp/no-contractors']);
    }
  });

  test('sessions ls shows live connections; sessions kill cuts one and the audit says who', async () => {
    const laptop = await signedInLaptop(server, 'ana@corp.example', PASSWORD);
    const localPort = await freePort();
    const forward = spawnCli('client tls --listen', ['client', 'tls', '--host', 'db.localhost', '--listen', `127.0.0.1:${localPort}`], laptop);
    await forward.waitForOutput(/forwarding 127\.0\.0\.1:\d+ → db\.localhost/);
    const local = net.connect(localPort, '127.0.0.1');
    local.write('hello\n');
    await withTimeout(new Promise((resolve) => local.once('data', resolve)), 10_000, 'echo through client tls');
    const sessions = await waitFor(async () => {
      const list = JSON.parse(await cli(['sessions', 'ls', '--user', 'ana@corp.example', '--json'])) as { id: string; kind: string; connections: { id: string; socket: string; bytesUp: number }[] }[];
      return list.find((s) => s.kind === 'cli' && s.connections.length === 1);
    }, { what: 'the connection under its session' });
    const connection = sessions.connections[0]!;
    assert.equal(connection.socket, 'db');
    assert.match(await cli(['sessions', 'ls']), new RegExp(`live connections:[\\s\\S]*${connection.id}\\s+\\S+\\s+ana@corp\\.example\\s+db\\s+tls`));
    const localClosed = closed(local);
    assert.match(await cli(['sessions', 'kill', connection.id]), new RegExp(`killed connection ${connection.id}`));
    await withTimeout(localClosed, 5_000, 'the killed connection closes');
    const killed = await waitForAudit(server, ['--type', 'connection.killed'], (e) => e.connectionId === connection.id, 'the kill in the audit trail');
    assert.equal(killed.actor, 'token:first-admin');
    const close = await waitForAudit(server, ['--type', 'connection.close'], (e) => e.connectionId === connection.id, 'the close record');
    assert.equal(close.reason, 'killed by an administrator');

    const again = net.connect(localPort, '127.0.0.1');
    again.write('hello\n');
    await withTimeout(new Promise((resolve) => again.once('data', resolve)), 10_000, 'a second connection');
    await waitFor(async () => (await api(server, '/api/v1/connections?user=ana@corp.example')).json<{ connections: unknown[] }>().connections.length === 1, { what: 'the second connection listed' });
    const againClosed = closed(again);
    assert.match(await cli(['sessions', 'kill', '--user', 'ana@corp.example']), /killed 1 live connection of ana@corp\.example/);
    await withTimeout(againClosed, 5_000, 'every connection of the user closes');

    // Ending the sign-in itself cuts what its certificate still holds open.
    const third = net.connect(localPort, '127.0.0.1');
    third.write('hello\n');
    await withTimeout(new Promise((resolve) => third.once('data', resolve)), 10_000, 'a third connection');
    const thirdClosed = closed(third);
    assert.match(await cli(['sessions', 'kill', sessions.id]), new RegExp(`revoked session ${sessions.id}`));
    await withTimeout(thirdClosed, 5_000, 'the session\'s connection closes');
    await waitForAudit(server, ['--user', 'ana@corp.example', '--type', 'access.denied'], (e) => /this certificate was issued under has ended/.test(e.reason), 'the cut in the audit trail');
    await forward.stop();
  });

  test('audit tail -f prints events as they happen; the syslog exporter sends them as RFC 5424', async () => {
    const tail = spawnCli('audit tail -f', ['audit', 'tail', '-f', '-n', '1', '--type', 'admin.change'], server.env);
    try {
      await tail.waitForOutput(/admin\.change|policy/);
      await cli(['policy', 'apply', '-f', await write('tailed.yaml', 'name: tailed\nrules:\n  - effect: deny\n    who: { email: [nobody@corp.example] }\n')]);
      await tail.waitForOutput(/token:first-admin admin\.change from 127\.0\.0\.1: policy tailed created/);
    } finally {
      await tail.stop();
      await cli(['policy', 'delete', 'tailed']);
    }
    const line = await waitFor(() => syslogLines.find((l) => /admin\.change/.test(l) && /policy tailed created/.test(l)), { what: 'the change at the syslog receiver' });
    assert.match(line, /^<\d+>1 \d{4}-\d\d-\d\dT[\d:.]+Z \S+ postern - admin\.change \[postern@32473 /);
  });

  test('metrics count decisions and live connections', async () => {
    const res = await api(server, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.text, /^postern_decisions_total\{protocol="http",decision="deny"\} [1-9]\d*$/m);
    assert.match(res.text, /^postern_http_requests_total\{socket="app",code="4xx",decision="deny"\} [1-9]/m);
    assert.match(res.text, /^postern_live_connections \d+$/m);
    assert.match(res.text, /^postern_tunnel_connections 2$/m);
    assert.equal((await api(server, '/metrics', { token: null })).status, 401);
  });

  test('a webhook receiver that was down receives every event once it is up, and the trail survives a restart', async () => {
    const before = (await auditEvents(server, [])).map((e) => e.id);
    assert.ok(before.length > 20, `${before.length} events so far`);
    const receiver = await startReceiver(webhookPort, received);
    try {
      await waitFor(() => before.every((id) => received.ids.includes(id)), { what: 'every event at the webhook', timeoutMs: 45_000, intervalMs: 250 });
      assert.equal(new Set(received.ids).size, received.ids.length, 'no event delivered twice');
      assert.deepEqual(received.ids, [...received.ids].sort((a, b) => a - b), 'in order');
    } finally {
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
    await server.stop('SIGTERM');
    server = await startServer({ port: server.port, dataDir: server.dataDir, extraArgs: ['--trusted-proxies', '127.0.0.2'] });
    const afterRestart = (await auditEvents(server, [])).map((e) => e.id);
    assert.deepEqual(afterRestart.slice(0, before.length), before, 'every event is still there, in order');
  });
});
