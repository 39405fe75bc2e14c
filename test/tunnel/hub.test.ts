// Edge side (TunnelHub) and connector side (ConnectorTunnel) talking postern/2 over a plain TCP
// socket pair on 127.0.0.1: hello/welcome, authorization, stream placement, draining, closing.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { PosternError } from '../../src/errors.js';
import { ConnectorTunnel } from '../../src/tunnel/connector-side.js';
import type { Hello } from '../../src/tunnel/connector-side.js';
import { TunnelHub } from '../../src/tunnel/edge-side.js';
import type { SocketAuthorizer, TunnelHubOptions, TunnelPeer } from '../../src/tunnel/edge-side.js';
import type { EdgeMessage } from '../../src/tunnel/protocol.js';
import type { MuxStream } from '../../src/tunnel/mux.js';
import type { MuxHeaders } from '../../src/tunnel/frame.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { socketPair, waitFor, withTimeout } from '../helpers/util.js';

const logger = pino({ level: 'silent' });
const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((fn) => fn()));

interface Received { tunnel: string; headers: MuxHeaders; stream: MuxStream }

/** Streams the connector side received, across all its tunnels, with a signal per arrival. */
class Inbox extends EventEmitter {
  readonly items: Received[] = [];
  handler(tunnel: string) {
    return (stream: MuxStream, headers: MuxHeaders) => {
      stream.respond({ ':status': '200', 'x-served-by': tunnel });
      this.items.push({ tunnel, headers, stream });
      this.emit('stream');
    };
  }
  async count(n: number): Promise<Received[]> {
    while (this.items.length < n) await once(this, 'stream');
    return this.items;
  }
}

function makeHub(authorize: SocketAuthorizer, options: Partial<TunnelHubOptions> = {}): TunnelHub {
  const hub = new TunnelHub({ edgeId: 'edge-1', logger, authorizeSockets: authorize, pingIntervalMs: 3_600_000, helloTimeoutMs: 3_600_000, ...options });
  cleanups.push(() => void hub.close(0));
  return hub;
}

const allowAll: SocketAuthorizer = (_id, sockets) => ({ accepted: sockets.map((s) => s.name), rejected: [] });

async function connect(hub: TunnelHub, options: { peer?: Partial<TunnelPeer>; hello?: Partial<Hello>; inbox?: Inbox; label?: string; pair?: [net.Socket, net.Socket] }) {
  const [edgeEnd, connectorEnd] = options.pair ?? await socketPair();
  const label = options.label ?? 'A';
  const peer: TunnelPeer = { connectorId: 'c1', connectorName: 'one', remoteAddress: label, transport: 'tls', ...options.peer };
  const hello: Hello = { connectorId: 'c1', version: 'test', sockets: [{ name: 'web', type: 'http' }], ...options.hello };
  const inbox = options.inbox ?? new Inbox();
  const tunnel = new ConnectorTunnel(connectorEnd, { hello, onStream: inbox.handler(label), logger });
  cleanups.push(() => tunnel.destroy());
  const welcome = once(tunnel, 'welcome') as Promise<[Extract<EdgeMessage, { type: 'welcome' }>]>;
  const closed = once(tunnel, 'close');
  hub.attach(edgeEnd, peer);
  tunnel.start();
  return { tunnel, inbox, welcome, closed, label };
}

async function hubUntil(hub: TunnelHub, predicate: () => boolean): Promise<void> {
  while (!predicate()) await once(hub, 'change');
}

async function response(stream: ReturnType<TunnelHub['openStream']>): Promise<Record<string, unknown>> {
  const [headers] = (await once(stream, 'response')) as [Record<string, unknown>];
  return headers;
}

test('hub: hello is answered with a welcome carrying the authorizer decision', async () => {
  const calls: unknown[] = [];
  const hub = makeHub((connectorId, sockets) => {
    calls.push({ connectorId, sockets });
    return { accepted: ['web'], rejected: [{ name: 'db', reason: 'owned by another connector' }] };
  });
  const changes: number[] = [];
  hub.on('change', () => changes.push(1));
  const link = await connect(hub, { hello: { sockets: [{ name: 'web', type: 'http' }, { name: 'db', type: 'tls' }] } });
  const [welcome] = await link.welcome;
  assert.deepEqual(welcome, { type: 'welcome', edgeId: 'edge-1', accepted: ['web'], rejected: [{ name: 'db', reason: 'owned by another connector' }] });
  assert.deepEqual(calls, [{ connectorId: 'c1', sockets: [{ name: 'web', type: 'http' }, { name: 'db', type: 'tls' }] }]);
  assert.ok(changes.length >= 1);
  assert.equal(hub.isOnline('web'), true);
  assert.equal(hub.isOnline('db'), false);
  const [info] = hub.list();
  assert.equal(info!.connectorId, 'c1');
  assert.equal(info!.id, 'edge-1/1');
  assert.deepEqual(info!.sockets, ['web']);
  assert.equal(info!.draining, false);
  link.tunnel.destroy();
});

