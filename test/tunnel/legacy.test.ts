// A connector of the earlier protocol (postern/1: HTTP/2, the connector as server) meets a
// postern/2 edge: it must get its hello answered with every socket refused and the reason,
// then the connection closed, never a hang.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { pino } from 'pino';
import { refuseLegacyTunnel } from '../../src/tunnel/legacy.js';
import { CONTROL_PATH, legacyRefusal } from '../../src/tunnel/protocol.js';
import { socketPair, withTimeout } from '../helpers/util.js';

/** What a postern/1 connector did: serve HTTP/2 on its dialed connection and say hello on the control stream. */
function oldConnector(transport: net.Socket): Promise<{ welcome: Record<string, unknown>; closed: Promise<unknown> }> {
  const server = http2.createServer();
  const closed = once(transport, 'close');
  return new Promise((resolve, reject) => {
    server.on('stream', (stream, headers) => {
      if (headers[':path'] !== CONTROL_PATH) return reject(new Error(`unexpected stream ${headers[':path']}`));
      stream.respond({ ':status': 200 });
      stream.write(JSON.stringify({ type: 'hello', connectorId: 'c-old', version: '0.0.9', sockets: [{ name: 'web', type: 'http' }, { name: 'db', type: 'tls' }] }) + '\n');
      let buffered = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buffered += chunk;
        const newline = buffered.indexOf('\n');
        if (newline >= 0) resolve({ welcome: JSON.parse(buffered.slice(0, newline)) as Record<string, unknown>, closed });
      });
      stream.on('error', () => undefined);
    });
    server.on('sessionError', () => undefined);
    server.emit('connection', transport);
  });
}

test('legacy tunnel: a postern/1 connector is told why every socket is refused, then the edge hangs up', async () => {
  const [edgeEnd, connectorEnd] = await socketPair();
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  refuseLegacyTunnel(edgeEnd, 'edge-9', logger);
  const { welcome, closed } = await withTimeout(oldConnector(connectorEnd), 10_000, 'the old connector to be welcomed');
  const reason = legacyRefusal('edge-9');
  assert.match(reason, /postern\/2/);
  assert.deepEqual(welcome, { type: 'welcome', edgeId: 'edge-9', accepted: [], rejected: [{ name: 'web', reason }, { name: 'db', reason }] });
  await withTimeout(closed, 10_000, 'the edge to close the old tunnel');
  assert.ok(lines.some((line) => line.includes('earlier tunnel protocol') && line.includes('c-old')), lines.join(''));
});
