// SftpAuditor: SFTP v3 read from copies of both directions of an sftp channel. Built packets
// (split at every byte boundary), limits and malformed input, then OpenSSH's real sftp-server
// driven by built requests and by the real `sftp -b` client through a relay, as the edge sits.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SftpAuditor } from '../../src/edge/ssh/sftp-audit.js';
import type { SftpOperation } from '../../src/edge/ssh/sftp-audit.js';
import { cleanupTempDirs, tempDir, withTimeout } from '../helpers/util.js';

const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const str = (s: string | Buffer) => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([u32(b.length), b]);
};
const packet = (type: number, ...fields: Buffer[]) => {
  const body = Buffer.concat(fields);
  return Buffer.concat([u32(body.length + 1), Buffer.from([type]), body]);
};
const cat = (...parts: Buffer[]) => Buffer.concat(parts);
const NO_ATTRS = u32(0);
const READ = 0x01;
const WRITE = 0x02;
const CREAT = 0x08;
const TRUNC = 0x10;

const req = {
  init: () => packet(1, u32(3)),
  open: (id: number, path: string, flags: number) => packet(3, u32(id), str(path), u32(flags), NO_ATTRS),
  close: (id: number, handle: Buffer) => packet(4, u32(id), str(handle)),
  read: (id: number, handle: Buffer, offset: number, length: number) => packet(5, u32(id), str(handle), u64(offset), u32(length)),
  write: (id: number, handle: Buffer, offset: number, data: string | Buffer) => packet(6, u32(id), str(handle), u64(offset), str(data)),
  remove: (id: number, path: string) => packet(13, u32(id), str(path)),
  mkdir: (id: number, path: string) => packet(14, u32(id), str(path), NO_ATTRS),
  rmdir: (id: number, path: string) => packet(15, u32(id), str(path)),
  stat: (id: number, path: string) => packet(17, u32(id), str(path)),
  rename: (id: number, from: string, to: string) => packet(18, u32(id), str(from), str(to)),
  posixRename: (id: number, from: string, to: string) => packet(200, u32(id), str('posix-rename@openssh.com'), str(from), str(to)),
  statvfs: (id: number, path: string) => packet(200, u32(id), str('statvfs@openssh.com'), str(path)),
};
const res = {
  version: (version = 3) => packet(2, u32(version), str('posix-rename@openssh.com'), str('1')),
  status: (id: number, code: number) => packet(101, u32(id), u32(code), str(code === 0 ? 'Success' : 'Failure'), str('')),
  handle: (id: number, handle: Buffer) => packet(102, u32(id), str(handle)),
  data: (id: number, bytes: number) => packet(103, u32(id), str(Buffer.alloc(bytes, 0x61))),
  attrs: (id: number) => packet(105, u32(id), u32(0)),
  extendedReply: (id: number) => packet(201, u32(id), u64(0)),
};

type Turn = readonly ['client' | 'server', Buffer];
const H0 = u32(0);
const H1 = u32(1);

/** An upload, a download on the reused handle, a refused open, changes (one failing), a file left open. */
const SESSION: readonly Turn[] = [
  ['client', req.init()],
  ['server', res.version()],
  ['client', req.open(1, '/up/report.csv', WRITE | CREAT | TRUNC)],
  ['server', res.handle(1, H0)],
  ['client', cat(req.write(2, H0, 0, 'a'.repeat(1000)), req.write(3, H0, 1000, 'b'.repeat(500)), req.close(4, H0))],
  ['server', cat(res.status(2, 0), res.status(3, 0), res.status(4, 0))],
  ['client', req.open(5, '/up/report.csv', READ)],
  ['server', res.handle(5, H0)],
  // the close is sent before the reads are answered: their bytes still count
  ['client', cat(req.read(6, H0, 0, 1024), req.read(7, H0, 1024, 1024), req.read(8, H0, 2048, 1024), req.close(9, H0))],
  ['server', cat(res.data(6, 1024), res.data(7, 476), res.status(8, 1), res.status(9, 0))],
  ['client', cat(req.open(10, '/etc/shadow', READ), req.stat(11, '/up'))],
  ['server', cat(res.status(10, 3), res.attrs(11))],
  ['client', cat(
    req.mkdir(12, '/up/new'), req.rename(13, '/up/report.csv', '/up/new/report.csv'), req.posixRename(14, '/up/new', '/up/old'),
    req.remove(15, '/up/missing'), req.remove(16, '/up/old/report.csv'), req.rmdir(17, '/up/old'), req.statvfs(18, '/'),
  )],
  ['server', cat(res.status(12, 0), res.status(13, 0), res.status(14, 0), res.status(15, 2), res.status(16, 0), res.status(17, 0), res.extendedReply(18))],
  ['client', req.open(19, '/up/log', WRITE | CREAT)],
  ['server', res.handle(19, H1)],
  ['client', req.write(20, H1, 0, 'x'.repeat(10))],
];

