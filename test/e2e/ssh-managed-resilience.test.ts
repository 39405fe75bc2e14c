// E2E: managed SSH under failure and abuse — a server SIGKILLed mid-session leaves a readable
// recording that holds the output up to about the last second; garbage after the SSH banner, a
// 100000x100000 window-change and 1,000 channel opens on one connection are refused or bounded,
// while a second, concurrent session goes on and the server stays up.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Client, ClientChannel } from 'ssh2';
import { SOCKET, startManagedSsh } from '../helpers/managed-ssh.js';
import type { ManagedSsh } from '../helpers/managed-ssh.js';
import type { Pty } from '../helpers/pty.js';
import { cleanupAll } from '../helpers/processes.js';
import { haveOpenSsh } from '../helpers/sshd.js';
import { withTimeout } from '../helpers/util.js';

const CHANNELS = 1_000;

type CastEvent = [number, string, string];

const ticksIn = (text: string) => [...text.matchAll(/tick-(\d+)\r?\n/g)].map((m) => Number(m[1]));

/** Resolves once `socket` has closed (or rejects after `ms`): the edge hung up on it. */
const closed = (socket: net.Socket, ms: number) => withTimeout(new Promise<void>((resolve) => {
  if (socket.destroyed) resolve();
  socket.on('error', () => undefined).once('close', () => resolve());
}), ms, 'the edge to close the connection');

