// RFC 5424 formatting of audit events, and the sender over real loopback UDP and TCP servers.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, test } from 'node:test';
import { isPosternError } from '../../src/errors.js';
import { createSyslogSink, escapeParamValue, formatSyslog, parseSyslogUrl } from '../../src/reporting/syslog.js';
import { freePort, waitFor, withTimeout } from '../helpers/util.js';
import { auditEvent } from './helpers/audit.js';

const options = { appName: 'postern', hostname: 'edge-1.corp.example' } as const;
const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

test('formatSyslog: header, structured data and message of an RFC 5424 line', () => {
  const line = formatSyslog(auditEvent(7), options);
  assert.equal(
    line,
    '<132>1 2026-01-02T03:04:12.000Z edge-1.corp.example postern - access.denied ' +
      '[postern@32473 id="7" actor="joe@corp.example" socket="grafana" clientIp="77.88.8.8" country="RU" ' +
      'decision="deny" rule="corp/support#1" sessionId="s-7" method="POST" path="/admin"] ' +
      'joe@corp.example was refused on grafana from 77.88.8.8 (RU): country RU is not allowed [corp/support#1]',
  );
});

test('formatSyslog: PRI from facility and severity', () => {
  const pri = (line: string): number => Number(/^<(\d+)>1 /.exec(line)![1]);
  assert.equal(pri(formatSyslog(auditEvent(1, { type: 'access.allowed', decision: 'allow' }), options)), 16 * 8 + 5);
  assert.equal(pri(formatSyslog(auditEvent(1, { type: 'access.denied' }), options)), 16 * 8 + 4);
  assert.equal(pri(formatSyslog(auditEvent(1, { type: 'connection.killed', decision: 'allow' }), options)), 16 * 8 + 4);
  assert.equal(pri(formatSyslog(auditEvent(1, { type: 'http.request', decision: 'deny' }), options)), 16 * 8 + 4);
  assert.equal(pri(formatSyslog(auditEvent(1, { type: 'login.failed', decision: 'deny' }), options)), 16 * 8 + 4);
  assert.equal(pri(formatSyslog(auditEvent(1, { type: 'http.request', decision: 'allow' }), options)), 16 * 8 + 6);
  assert.equal(pri(formatSyslog(auditEvent(1, { type: 'session.start', decision: 'allow' }), options)), 16 * 8 + 6);
  assert.equal(pri(formatSyslog(auditEvent(1, { type: 'admin.change', decision: 'allow' }), { ...options, facility: 'auth' })), 4 * 8 + 6);
  assert.equal(pri(formatSyslog(auditEvent(1), { ...options, facility: 'local7' })), 23 * 8 + 4);
});

test('formatSyslog: SD-PARAM values escape ", \\ and ], and nothing can break the line', () => {
  assert.equal(escapeParamValue('a"b\\c]d[e'), 'a\\"b\\\\c\\]d[e');
  const line = formatSyslog(
    auditEvent(3, {
      actor: 'eve"] [x@1 a="b',
      reason: 'line one\nfake <13>1 line two',
      details: { path: '/a\\b]', 'bad key=x': 1, nested: { a: [1, 2] }, empty: '', nothing: null },
    }),
    options,
  );
  assert.ok(!line.includes('\n'), 'no newline in the message');
  assert.ok(line.includes('actor="eve\\"\\] [x@1 a=\\"b"'));
  assert.ok(line.includes('path="/a\\\\b\\]"'));
  assert.ok(line.includes('badkeyx="1"'), 'invalid PARAM-NAME characters are dropped');
  assert.ok(line.includes('nested="{\\"a\\":[1,2\\]}"'), 'objects as JSON, escaped');
  assert.ok(!line.includes('empty=') && !line.includes('nothing='), 'empty values are left out');
  assert.ok(line.endsWith(': line one fake <13>1 line two [corp/support#1]'), line);
});

test('formatSyslog: header fields stay within RFC 5424 rules', () => {
  const line = formatSyslog(auditEvent(1, { at: 'not a date', actor: '', socket: '', clientIp: '', reason: '' }), {
    hostname: 'host with spaces',
    appName: 'x'.repeat(60),
  });
  const [pri, timestamp, hostname, app, procid, msgid] = line.split(' ');
  assert.equal(pri, '<132>1');
  assert.equal(timestamp, '-');
  assert.equal(hostname, 'host_with_spaces');
  assert.equal(app, 'x'.repeat(48));
  assert.equal(procid, '-');
  assert.equal(msgid, 'access.denied');
  assert.ok(line.endsWith('] someone was refused [corp/support#1]'), line);
});