const SESSION_OPS: readonly SftpOperation[] = [
  { op: 'open', path: '/up/report.csv', write: true },
  { op: 'write', path: '/up/report.csv', bytes: 1500 },
  { op: 'open', path: '/up/report.csv', write: false },
  { op: 'read', path: '/up/report.csv', bytes: 1500 },
  { op: 'mkdir', path: '/up/new' },
  { op: 'rename', from: '/up/report.csv', to: '/up/new/report.csv' },
  { op: 'rename', from: '/up/new', to: '/up/old' },
  { op: 'remove', path: '/up/old/report.csv' },
  { op: 'rmdir', path: '/up/old' },
  { op: 'open', path: '/up/log', write: true },
  { op: 'write', path: '/up/log', bytes: 10 },
];

/** Feeds the turns (each as `chunks(turn)` pieces), ends the channel, returns what was reported. */
function run(turns: readonly Turn[], chunks: (bytes: Buffer, index: number) => Buffer[] = (b) => [b], limits?: { maxHandles?: number; maxPending?: number }) {
  const ops: SftpOperation[] = [];
  const auditor = new SftpAuditor((op) => ops.push(op), limits);
  turns.forEach(([side, bytes], index) => {
    for (const piece of chunks(bytes, index)) (side === 'client' ? auditor.fromClient(piece) : auditor.fromServer(piece));
  });
  auditor.end();
  return { ops, auditor };
}

