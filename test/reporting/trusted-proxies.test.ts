// Whom to believe about the client's address: X-Forwarded-For through trusted proxies only,
// and PROXY protocol v1/v2 headers, including TLVs and headers cut short.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileCidrs } from '../../src/reporting/cidr.js';
import { clientAddress, parseProxyHeader } from '../../src/reporting/trusted-proxies.js';

const trusted = compileCidrs(['10.0.0.0/8', '2001:db8:1::/48']);
const none = compileCidrs([]);

test('clientAddress: a spoofed header from an untrusted peer is ignored', () => {
  assert.equal(clientAddress('203.0.113.7', '1.2.3.4', trusted), '203.0.113.7');
  assert.equal(clientAddress('203.0.113.7', '10.0.0.1, 1.2.3.4', trusted), '203.0.113.7');
  assert.equal(clientAddress('10.0.0.5', '1.2.3.4', none), '10.0.0.5', 'no trusted proxies: the header never counts');
});

test('clientAddress: the direct peer when there is no header', () => {
  assert.equal(clientAddress('10.0.0.5', undefined, trusted), '10.0.0.5');
  assert.equal(clientAddress('10.0.0.5', '', trusted), '10.0.0.5');
  assert.equal(clientAddress('::ffff:203.0.113.7', undefined, trusted), '203.0.113.7', 'mapped peers are shown as IPv4');
});

test('clientAddress: through one trusted proxy, the entry it appended', () => {
  assert.equal(clientAddress('10.0.0.5', '198.51.100.20', trusted), '198.51.100.20');
  assert.equal(clientAddress('::ffff:10.0.0.5', '198.51.100.20', trusted), '198.51.100.20', 'a mapped peer is still trusted');
});

test('clientAddress: a chain of trusted proxies is walked right to left to the first untrusted hop', () => {
  // client 198.51.100.20 → LB 10.1.1.1 → ingress 10.2.2.2 → us; what the client wrote on the left is ignored.
  assert.equal(clientAddress('10.2.2.2', '6.6.6.6, 198.51.100.20, 10.1.1.1', trusted), '198.51.100.20');
  assert.equal(clientAddress('10.2.2.2', '6.6.6.6,198.51.100.20,10.1.1.1', trusted), '198.51.100.20');
  assert.equal(clientAddress('10.2.2.2', '10.9.9.9, 10.1.1.1', trusted), '10.9.9.9', 'all trusted: the leftmost');
});

test('clientAddress: IPv6 peers, hops and bracketed or ported entries', () => {
  assert.equal(clientAddress('2001:db8:1::10', '2001:DB8:2::1', trusted), '2001:db8:2::1');
  assert.equal(clientAddress('2001:db8:1::10', '[2001:db8:2::1]:4711, 10.0.0.3', trusted), '2001:db8:2::1');
  assert.equal(clientAddress('2001:db8:1::10', '198.51.100.20:5555', trusted), '198.51.100.20');
  assert.equal(clientAddress('2001:db8:2::10', '198.51.100.20', trusted), '2001:db8:2::10', 'outside the trusted /48');
});

test('clientAddress: a garbage entry stops the walk at the last hop vouched for', () => {
  assert.equal(clientAddress('10.0.0.5', 'not-an-ip', trusted), '10.0.0.5');
  assert.equal(clientAddress('10.0.0.5', '198.51.100.20, <script>', trusted), '10.0.0.5');
  assert.equal(clientAddress('10.0.0.5', '6.6.6.6, garbage, 10.1.1.1', trusted), '10.1.1.1');
  assert.equal(clientAddress('10.0.0.5', '6.6.6.6, , 10.1.1.1', trusted), '10.1.1.1', 'an empty item is garbage too');
  assert.equal(clientAddress('10.0.0.5', 'garbage, 198.51.100.20', trusted), '198.51.100.20', 'left of the client it never matters');
});

const v2Signature = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

function v2(command: number, family: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x20 | command;
  head[1] = (family << 4) | 1;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([v2Signature, head, body]);
}

function tlv(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(value.length, 1);
  return Buffer.concat([head, value]);
}

const inetBody = Buffer.from([198, 51, 100, 20, 10, 0, 0, 1, 0x11, 0x5c, 0x01, 0xbb]); // 4444 → 443

test('parseProxyHeader: v1 TCP4 and TCP6, with the client data after it untouched', () => {
  const data = Buffer.from('PROXY TCP4 198.51.100.20 10.0.0.1 4444 443\r\nGET / HTTP/1.1\r\n');
  const header = parseProxyHeader(data);
  assert.deepEqual(header, {
    kind: 'proxy', source: '198.51.100.20', sourcePort: 4444, destination: '10.0.0.1', destinationPort: 443,
    headerLength: 44, tlvs: [],
  });
  assert.equal(data.subarray(44).toString(), 'GET / HTTP/1.1\r\n');
  const six = parseProxyHeader(Buffer.from('PROXY TCP6 2001:DB8::1 ::1 65535 0\r\n'));
  assert.equal(six.kind, 'proxy');
  assert.ok(six.kind === 'proxy' && six.source === '2001:db8::1' && six.sourcePort === 65535 && six.destination === '::1');
  assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN whatever\r\nrest')), { kind: 'local', headerLength: 24 });
  assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { kind: 'local', headerLength: 15 });
});