test('parseSyslogUrl: udp and tcp with default ports and IPv6 hosts; anything else is a config error', () => {
  assert.deepEqual(parseSyslogUrl('udp://127.0.0.1:5514'), { transport: 'udp', host: '127.0.0.1', port: 5514 });
  assert.deepEqual(parseSyslogUrl('tcp://siem.corp.example:6514'), { transport: 'tcp', host: 'siem.corp.example', port: 6514 });
  assert.deepEqual(parseSyslogUrl('udp://siem'), { transport: 'udp', host: 'siem', port: 514 });
  assert.deepEqual(parseSyslogUrl('tcp://[::1]:601'), { transport: 'tcp', host: '::1', port: 601 });
  for (const url of ['tls://siem:6514', 'http://siem', 'siem:514', 'udp://', '']) {
    assert.throws(() => createSyslogSink(url), (err: unknown) => isPosternError(err, 'config_invalid'), url);
  }
});

test('syslog sink over UDP: one datagram per event', async () => {
  const server = dgram.createSocket('udp4');
  const received: string[] = [];
  server.on('message', (msg) => received.push(msg.toString('utf8')));
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  const { port } = server.address();
  const sink = createSyslogSink(`udp://127.0.0.1:${port}`, { hostname: 'edge-1', maxDatagramBytes: 600 });
  closers.push(() => sink.close());
  const big = auditEvent(3, { reason: 'é'.repeat(1000) });
  await sink.send([auditEvent(1), auditEvent(2), big]);
  await waitFor(() => received.length === 3, { timeoutMs: 5_000, intervalMs: 10, what: 'three datagrams' });
  assert.ok(received[0]!.startsWith('<132>1 2026-01-02T03:04:06.000Z edge-1 postern - access.denied [postern@32473 id="1" '));
  assert.ok(received[1]!.includes(' id="2" '));
  const cut = Buffer.byteLength(received[2]!);
  assert.ok(cut <= 600 && cut >= 599, `cut to the limit (${cut} bytes)`);
  assert.ok(!received[2]!.includes('\ufffd'), 'without splitting a character');
});

/** A TCP syslog receiver that parses RFC 6587 octet-counted frames. */
async function tcpReceiver(): Promise<{ port: number; frames: string[]; connections: number; dropAll(): void }> {
  const frames: string[] = [];
  const sockets = new Set<net.Socket>();
  const state = { connections: 0 };
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const space = buffer.indexOf(0x20);
        if (space < 0) return;
        const length = Number(buffer.subarray(0, space).toString());
        assert.ok(Number.isInteger(length) && length > 0, `bad frame length ${buffer.subarray(0, space).toString()}`);
        if (buffer.length < space + 1 + length) return;
        frames.push(buffer.subarray(space + 1, space + 1 + length).toString('utf8'));
        buffer = buffer.subarray(space + 1 + length);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return {
    port: (server.address() as net.AddressInfo).port,
    frames,
    get connections() {
      return state.connections;
    },
    dropAll: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}

test('syslog sink over TCP: octet-counted frames on one connection, redialed after a drop', async () => {
  const receiver = await tcpReceiver();
  const sink = createSyslogSink(`tcp://127.0.0.1:${receiver.port}`, { hostname: 'edge-1', facility: 'auth' });
  closers.push(() => sink.close());
  const withUnicode = auditEvent(2, { actor: 'zoë@corp.example', reason: 'multi\nline' });
  await sink.send([auditEvent(1), withUnicode, auditEvent(3)]);
  await waitFor(() => receiver.frames.length === 3, { timeoutMs: 5_000, intervalMs: 10, what: 'three frames' });
  assert.equal(receiver.connections, 1);
  assert.deepEqual(receiver.frames, [auditEvent(1), withUnicode, auditEvent(3)].map((e) =>
    formatSyslog(e, { hostname: 'edge-1', facility: 'auth' })));

  receiver.dropAll();
  // The drop is seen on the next write at the latest; the sink then dials again.
  await waitFor(async () => {
    await sink.send([auditEvent(4)]).catch(() => undefined);
    return receiver.frames.some((f) => f.includes(' id="4" '));
  }, { timeoutMs: 5_000, intervalMs: 20, what: 'event 4 after the drop' });
  assert.ok(receiver.connections >= 2);
});

test('syslog sink over TCP: a closed port rejects with a retryable error', async () => {
  const port = await freePort();
  const sink = createSyslogSink(`tcp://127.0.0.1:${port}`, { timeoutMs: 2_000 });
  closers.push(() => sink.close());
  await assert.rejects(withTimeout(sink.send([auditEvent(1)]), 5_000, 'send to a closed port'), (err: unknown) => {
    assert.ok(isPosternError(err, 'upstream_unreachable') && err.retryable, String(err));
    assert.match(err.message, /ECONNREFUSED/);
    return true;
  });
});