test('hub: openStream reaches the connector with the headers; unknown sockets are connector_offline', async () => {
  const hub = makeHub(allowAll);
  const link = await connect(hub, {});
  await link.welcome;
  const stream = hub.openStream('web', { 'postern-socket': 'web', 'postern-kind': 'http', 'x-custom': 'yes' });
  const [got] = await link.inbox.count(1);
  assert.equal(got!.headers['postern-socket'], 'web');
  assert.equal(got!.headers['postern-kind'], 'http');
  assert.equal(got!.headers['x-custom'], 'yes');
  assert.equal((await response(stream))[':status'], '200');
  got!.stream.end('pong');
  let body = '';
  for await (const chunk of stream) body += String(chunk);
  assert.equal(body, 'pong');
  assert.throws(() => hub.openStream('nope', {}), (err: unknown) => {
    assert.ok(err instanceof PosternError);
    assert.equal(err.code, 'connector_offline');
    assert.equal(err.retryable, true);
    assert.equal(err.httpStatus, 503);
    return true;
  });
  link.tunnel.destroy();
});

test('hub: a hello naming another connector than the peer closes the tunnel', async () => {
  const hub = makeHub(allowAll);
  const link = await connect(hub, { hello: { connectorId: 'someone-else' } });
  let welcomed = false;
  link.tunnel.on('welcome', () => (welcomed = true));
  await link.closed;
  await hubUntil(hub, () => hub.list().length === 0);
  assert.equal(welcomed, false);
  assert.equal(hub.isOnline('web'), false);
});

test('hub: reauthorize() applies a changed authorizer answer to live tunnels', async () => {
  let allowed = new Set(['web']);
  const hub = makeHub((_id, sockets) => ({
    accepted: sockets.filter((s) => allowed.has(s.name)).map((s) => s.name),
    rejected: sockets.filter((s) => !allowed.has(s.name)).map((s) => ({ name: s.name, reason: 'not allowed' })),
  }));
  const link = await connect(hub, { hello: { sockets: [{ name: 'web', type: 'http' }, { name: 'ssh', type: 'tls' }] } });
  await link.welcome;
  assert.equal(hub.isOnline('web'), true);
  assert.equal(hub.isOnline('ssh'), false);
  let changes = 0;
  hub.on('change', () => changes++);
  hub.reauthorize();
  assert.equal(changes, 0, 'same answer: no change event');
  allowed = new Set(['ssh']);
  hub.reauthorize();
  assert.equal(changes, 1);
  assert.equal(hub.isOnline('web'), false);
  assert.equal(hub.isOnline('ssh'), true);
  assert.deepEqual(hub.list()[0]!.sockets, ['ssh']);
  assert.throws(() => hub.openStream('web', {}), (err: unknown) => err instanceof PosternError && err.code === 'connector_offline');
  const stream = hub.openStream('ssh', { 'postern-socket': 'ssh' }, { endStream: true });
  const [got] = await link.inbox.count(1);
  assert.equal(got!.headers['postern-socket'], 'ssh');
  got!.stream.end();
  stream.resume();
  await once(stream, 'close');
  link.tunnel.destroy();
});

