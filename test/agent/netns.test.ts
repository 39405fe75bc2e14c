// The two-host test rig: a TCP echo server on host B answers host A at B's address, is not
// reachable from the root namespace, the CLI runs inside a host, and cleanup leaves nothing behind
// (a crashed run's leftovers are removed too).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createTwoHosts, ip, needsNetns, ourLeftovers, removeLeftovers } from '../helpers/netns.js';
import type { TwoHosts } from '../helpers/netns.js';
import { cleanupAll } from '../helpers/processes.js';

const ECHO_PORT = 7007;
const echoServer = `require('net').createServer((s) => s.pipe(s)).listen(${ECHO_PORT}, process.argv[1], () => console.log('listening'))`;
const echoClient = `const s = require('net').connect(${ECHO_PORT}, process.argv[1], () => s.end('ping'));
s.setTimeout(5000, () => { console.error('timeout'); process.exit(2); });
s.on('data', (d) => process.stdout.write(d)); s.on('error', (e) => { console.error(e.code); process.exit(1); });`;

describe('network-namespace hosts', needsNetns, () => {
  let hosts: TwoHosts;

  before(async () => {
    hosts = await createTwoHosts();
  });
  after(async () => {
    await cleanupAll();
    await hosts?.cleanup();
  });

  test('host A reaches an echo server on host B by its address', async () => {
    const server = hosts.b.spawn('echo on B', process.execPath, ['-e', echoServer, hosts.b.address]);
    await server.waitForOutput(/listening/, { timeoutMs: 10_000 });
    const reply = await hosts.a.run(process.execPath, ['-e', echoClient, hosts.b.address], { timeoutMs: 10_000 });
    assert.equal(reply.stdout, 'ping', reply.stderr);
  });

  test('the root namespace cannot reach host B', async () => {
    // Some sandboxes accept every outbound connect (an egress proxy), so "connected" proves nothing: the echo must not come back.
    const socket = net.connect({ port: ECHO_PORT, host: hosts.b.address });
    let echoed = '';
    socket.on('data', (data: Buffer) => (echoed += data.toString()));
    socket.on('error', () => undefined);
    socket.once('connect', () => socket.write('ping'));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    socket.destroy();
    assert.equal(echoed, '');
    assert.doesNotMatch(await ip(['-o', 'addr', 'show']), new RegExp(hosts.b.address.replaceAll('.', '\\.')));
  });

  test('each host has its own loopback: B\'s server is not on A\'s 127.0.0.1', async () => {
    const server = hosts.b.spawn('loopback echo on B', process.execPath, ['-e', echoServer.replace(String(ECHO_PORT), String(ECHO_PORT + 1)), '127.0.0.1']);
    await server.waitForOutput(/listening/, { timeoutMs: 10_000 });
    const onB = await hosts.b.run(process.execPath, ['-e', echoClient.replace(String(ECHO_PORT), String(ECHO_PORT + 1)), '127.0.0.1'], { timeoutMs: 10_000 });
    assert.equal(onB.stdout, 'ping', onB.stderr);
    const onA = await hosts.a.run(process.execPath, ['-e', echoClient.replace(String(ECHO_PORT), String(ECHO_PORT + 1)), '127.0.0.1'], { timeoutMs: 10_000 });
    assert.equal(onA.code, 1);
    assert.match(onA.stderr, /ECONNREFUSED/);
  });

  test('the postern CLI runs inside a host', async () => {
    const result = await hosts.a.spawnCli('postern --version', ['--version']).exited;
    assert.equal(result.code, 0);
  });

  test('cleanup removes both namespaces and the veth pair, even with a process still running inside', async () => {
    hosts.a.spawn('sleeper on A', 'sleep', ['60']);
    assert.equal((await ourLeftovers()).length, 2);
    await hosts.cleanup();
    assert.deepEqual(await ourLeftovers(), []);
  });

  test('leftovers of a run whose process is gone are removed; a live run\'s are kept', async () => {
    const dead = spawn('true');
    await once(dead, 'exit');
    const stale = `postern-t${dead.pid}-a`;
    const live = `postern-t${process.pid}-b`;
    await ip(['netns', 'add', stale]);
    await ip(['netns', 'add', live]);
    try {
      const removed = await removeLeftovers();
      assert.ok(removed.includes(stale), `removed ${removed.join(', ')}`);
      assert.deepEqual(await ourLeftovers(dead.pid!), []);
      assert.deepEqual(await ourLeftovers(), [live]);
    } finally {
      await ip(['netns', 'del', live]).catch(() => undefined);
      await ip(['netns', 'del', stale]).catch(() => undefined);
    }
  });
});