describe('managed SSH: crashes and hostile clients', { skip: !haveOpenSsh && process.env.CI !== 'true' ? 'OpenSSH is not installed' : false }, () => {
  let f: ManagedSsh;

  before(async () => {
    f = await startManagedSsh({ recordInput: true });
  });

  after(async () => {
    await cleanupAll();
    await f?.stop();
  });


  /** The concurrent session still answers. */
  const stillAlive = async (term: Pty, tag: string) => {
    const mark = term.screen.length;
    await term.type(`echo alive-${tag}-$((20+22))\r`);
    await term.waitFor(new RegExp(`[\\r\\n]alive-${tag}-42\\r\\n`), 10_000, mark);
  };

  test('a server killed with SIGKILL mid-session leaves a readable recording with the output up to about the last second', async () => {
    const { term, connection } = await f.openShell();
    await term.type('for i in $(seq 1 3000); do echo tick-$i; sleep 0.1; done\r');
    await term.waitFor(/[\r\n]tick-40\r\n/, 20_000);
    const restarted = f.restartServer('SIGKILL');
    restarted.catch(() => undefined); // awaited below, after the terminal has shown its last tick
    await term.waitForExit(15_000);
    const lastShown = Math.max(...ticksIn(term.screen));
    await restarted;

    const listed = JSON.parse((await f.server.cli(['recordings', 'ls', '--socket', SOCKET, '--json'])).stdout) as { id: string; connectionId: string; kind: string }[];
    const recording = listed.find((r) => r.connectionId === connection.id && r.kind === 'shell');
    assert.ok(recording, `the recording of ${connection.id} survived: ${JSON.stringify(listed)}`);
    const exported = await f.server.cli(['recordings', 'export', recording.id]);
    assert.equal(exported.code, 0, exported.stderr);
    const [header, ...lines] = exported.stdout.trimEnd().split('\n');
    assert.equal((JSON.parse(header!) as { version: number }).version, 2);
    const output = lines.map((line) => JSON.parse(line) as CastEvent).filter((e) => e[1] === 'o').map((e) => e[2]).join('');
    const lastRecorded = Math.max(...ticksIn(output));
    // About ten ticks a second, chunks stored every second: a second lost, and as much again for the scheduler.
    assert.ok(lastRecorded >= lastShown - 20, `the terminal showed tick-${lastShown}, the recording holds up to tick-${lastRecorded}`);

    const after = await f.runSsh([f.target(), 'echo', 'back']);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout, 'back\n');
  });

  test('garbage after the banner, a 100000x100000 window and 1,000 channel opens are refused or bounded; a concurrent session goes on', async () => {
    const { term } = await f.openShell();

    // Garbage after a valid banner exchange, over the TLS connection with the user's certificate.
    const raw = await f.tlsSocket();
    const banner = await withTimeout(new Promise<string>((resolve) => raw.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1')))), 10_000, 'the SSH banner');
    assert.match(banner, /^SSH-2\.0-/);
    raw.write('SSH-2.0-garbage\r\n');
    raw.write(randomBytes(256 * 1024));
    await closed(raw, 10_000);
    // And garbage where a TLS handshake should be.
    const plain = net.connect(f.server.port, '127.0.0.1');
    plain.on('connect', () => plain.write(randomBytes(64 * 1024)));
    await closed(plain, 10_000);
    await stillAlive(term, 'garbage');

    // A window-change no terminal has.
    const resized = await f.ssh2Client();
    const connections = new Set((await f.liveConnections()).map((c) => c.id));
    const shell = await new Promise<ClientChannel>((resolve, reject) => resized.shell({ rows: 30, cols: 100, term: 'xterm-256color' }, (err, stream) => (err ? reject(err) : resolve(stream))));
    let shown = '';
    shell.on('data', (chunk: Buffer) => (shown += chunk.toString('utf8')));
    const shellClosed = new Promise<void>((resolve) => shell.once('close', () => resolve()));
    await withTimeout(new Promise<void>((resolve) => {
      const check = () => (/[#$] $/.test(shown) ? resolve() : shell.once('data', check));
      check();
    }), 15_000, 'the ssh2 shell prompt');
    shell.setWindow(100_000, 100_000, 0, 0);
    shell.write('echo after-resize-$((1+1))\n');
    // Either the edge ignores or clamps the size and the shell answers, or it closes the channel.
    await withTimeout(Promise.race([
      shellClosed,
      new Promise<void>((resolve) => {
        const check = () => (/after-resize-2/.test(shown) ? resolve() : shell.once('data', check));
        check();
      }),
    ]), 10_000, 'the shell to answer or be closed after the window-change');
    const resizedConnection = (await f.liveConnections()).find((c) => !connections.has(c.id));
    resized.end();
    await stillAlive(term, 'resize');
    if (resizedConnection) {
      const recordings = JSON.parse((await f.server.cli(['recordings', 'ls', '--socket', SOCKET, '--json'])).stdout) as { id: string; connectionId: string }[];
      for (const r of recordings.filter((rec) => rec.connectionId === resizedConnection.id)) {
        const exported = await f.server.cli(['recordings', 'export', r.id]);
        assert.equal(exported.code, 0, exported.stderr);
        const resizes = exported.stdout.trimEnd().split('\n').slice(1).map((line) => JSON.parse(line) as CastEvent).filter((e) => e[1] === 'r');
        for (const [, , size] of resizes) assert.ok(size.split('x').every((n) => Number(n) < 100_000), `a recorded size is bounded: ${size}`);
      }
    }

    // 1,000 channel opens at once on one connection.
    const flood: Client = await f.ssh2Client();
    const floodClosed = new Promise<void>((resolve) => flood.once('close', () => resolve()));
    flood.on('error', () => undefined);
    let opened = 0;
    let refused = 0;
    /** Accepted, then ended with a `postern: ` line: the edge said yes before it knew. */
    let refusedLater = 0;
    const streams: ClientChannel[] = [];
    const answered = Promise.all(Array.from({ length: CHANNELS }, () => new Promise<void>((resolve) => {
      flood.exec('sleep 20', (err, stream) => {
        if (err) refused++;
        else {
          opened++;
          streams.push(stream);
          stream.on('error', () => undefined);
          stream.stderr.on('data', (chunk: Buffer) => {
            if (chunk.toString('utf8').startsWith('postern: ')) refusedLater++;
          });
        }
        resolve();
      });
    })));
    // Every open is answered (or the edge hangs up on the whole connection): nothing waits forever.
    await withTimeout(Promise.race([answered, floodClosed]), 60_000, `answers to ${CHANNELS} channel opens`);
    assert.ok(opened < CHANNELS, `the edge refuses channel opens past its bound (${opened} accepted, ${refused} refused at open, ${refusedLater} of the accepted ended with a postern: line)`);
    await stillAlive(term, 'flood');
    flood.end();
    for (const stream of streams) stream.destroy();

    assert.equal(f.server.process.running, true, 'the server is still up');
    const exec = await f.runSsh([f.target(), 'echo', 'still serving']);
    assert.equal(exec.code, 0, exec.stderr);
    assert.equal(exec.stdout, 'still serving\n');
    await term.close();
  });
});