test('hub: streams go to the least busy tunnel; a draining tunnel gets none; closing one leaves the other', async () => {
  const hub = makeHub(allowAll);
  const inbox = new Inbox();
  const a = await connect(hub, { inbox, label: 'A' });
  const b = await connect(hub, { inbox, label: 'B' });
  await Promise.all([a.welcome, b.welcome]);
  assert.equal(hub.list().length, 2);
  // Each request ends its side at once, so a stream closes as soon as the connector ends its own.
  const edge = [1, 2].map((n) => hub.openStream('web', { 'x-n': String(n) }, { endStream: true }));
  await inbox.count(2);
  assert.deepEqual(inbox.items.map((i) => i.tunnel).sort(), ['A', 'B'], 'one each while both are idle');
  const busy = () => Object.fromEntries(hub.list().map((t) => [t.remoteAddress, t.activeStreams]));
  assert.deepEqual(busy(), { A: 1, B: 1 });

  edge.push(hub.openStream('web', { 'x-n': '3' }, { endStream: true }));
  const third = (await inbox.count(3))[2]!;
  const more = third.tunnel;
  const fewer = more === 'A' ? 'B' : 'A';
  const drainer = fewer === 'A' ? a : b;
  assert.deepEqual(busy(), { [more]: 2, [fewer]: 1 });

  // The less busy tunnel announces it is draining: from now on it gets nothing.
  const drained = drainer.tunnel.drain(3_600_000);
  await hubUntil(hub, () => hub.list().some((t) => t.draining));
  assert.deepEqual(hub.list().filter((t) => t.draining).map((t) => t.remoteAddress), [fewer]);
  for (const n of [4, 5]) edge.push(hub.openStream('web', { 'x-n': String(n) }, { endStream: true }));
  const items = await inbox.count(5);
  assert.deepEqual(items.slice(3).map((i) => i.tunnel), [more, more]);

  // Finishing its last stream lets the draining tunnel close; the other keeps serving.
  for (const item of items.filter((i) => i.tunnel === fewer)) item.stream.end();
  await drained;
  await hubUntil(hub, () => hub.list().length === 1);
  assert.equal(hub.list()[0]!.remoteAddress, more);
  const last = hub.openStream('web', { 'x-n': '6' });
  assert.equal((await response(last))['x-served-by'], more);
  for (const item of inbox.items) if (!item.stream.destroyed) item.stream.reset();
  for (const stream of [...edge, last]) stream.resume();
  a.tunnel.destroy();
  b.tunnel.destroy();
});

test('hub: destroying one of two tunnels leaves the other serving the socket', async () => {
  const hub = makeHub(allowAll);
  const inbox = new Inbox();
  const a = await connect(hub, { inbox, label: 'A' });
  const b = await connect(hub, { inbox, label: 'B' });
  await Promise.all([a.welcome, b.welcome]);
  a.tunnel.destroy();
  await a.closed;
  await hubUntil(hub, () => hub.list().length === 1);
  assert.equal(hub.isOnline('web'), true);
  for (let n = 0; n < 3; n++) {
    const stream = hub.openStream('web', {});
    assert.equal((await response(stream))['x-served-by'], 'B');
    stream.resume();
  }
  b.tunnel.destroy();
  await hubUntil(hub, () => hub.list().length === 0);
  assert.equal(hub.isOnline('web'), false);
});

test('hub: close() asks connectors to drain, then the tunnels go away', async () => {
  const hub = makeHub(allowAll);
  const link = await connect(hub, {});
  await link.welcome;
  // As the supervisor does: a drain request makes the connector drain this link.
  let requested = 0;
  link.tunnel.on('drain-requested', () => (requested++, void link.tunnel.drain(3_600_000)));
  await Promise.all([hub.close(3_600_000), link.closed]);
  assert.equal(requested, 1);
  assert.equal(hub.list().length, 0);
});

test('hub: reauthorize() welcomes again when the answer changes, reports a refusal once, and resets open streams of a lost socket', async () => {
  let allowed = new Set(['web', 'ssh']);
  const hub = makeHub((_id, sockets) => ({
    accepted: sockets.filter((s) => allowed.has(s.name)).map((s) => s.name),
    rejected: sockets.filter((s) => !allowed.has(s.name)).map((s) => ({ name: s.name, reason: 'not bound', code: 'not-bound' })),
  }));
  const refused: [string, string, string | undefined][] = [];
  hub.on('refused', (info: { connectorId: string }, refusal: { name: string; code?: string }) => refused.push([info.connectorId, refusal.name, refusal.code]));
  const link = await connect(hub, { hello: { sockets: [{ name: 'web', type: 'http' }, { name: 'ssh', type: 'tls' }] } });
  await link.welcome;
  assert.deepEqual(refused, []);
  const welcomes: Extract<EdgeMessage, { type: 'welcome' }>[] = [];
  link.tunnel.on('welcome', (message: Extract<EdgeMessage, { type: 'welcome' }>) => welcomes.push(message));

  const webStream = hub.openStream('web', { 'postern-socket': 'web' });
  const sshStream = hub.openStream('ssh', { 'postern-socket': 'ssh' });
  webStream.on('error', () => undefined);
  await link.inbox.count(2);
  const webClosed = once(webStream, 'close');

  allowed = new Set(['ssh']);
  hub.reauthorize();
  hub.reauthorize();
  assert.deepEqual(refused, [['c1', 'web', 'not-bound']], 'reported once, not on every reauthorize');
  await webClosed;
  assert.equal(sshStream.destroyed, false, 'streams of sockets still served are left alone');
  await waitUntil(() => welcomes.length >= 1);
  assert.deepEqual(welcomes[0], { type: 'welcome', edgeId: 'edge-1', accepted: ['ssh'], rejected: [{ name: 'web', reason: 'not bound' }] });

  allowed = new Set(['ssh', 'web']);
  hub.reauthorize();
  await waitUntil(() => welcomes.length >= 2);
  assert.deepEqual(welcomes[1]!.accepted, ['web', 'ssh']);
  assert.equal(hub.isOnline('web'), true);
  allowed = new Set(['ssh']);
  hub.reauthorize();
  assert.equal(refused.length, 2, 'refused again after being served in between');
  sshStream.destroy();
  link.tunnel.destroy();
});