describe('SftpAuditor on built packets', () => {
  test('a session: opens, byte totals at close (or at the end), changes the server confirmed', () => {
    const { ops, auditor } = run(SESSION);
    assert.deepEqual(ops, SESSION_OPS);
    assert.equal(auditor.stopped, 'the channel ended');
  });

  test('the same session split at every byte boundary of every turn, and one byte at a time', () => {
    let runs = 0;
    for (let t = 0; t < SESSION.length; t++) {
      for (let at = 1; at < SESSION[t]![1].length; at++) {
        const { ops } = run(SESSION, (bytes, index) => (index === t ? [bytes.subarray(0, at), bytes.subarray(at)] : [bytes]));
        assert.deepEqual(ops, SESSION_OPS, `turn ${t} split at ${at}`);
        runs++;
      }
    }
    assert.ok(runs > 3000, `${runs} splits`);
    const bytewise = run(SESSION, (bytes) => [...bytes].map((byte) => Buffer.from([byte])));
    assert.deepEqual(bytewise.ops, SESSION_OPS);
  });

  test('chunks are copied, not kept: the caller may reuse its buffers at once', () => {
    const ops: SftpOperation[] = [];
    const auditor = new SftpAuditor((op) => ops.push(op));
    auditor.fromClient(req.init());
    auditor.fromServer(res.version());
    const open = req.open(1, '/srv/file', READ);
    const first = Buffer.from(open.subarray(0, 12));
    auditor.fromClient(first);
    first.fill(0xff);
    auditor.fromClient(open.subarray(12));
    auditor.fromServer(res.handle(1, H0));
    assert.deepEqual(ops, [{ op: 'open', path: '/srv/file', write: false }]);
  });

  test('a WRITE of the largest packet is counted as it streams by, and one byte more stops', () => {
    const handshake: Turn[] = [['client', req.init()], ['server', res.version()], ['client', req.open(1, '/big', WRITE | CREAT)], ['server', res.handle(1, H0)]];
    const overhead = 1 + 4 + 8 + 8 + 4; // type, id, handle (4 + 4), offset, data length
    const largest = req.write(2, H0, 0, Buffer.alloc(256 * 1024 - overhead));
    assert.equal(largest.readUInt32BE(0), 256 * 1024);
    const pieces = (bytes: Buffer, index: number) => (index === 4 ? Array.from({ length: Math.ceil(bytes.length / 1000) }, (_, i) => bytes.subarray(i * 1000, (i + 1) * 1000)) : [bytes]);
    const counted = run([...handshake, ['client', largest], ['client', req.close(3, H0)], ['server', cat(res.status(2, 0), res.status(3, 0))]], pieces);
    assert.deepEqual(counted.ops, [{ op: 'open', path: '/big', write: true }, { op: 'write', path: '/big', bytes: 256 * 1024 - overhead }]);
    const tooLong = run([...handshake, ['client', req.write(2, H0, 0, Buffer.alloc(256 * 1024 - overhead + 1))], ['client', req.close(3, H0)], ['server', res.status(3, 0)]]);
    assert.deepEqual(tooLong.ops, [{ op: 'open', path: '/big', write: true }]);
    assert.equal(tooLong.auditor.stopped, 'client: packet length 262145 is outside 1 to 262144');
  });

  test('limits: one handle or one pending request too many stops the observer, which reports nothing more', () => {
    const opens: Turn[] = [['client', req.init()], ['server', res.version()]];
    for (let i = 0; i < 3; i++) opens.push(['client', req.open(i, `/f${i}`, READ)], ['server', res.handle(i, u32(i))]);
    opens.push(['client', req.mkdir(9, '/d')], ['server', res.status(9, 0)]);
    const handles = run(opens, undefined, { maxHandles: 2 });
    assert.deepEqual(handles.ops, [{ op: 'open', path: '/f0', write: false }, { op: 'open', path: '/f1', write: false }, { op: 'open', path: '/f2', write: false }]);
    assert.equal(handles.auditor.stopped, 'server: more than 2 open handles');
    assert.equal(run(opens, undefined, { maxHandles: 3 }).ops.length, 4);

    const pipelined: Turn[] = [['client', req.init()], ['server', res.version()], ['client', cat(req.mkdir(1, '/a'), req.mkdir(2, '/b'), req.mkdir(3, '/c'))], ['server', cat(res.status(1, 0), res.status(2, 0), res.status(3, 0))]];
    const pending = run(pipelined, undefined, { maxPending: 2 });
    assert.deepEqual(pending.ops, []);
    assert.equal(pending.auditor.stopped, 'client: more than 2 requests await an answer');
    assert.equal(run(pipelined, undefined, { maxPending: 3 }).ops.length, 3);
    assert.throws(() => new SftpAuditor(() => {}, { maxHandles: 0 }), /maxHandles must be a positive integer, got 0/);
  });

  test('malformed input stops the observer silently: it reports nothing more and never throws', () => {
    const around = (bad: Turn): Turn[] => [
      ['client', req.init()], ['server', res.version()], ['client', req.mkdir(1, '/before')], ['server', res.status(1, 0)],
      bad,
      ['client', req.mkdir(2, '/after')], ['server', res.status(2, 0)],
    ];
    const cases: [Turn, string][] = [
      [['client', cat(u32(256 * 1024 + 1), Buffer.from([6]))], 'client: packet length 262145 is outside 1 to 262144'],
      [['client', u32(0)], 'client: packet length 0 is outside 1 to 262144'],
      [['client', packet(3, u32(7), u32(100), Buffer.from('/short'))], 'client: truncated packet of type 3'],
      [['client', packet(18, u32(7), str('/from'))], 'client: truncated packet of type 18'],
      [['client', packet(6, u32(7), str(H0), u64(0), u32(50), Buffer.alloc(10))], 'client: WRITE data length does not match its packet'],
      [['client', packet(99, u32(7))], 'client: packet type 99 is not an SFTP v3 request'],
      [['client', packet(3, Buffer.from([0, 1]))], 'client: packet type 3 is too short (2 bytes)'],
      [['client', req.init()], 'client: a second INIT'],
      [['server', packet(50, u32(7))], 'server: packet type 50 is not an SFTP v3 response'],
      [['server', packet(102, u32(7), str(Buffer.alloc(300)))], 'server: HANDLE of 308 bytes does not hold one handle'],
      [['server', packet(103, u32(7), u32(10), Buffer.alloc(3))], 'server: DATA length does not match its packet'],
      [['server', packet(101, u32(7))], 'server: packet type 101 is too short (4 bytes)'],
      [['server', res.version()], 'server: a second VERSION'],
    ];
    for (const [bad, reason] of cases) {
      const { ops, auditor } = run(around(bad));
      assert.deepEqual(ops, [{ op: 'mkdir', path: '/before' }], reason);
      assert.equal(auditor.stopped, reason);
    }
    // not SFTP at all, or another version of it
    assert.equal(run([['client', Buffer.from('SSH-2.0-OpenSSH_9.2\r\n')], ...SESSION.slice(1)]).auditor.stopped, 'client: packet length 1397966893 is outside 1 to 262144');
    assert.equal(run([['client', req.mkdir(1, '/x')], ...SESSION]).auditor.stopped, 'client: packet type 14 before INIT');
    const v6 = run([SESSION[0]!, ['server', res.version(6)], ...SESSION.slice(2)]);
    assert.deepEqual(v6.ops, []);
    assert.equal(v6.auditor.stopped, 'server: SFTP version 6: only version 3 is read');
  });

  test('random bytes and a corrupted session never throw (seeded, bounded)', () => {
    let seed = 0x5eed;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    for (let round = 0; round < 300; round++) {
      const turns: Turn[] = SESSION.map(([side, bytes]) => {
        const copy = Buffer.from(bytes);
        if (random() < 0.3) copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
        return [side, copy];
      });
      if (round % 3 === 0) turns.push(['client', Buffer.from(Array.from({ length: 64 }, () => Math.floor(random() * 256)))]);
      const { auditor } = run(turns, (bytes) => {
        const cut = Math.floor(random() * bytes.length);
        return [bytes.subarray(0, cut), bytes.subarray(cut)];
      });
      assert.notEqual(auditor.stopped, undefined);
    }
  });
});

