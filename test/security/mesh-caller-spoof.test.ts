// The mesh's sender finds who called from `ss -p`, whose process names are free text: a process
// named `x",pid=1,fd=0)` prints an extra (pid, fd) pair beside its own. The lookup must never
// answer with the pid the name invents: every pair ss reports is checked in /proc, and one that
// does not hold the socket refuses the lookup (or ss quotes the name and the caller is found as itself).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { processOfLocalConnection } from '../../src/agent/process.js';
import { isPosternError } from '../../src/errors.js';

const linux = process.platform === 'linux' ? false : 'the caller lookup reads Linux /proc';

test('a caller whose process name forges an ss holder is refused, never taken for the forged pid', { skip: linux }, async () => {
  const server = net.createServer((socket) => socket.on('error', () => undefined));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  // process.title sets the kernel's comm (what ss prints) as well as the command line.
  const caller = spawn(process.execPath, ['-e', `process.title = 'x",pid=1,fd=0)'; const s = require('net').connect(${port}, '127.0.0.1'); setTimeout(() => s.destroy(), 20000); s.on('error', () => {});`], { stdio: 'ignore' });
  try {
    const [socket] = await accepted;
    const lookup = processOfLocalConnection(socket.remotePort!, socket.localPort!, { localAddress: '127.0.0.1', remoteAddress: '127.0.0.1' });
    const found = await lookup.then((p) => p, (err: unknown) => err);
    if (isPosternError(found)) assert.equal(found.code, 'identity_invalid', found.message);
    else assert.equal((found as { pid: number }).pid, caller.pid, 'the caller is found as itself, not as the pid its name invents');
  } finally {
    caller.kill('SIGKILL');
    server.close();
  }
});