async function waitUntil(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !predicate(); i++) await new Promise<void>((resolve) => setImmediate(resolve));
  assert.ok(predicate(), 'condition reached');
}

/**
 * Two socket pairs joined by a relay that can go silent towards the edge (bytes from the
 * connector are held back), as a connector behind a NAT that dropped its mapping looks to the edge.
 */
async function silenceableLink(): Promise<{ pair: [net.Socket, net.Socket]; silence(): void; held: Buffer[]; events: EventEmitter }> {
  const [edgeEnd, towardsEdge] = await socketPair();
  const [towardsConnector, connectorEnd] = await socketPair();
  cleanups.push(() => [towardsEdge, towardsConnector].forEach((s) => s.destroy()));
  let silent = false;
  const held: Buffer[] = [];
  const events = new EventEmitter();
  towardsEdge.on('data', (chunk: Buffer) => towardsConnector.write(chunk));
  // The edge closing its end still reaches the connector (only what the connector sends is lost).
  towardsEdge.on('close', () => towardsConnector.destroy());
  towardsConnector.on('data', (chunk: Buffer) => {
    if (!silent) return void towardsEdge.write(chunk);
    held.push(chunk);
    events.emit('held');
  });
  return { pair: [edgeEnd, connectorEnd], silence: () => (silent = true), held, events };
}

test('hub: a connection that says no hello is closed when the hello timeout passes on the clock', async () => {
  const clock = new FakeClock();
  const hub = makeHub(allowAll, { clock, helloTimeoutMs: 10_000 });
  const [edgeEnd, silentEnd] = await socketPair();
  cleanups.push(() => silentEnd.destroy());
  silentEnd.resume(); // reads (and ignores) what the edge sends, so it sees the edge hang up
  const gone = once(silentEnd, 'close');
  hub.attach(edgeEnd, { connectorId: 'c1', connectorName: 'one', remoteAddress: 'A', transport: 'tls' });
  assert.equal(hub.list().length, 1);
  assert.equal(clock.advance(9_999), 0, 'nothing is due before the timeout');
  assert.equal(clock.advance(1), 1);
  await withTimeout(gone, 5_000, 'the silent connection to be closed');
  await waitFor(() => hub.list().length === 0, { what: 'the tunnel to be detached' });
});

test('hub: an answered ping keeps the tunnel; one unanswered by the ping timeout closes it', async () => {
  const clock = new FakeClock(Date.parse('2026-01-01T00:00:00Z'));
  const hub = makeHub(allowAll, { clock, pingIntervalMs: 15_000, pingTimeoutMs: 10_000 });
  const relay = await silenceableLink();
  const link = await connect(hub, { pair: relay.pair });
  await link.welcome;
  assert.equal(hub.list()[0]!.connectedAt, '2026-01-01T00:00:00.000Z', 'stamped by the injected clock');
  assert.deepEqual(clock.pending(), [15_000], 'only the ping interval waits once hello came');

  clock.advance(15_000);
  assert.deepEqual(clock.pending(), [10_000, 15_000], 'a ping is out, with its deadline');
  await waitFor(() => clock.pending().length === 1, { what: 'the ping answer to clear its deadline' });
  clock.advance(10_000);
  assert.equal(hub.isOnline('web'), true, 'an answered ping closes nothing');

  relay.silence();
  const held = once(relay.events, 'held');
  clock.advance(5_000);
  await withTimeout(held, 5_000, 'the answer to the second ping to be held back');
  assert.deepEqual(clock.pending(), [10_000, 15_000]);
  assert.equal(clock.advance(9_999), 0);
  assert.equal(hub.isOnline('web'), true, 'not before the timeout');
  clock.advance(1);
  assert.equal(hub.isOnline('web'), false, 'the silent tunnel is not picked for streams any more');
  await withTimeout(link.closed, 5_000, 'the connector side to see the tunnel closed');
  await waitFor(() => hub.list().length === 0, { what: 'the tunnel to be detached' });
  assert.deepEqual(clock.pending(), [], 'no timer of the closed tunnel is left');
});