test('parseProxyHeader: v1 headers that lie are invalid', () => {
  const cases = [
    'PROXY TCP4 198.51.100.20 10.0.0.1 4444\r\n',
    'PROXY TCP4 198.51.100.20 10.0.0.1 4444 443 extra\r\n',
    'PROXY TCP4 2001:db8::1 10.0.0.1 4444 443\r\n',
    'PROXY TCP6 198.51.100.20 ::1 4444 443\r\n',
    'PROXY TCP4 198.51.100.256 10.0.0.1 4444 443\r\n',
    'PROXY TCP4 198.51.100.20 10.0.0.1 65536 443\r\n',
    'PROXY TCP4 198.51.100.20 10.0.0.1 044 443\r\n',
    'PROXY UDP4 198.51.100.20 10.0.0.1 4444 443\r\n',
    'PROXY TCP4  198.51.100.20 10.0.0.1 4444 443\r\n',
    `PROXY TCP4 ${'1'.repeat(120)}`,
  ];
  for (const text of cases) assert.equal(parseProxyHeader(Buffer.from(text)).kind, 'invalid', JSON.stringify(text));
});

test('parseProxyHeader: truncated v1 and v2 headers ask for more bytes', () => {
  const full1 = Buffer.from('PROXY TCP4 198.51.100.20 10.0.0.1 4444 443\r\n');
  const full2 = v2(1, 1, Buffer.concat([inetBody, tlv(0x02, Buffer.from('db.example'))]));
  for (const full of [full1, full2]) {
    for (let n = 0; n < full.length; n++) {
      assert.deepEqual(parseProxyHeader(full.subarray(0, n)), { kind: 'incomplete' }, `${n} of ${full.length} bytes`);
    }
    assert.equal(parseProxyHeader(full).kind, 'proxy');
  }
});

test('parseProxyHeader: anything else is not a PROXY header', () => {
  for (const text of ['GET / HTTP/1.1\r\n', '\x16\x03\x01\x02\x00', 'SSH-2.0-OpenSSH_9.6\r\n', 'PROXX', '\r\n\r\nQUIT']) {
    assert.deepEqual(parseProxyHeader(Buffer.from(text, 'latin1')), { kind: 'none' }, JSON.stringify(text));
  }
});

test('parseProxyHeader: v2 over IPv4 with TLVs', () => {
  const tlvs = Buffer.concat([tlv(0x02, Buffer.from('db.example')), tlv(0x04, Buffer.alloc(0)), tlv(0xe0, Buffer.from([1, 2, 3]))]);
  const header = v2(1, 1, Buffer.concat([inetBody, tlvs]));
  const data = Buffer.concat([header, Buffer.from('payload')]);
  const parsed = parseProxyHeader(data);
  assert.ok(parsed.kind === 'proxy');
  assert.equal(parsed.source, '198.51.100.20');
  assert.equal(parsed.sourcePort, 4444);
  assert.equal(parsed.destination, '10.0.0.1');
  assert.equal(parsed.destinationPort, 443);
  assert.equal(parsed.headerLength, header.length);
  assert.deepEqual(parsed.tlvs.map((t) => [t.type, t.value.toString('hex')]), [
    [0x02, Buffer.from('db.example').toString('hex')], [0x04, ''], [0xe0, '010203'],
  ]);
  assert.equal(data.subarray(parsed.headerLength).toString(), 'payload');
});

test('parseProxyHeader: v2 over IPv6, mapped sources folded to IPv4', () => {
  const address = (text: string): Buffer => Buffer.from(text.replace(/:/g, ''), 'hex');
  const ports = Buffer.from([0x00, 0x50, 0x1f, 0x90]);
  const six = parseProxyHeader(v2(1, 2, Buffer.concat([
    address('2001:0db8:0000:0000:0000:0000:0000:0001'), address('2001:0db8:0000:0000:0000:0000:0000:0002'), ports,
  ])));
  assert.ok(six.kind === 'proxy' && six.source === '2001:db8::1' && six.destination === '2001:db8::2');
  assert.ok(six.kind === 'proxy' && six.sourcePort === 80 && six.destinationPort === 8080);
  const mapped = parseProxyHeader(v2(1, 2, Buffer.concat([
    address('0000:0000:0000:0000:0000:ffff:c633:6414'), address('0000:0000:0000:0000:0000:0000:0000:0001'), ports,
  ])));
  assert.ok(mapped.kind === 'proxy' && mapped.source === '198.51.100.20');
});

test('parseProxyHeader: v2 LOCAL, UNSPEC and UNIX carry no client address', () => {
  assert.deepEqual(parseProxyHeader(v2(0, 1, inetBody)), { kind: 'local', headerLength: 16 + inetBody.length });
  assert.deepEqual(parseProxyHeader(v2(0, 0, Buffer.alloc(0))), { kind: 'local', headerLength: 16 });
  assert.deepEqual(parseProxyHeader(v2(1, 0, Buffer.alloc(0))), { kind: 'local', headerLength: 16 });
  assert.deepEqual(parseProxyHeader(v2(1, 3, Buffer.alloc(216))), { kind: 'local', headerLength: 232 });
});

test('parseProxyHeader: malformed v2 headers are invalid', () => {
  const wrongVersion = v2(1, 1, inetBody);
  wrongVersion[12] = 0x11;
  const unknownCommand = v2(1, 1, inetBody);
  unknownCommand[12] = 0x22;
  const cases: Array<[string, Buffer]> = [
    ['version 1 in a v2 frame', wrongVersion],
    ['unknown command', unknownCommand],
    ['unknown family', v2(1, 4, inetBody)],
    ['too short for IPv4', v2(1, 1, inetBody.subarray(0, 11))],
    ['too short for IPv6', v2(1, 2, Buffer.alloc(35))],
    ['TLV runs past the end', v2(1, 1, Buffer.concat([inetBody, Buffer.from([0x02, 0x00, 0x09, 0x61])]))],
    ['TLV header cut', v2(1, 1, Buffer.concat([inetBody, Buffer.from([0x02, 0x00])]))],
  ];
  for (const [what, buf] of cases) assert.equal(parseProxyHeader(buf).kind, 'invalid', what);
});