/** A child's stdout read as SFTP packets, one at a time, bounded in time. */
class PacketReader {
  private buffered = Buffer.alloc(0);
  private waiter: (() => void) | undefined;

  constructor(stream: NodeJS.ReadableStream, onChunk: (chunk: Buffer) => void) {
    stream.on('data', (chunk: Buffer) => {
      onChunk(chunk);
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.waiter?.();
    });
  }

  async next(): Promise<Buffer> {
    for (let attempt = 0; attempt < 1000; attempt++) {
      if (this.buffered.length >= 4 && this.buffered.length >= 4 + this.buffered.readUInt32BE(0)) {
        const length = 4 + this.buffered.readUInt32BE(0);
        const packet = this.buffered.subarray(0, length);
        this.buffered = this.buffered.subarray(length);
        return packet;
      }
      await withTimeout(new Promise<void>((resolve) => (this.waiter = resolve)), 5_000, 'an answer from sftp-server');
    }
    throw new Error('sftp-server sent no whole packet');
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

describe('SftpAuditor against OpenSSH', () => {
  const children: ChildProcess[] = [];
  after(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await cleanupTempDirs();
  });

  test('built requests to the real sftp-server: what it did is what is reported', async () => {
    const dir = (await tempDir('postern-sftp-')).path;
    const ops: SftpOperation[] = [];
    const auditor = new SftpAuditor((op) => ops.push(op));
    const server = spawn(SFTP_SERVER, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(server);
    const answers = new PacketReader(server.stdout!, (chunk) => auditor.fromServer(chunk));
    const send = (bytes: Buffer) => {
      auditor.fromClient(bytes);
      server.stdin!.write(bytes);
    };
    const ask = async (request: Buffer, expectType: number) => {
      send(request);
      const answer = await answers.next();
      assert.equal(answer[4], expectType, `answer type to request type ${request[4]}`);
      return answer;
    };
    const handleOf = (answer: Buffer) => answer.subarray(13, 13 + answer.readUInt32BE(9));
    const statusOf = (answer: Buffer) => answer.readUInt32BE(9);

    await ask(req.init(), 2);
    const file = join(dir, 'a.txt');
    const text = 'hello world\n'.repeat(1000);
    const up = handleOf(await ask(req.open(1, file, WRITE | CREAT | TRUNC), 102));
    assert.equal(statusOf(await ask(req.write(2, up, 0, text), 101)), 0);
    assert.equal(statusOf(await ask(req.close(3, up), 101)), 0);
    assert.equal(await readFile(file, 'utf8'), text);
    const down = handleOf(await ask(req.open(4, file, READ), 102));
    // pipelined reads, then the close, as a client that streams a download does
    send(cat(req.read(5, down, 0, 8192), req.read(6, down, 8192, 8192), req.read(7, down, 16384, 8192), req.close(8, down)));
    assert.deepEqual([(await answers.next())[4], (await answers.next())[4], statusOf(await answers.next()), statusOf(await answers.next())], [103, 103, 1, 0]);
    const sub = join(dir, 'd');
    assert.equal(statusOf(await ask(req.mkdir(9, sub), 101)), 0);
    assert.equal(statusOf(await ask(req.rename(10, file, join(sub, 'b.txt')), 101)), 0);
    assert.equal(statusOf(await ask(req.posixRename(11, join(sub, 'b.txt'), join(sub, 'c.txt')), 101)), 0);
    assert.equal(statusOf(await ask(req.remove(12, join(dir, 'nope')), 101)), 2);
    assert.equal(statusOf(await ask(req.open(13, join(dir, 'nope', 'x'), READ), 101)), 2);
    assert.equal(statusOf(await ask(req.rename(14, join(dir, 'nope'), join(dir, 'other')), 101)), 2);
    assert.equal(statusOf(await ask(req.remove(15, join(sub, 'c.txt')), 101)), 0);
    assert.equal(statusOf(await ask(req.rmdir(16, sub), 101)), 0);
    await assert.rejects(access(sub));
    server.stdin!.end();
    assert.equal(await withTimeout(exited(server), 5_000, 'sftp-server to exit'), 0);
    auditor.end();

    assert.deepEqual(ops, [
      { op: 'open', path: file, write: true },
      { op: 'write', path: file, bytes: text.length },
      { op: 'open', path: file, write: false },
      { op: 'read', path: file, bytes: text.length },
      { op: 'mkdir', path: sub },
      { op: 'rename', from: file, to: join(sub, 'b.txt') },
      { op: 'rename', from: join(sub, 'b.txt'), to: join(sub, 'c.txt') },
      { op: 'remove', path: join(sub, 'c.txt') },
      { op: 'rmdir', path: sub },
    ]);
    assert.equal(auditor.stopped, 'the channel ended');
  });

  test('OpenSSH `sftp -b` through a relay to sftp-server, observed both ways as the edge would', async () => {
    const dir = (await tempDir('postern-sftp-')).path;
    const local = join(dir, 'local.bin');
    const remote = join(dir, 'remote');
    const content = randomBytes(300 * 1024 + 17);
    await writeFile(local, content);
    const ops: SftpOperation[] = [];
    const auditor = new SftpAuditor((op) => ops.push(op));
    const socketPath = join(dir, 'relay.sock');
    // The relay is the edge's seat: bytes pass unchanged, copies go to the observer.
    const relay = net.createServer((client) => {
      const server = spawn(SFTP_SERVER, [], { stdio: ['pipe', 'pipe', 'inherit'] });
      children.push(server);
      client.on('data', (chunk: Buffer) => {
        auditor.fromClient(chunk);
        server.stdin!.write(chunk);
      });
      client.on('end', () => server.stdin!.end());
      server.stdout!.on('data', (chunk: Buffer) => {
        auditor.fromServer(chunk);
        client.write(chunk);
      });
      server.on('exit', () => {
        auditor.end();
        client.end();
      });
    });
    await new Promise<void>((resolve) => relay.listen(socketPath, resolve));
    const bridge = join(dir, 'bridge.cjs');
    await writeFile(bridge, "const s = require('node:net').connect(process.argv[2]); process.stdin.pipe(s); s.pipe(process.stdout);\n");
    const batch = join(dir, 'batch');
    await writeFile(batch, [
      `mkdir ${remote}`,
      `put ${local} ${remote}/up.bin`,
      `get ${remote}/up.bin ${dir}/down.bin`,
      `-rm ${remote}/missing`,
      `rename ${remote}/up.bin ${remote}/moved.bin`,
      `rm ${remote}/moved.bin`,
      `rmdir ${remote}`,
      '',
    ].join('\n'));
    const sftp = spawn('sftp', ['-b', batch, '-D', `${process.execPath} ${bridge} ${socketPath}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(sftp);
    let output = '';
    sftp.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    sftp.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await withTimeout(exited(sftp), 20_000, 'sftp -b to finish');
    await new Promise<void>((resolve) => relay.close(() => resolve()));
    assert.equal(code, 0, output);
    assert.deepEqual(await readFile(join(dir, 'down.bin')), content);
    assert.equal(auditor.stopped, 'the channel ended');
    assert.deepEqual(ops, [
      { op: 'mkdir', path: remote },
      { op: 'open', path: `${remote}/up.bin`, write: true },
      { op: 'write', path: `${remote}/up.bin`, bytes: content.length },
      { op: 'open', path: `${remote}/up.bin`, write: false },
      { op: 'read', path: `${remote}/up.bin`, bytes: content.length },
      { op: 'rename', from: `${remote}/up.bin`, to: `${remote}/moved.bin` },
      { op: 'remove', path: `${remote}/moved.bin` },
      { op: 'rmdir', path: remote },
    ]);
  });
});
