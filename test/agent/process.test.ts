// Finding the local process behind a connection on this real kernel: a node child, a python child
// under another uid, this process itself, a child whose executable was deleted, a Unix-socket peer,
// and the executable hash cache.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, readFile, realpath, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ExecutableHasher, findTcpSocket, parseProcNetTcp, processOfLocalConnection, processOfUnixPeer, socketHolders } from '../../src/agent/process.js';
import { isPosternError } from '../../src/errors.js';
import { cleanupTempDirs, tempDir, waitFor, withTimeout } from '../helpers/util.js';

const linuxOnly = { skip: process.platform === 'linux' ? false : 'needs Linux /proc' } as const;
const sha256File = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

describe('processOfLocalConnection', linuxOnly, () => {
  let server: net.Server;
  let port: number;
  const accepted: net.Socket[] = [];
  const waiting: ((socket: net.Socket) => void)[] = [];
  const children: ChildProcess[] = [];
  const hasher = new ExecutableHasher();

  before(async () => {
    server = net.createServer((socket) => {
      const wake = waiting.shift();
      if (wake) wake(socket);
      else accepted.push(socket);
    });
    server.listen(0, '::');
    await once(server, 'listening');
    port = (server.address() as net.AddressInfo).port;
  });
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    for (const socket of accepted) socket.destroy();
    server.close();
    await cleanupTempDirs();
  });

  const nextConnection = () => withTimeout(new Promise<net.Socket>((resolve) => {
    const ready = accepted.shift();
    if (ready) resolve(ready);
    else waiting.push(resolve);
  }), 10_000, 'a connection to the test server');
  const lookup = (socket: net.Socket) => processOfLocalConnection(socket.remotePort!, socket.localPort!, { localAddress: socket.remoteAddress!, remoteAddress: socket.localAddress!, hasher });
  const clientInode = async (socket: net.Socket) => {
    const rows = parseProcNetTcp(await readFile('/proc/net/tcp', 'utf8'));
    return findTcpSocket(rows, { localPort: socket.remotePort!, remotePort: socket.localPort! })[0]!.inode;
  };
  const start = (command: string, args: string[], options: { uid?: number } = {}) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], ...options });
    children.push(child);
    return child;
  };

  test('a node child is found with its pid, executable, uid and hash', async () => {
    const child = start(process.execPath, ['-e', `require('net').connect(${port}, '127.0.0.1'); setTimeout(() => {}, 60000)`]);
    const found = await lookup(await nextConnection());
    assert.equal(found.pid, child.pid);
    assert.deepEqual(found.pids, [child.pid]);
    assert.equal(found.exe, await realpath(process.execPath));
    assert.equal(found.exeDeleted, false);
    assert.equal(found.uid, process.getuid!());
    assert.equal(found.sha256, await sha256File(process.execPath));
  });

  test('a python child under another uid is told apart by executable and uid', { skip: process.getuid?.() === 0 ? false : 'needs root to run a child as another uid' }, async () => {
    const child = start('python3', ['-c', `import os, socket, sys, time\ns = socket.create_connection(("::1", ${port}))\nprint(os.path.realpath(sys.executable), flush=True)\ntime.sleep(60)`], { uid: 65534 });
    const [said] = (await withTimeout(once(child.stdout!, 'data'), 10_000, 'python to connect')) as [Buffer];
    const found = await lookup(await nextConnection());
    assert.equal(found.pid, child.pid);
    assert.equal(found.exe, said.toString().trim());
    assert.notEqual(found.exe, await realpath(process.execPath));
    assert.equal(found.uid, 65534);
    assert.equal(found.sha256, await sha256File(found.exe));
  });

  test('a connection from this process is found as this process', async () => {
    const client = net.connect(port, '127.0.0.1');
    try {
      const found = await lookup(await nextConnection());
      assert.equal(found.pid, process.pid);
    } finally {
      client.destroy();
    }
  });

  test('a process whose executable was deleted is reported so, with the hash of what it runs', async () => {
    const dir = await tempDir('postern-procnet-');
    const exe = join(dir.path, 'bash-copy');
    await copyFile('/bin/bash', exe);
    const expected = await sha256File(exe);
    // `read` is a builtin: bash itself keeps the socket (a last external command would replace it by exec).
    start(exe, ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}; read -t 60 -u 3`]);
    const socket = await nextConnection();
    await rm(exe);
    const found = await lookup(socket);
    assert.equal(found.exe, exe);
    assert.equal(found.exeDeleted, true);
    assert.equal(found.sha256, expected);
  });

  test('a socket shared by processes running different executables is refused', async () => {
    // The child `sleep` inherits fd 3 from bash: two holders, two executables, no single answer.
    start('/bin/bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}; sleep 60 & wait`]);
    const socket = await nextConnection();
    // Until bash's fork has exec'd sleep, both holders still run bash: wait for two executables.
    const executables = async () => new Set(await Promise.all((await socketHolders(await clientInode(socket))).map((pid) => realpath(`/proc/${pid}/exe`).catch(() => ''))));
    await waitFor(async () => (await executables()).size === 2, { what: 'sleep to start' });
    await assert.rejects(lookup(socket), (err) => isPosternError(err, 'identity_invalid') && /differ/.test(err.message));
  });

  test('a port pair no process holds is not found', async () => {
    await assert.rejects(processOfLocalConnection(1, 2), (err) => isPosternError(err, 'not_found') && /no such socket/.test(err.message));
  });
});

describe('processOfUnixPeer', linuxOnly, () => {
  test('the node child that connected to our Unix socket is found', async (t) => {
    const dir = await tempDir('postern-procnet-');
    const path = join(dir.path, 'agent.sock');
    const server = net.createServer();
    server.listen(path);
    await once(server, 'listening');
    const child = spawn(process.execPath, ['-e', `require('net').connect(${JSON.stringify(path)}); setTimeout(() => {}, 60000)`], { stdio: 'ignore' });
    t.after(async () => {
      child.kill('SIGKILL');
      server.close();
      await dir.cleanup();
    });
    const [socket] = (await withTimeout(once(server, 'connection'), 10_000, 'the child to connect')) as [net.Socket];
    const found = await processOfUnixPeer(socket);
    assert.equal(found.pid, child.pid);
    assert.equal(found.exe, await realpath(process.execPath));
    socket.destroy();
  });
});

describe('ExecutableHasher', () => {
  test('hashes once per (dev, ino, size, mtime): a changed mtime hashes again', async (t) => {
    const dir = await tempDir('postern-procnet-');
    t.after(() => dir.cleanup());
    const file = join(dir.path, 'app');
    await writeFile(file, 'version 1');
    const hasher = new ExecutableHasher();
    // Same size, same mtime, other bytes: the cached answer proves the file was not read again.
    const mtime = new Date('2026-01-01T00:00:00Z');
    await utimes(file, mtime, mtime);
    const first = await hasher.hashOf(file);
    assert.equal(first, createHash('sha256').update('version 1').digest('hex'));
    await writeFile(file, 'version 2');
    await utimes(file, mtime, mtime);
    assert.equal(await hasher.hashOf(file), first);
    await utimes(file, mtime, new Date(mtime.getTime() + 1000));
    assert.equal(await hasher.hashOf(file), createHash('sha256').update('version 2').digest('hex'));
  });
});
