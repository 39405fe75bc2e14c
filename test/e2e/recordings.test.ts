// E2E: recordings written by the real sink into a running server's SQLite file (opened from the
// test process, as a second node would), then read back through the real API and CLI: ls with
// filters, export played by Debian's `asciinema cat`, search with the moment, play with
// --speed/--idle-limit, and `sessions watch` following a recording the test keeps appending to.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openStore, silentLogger } from '../../src/store/index.js';
import type { Store } from '../../src/store/index.js';
import { createRecordingSink } from '../../src/reporting/index.js';
import type { RecordingMeta, StoreRecordingSink } from '../../src/reporting/index.js';
import { cleanupAll, spawnCli, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { tempDir, withTimeout } from '../helpers/util.js';

const run = promisify(execFile);

describe('recordings: API and CLI over recordings the real sink stored', () => {
  let server: ServerHandle;
  let store: Store;
  let sink: StoreRecordingSink;
  let shellId: string;
  let execId: string;
  /** What the shell recording's terminal showed, in order. */
  let shown = '';
  const started = new Date(Date.now() - 120_000);
  const at = (seconds: number) => new Date(started.getTime() + seconds * 1000);
  const meta = (extra: Partial<RecordingMeta>): RecordingMeta => ({
    connectionId: 'conn_shell', sessionId: 'ses_1', socket: 'prod', email: 'ana@corp.example', login: 'support', kind: 'shell',
    width: 100, height: 30, term: 'xterm-256color', title: 'support@prod', startedAt: started, recordInput: true, ...extra,
  });

  before(async () => {
    server = await startServer();
    store = await openStore(join(server.dataDir, 'postern.db'), { logger: silentLogger });
    sink = createRecordingSink({ store: store.recordings, audit: () => undefined, logger: silentLogger });

    const shell = sink.start(meta({}));
    shellId = shell.id;
    const show = (text: string, seconds: number) => {
      shown += text;
      shell.output(Buffer.from(text), at(seconds));
    };
    show('\u001b[32m$\u001b[0m ', 0.2);
    for (const [i, key] of [...'echo héllo; rm -rf /tmp/junk\r'].entries()) {
      shell.input(Buffer.from(key), at(1 + i / 10));
      show(key === '\r' ? '\r\n' : key, 1 + i / 10 + 0.01);
      // A chunk ends in the middle of "rm -rf": search joins chunks as it joins events.
      if (key === 'm') await sink.flush();
    }
    show('héllo\r\n$ ', 4.2);
    // A long pause: play's --idle-limit shortens it.
    show('exit\r\nlogout\r\n', 60);
    shell.end({ reason: 'the user logged out', exitStatus: 0 }, at(61));

    const exec = sink.start(meta({ connectionId: 'conn_exec', kind: 'exec', command: 'uptime', socket: 'db', email: 'bob@corp.example', login: 'root', recordInput: false, startedAt: at(5) }));
    execId = exec.id;
    exec.output(Buffer.from(' 10:00:00 up 3 days\r\n'), at(5.5));
    exec.end({ reason: 'exit', exitStatus: 0 }, at(6));
    await sink.flush();
  });

  after(async () => {
    await sink?.close();
    await store?.close();
    await cleanupAll();
  });

  test('ls lists newest first, filters by user and socket; the API pages with a cursor and names the scope it needs', async () => {
    const all = await server.cli(['recordings', 'ls']);
    assert.equal(all.code, 0, all.stderr);
    const lines = all.stdout.trim().split('\n');
    assert.match(lines[0]!, /^ID\s+STARTEDAT\s+DURATION\s+EMAIL\s+LOGIN\s+SOCKET\s+WHAT/);
    assert.ok(lines[1]!.startsWith(execId) && lines[2]!.startsWith(shellId), all.stdout);
    assert.match(lines[1]!, /bob@corp\.example\s+root\s+db\s+exec: uptime/);
    assert.match(lines[2]!, /1:01\.0\s+ana@corp\.example\s+support\s+prod\s+shell/);
    const ana = await server.cli(['recordings', 'ls', '--user', 'ana@corp.example', '--json']);
    assert.deepEqual((JSON.parse(ana.stdout) as { id: string }[]).map((r) => r.id), [shellId]);
    const db = await server.cli(['recordings', 'ls', '--socket', 'db', '--json']);
    assert.deepEqual((JSON.parse(db.stdout) as { id: string }[]).map((r) => r.id), [execId]);
    const since = await server.cli(['recordings', 'ls', '--since', at(1).toISOString(), '--json']);
    assert.deepEqual((JSON.parse(since.stdout) as { id: string }[]).map((r) => r.id), [execId]);

    const page = await api(server, '/api/v1/recordings?limit=1');
    const first = page.json<{ recordings: { id: string }[]; next: string }>();
    assert.deepEqual([first.recordings[0]?.id, first.next], [execId, execId]);
    const rest = (await api(server, `/api/v1/recordings?limit=1&before=${first.next}`)).json<{ recordings: { id: string }[] }>();
    assert.deepEqual(rest.recordings.map((r) => r.id), [shellId]);
    const detail = (await api(server, `/api/v1/recordings/${shellId}`)).json<Record<string, unknown>>();
    assert.deepEqual([detail.endReason, detail.exitStatus, detail.truncated, detail.kind], ['the user logged out', 0, false, 'shell']);
    const missing = await api(server, '/api/v1/recordings/rec_nothinghere');
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['content-type'], 'application/problem+json; charset=utf-8');

    const created = await server.cli(['token', 'create', '--name', 'auditor', '--scope', 'audit:read', '--json']);
    const auditor = (JSON.parse(created.stdout) as { token: string }).token;
    const refused = await api(server, `/api/v1/recordings/${shellId}/cast`, { token: auditor });
    assert.equal(refused.status, 403);
    assert.match(refused.json<{ detail: string }>().detail, /lacks the scope "recordings:read"/);
    const reader = JSON.parse((await server.cli(['token', 'create', '--name', 'reader', '--scope', 'recordings:read', '--json'])).stdout) as { token: string };
    assert.equal((await api(server, '/api/v1/recordings', { token: reader.token })).status, 200);
  });

  test('export writes an asciicast v2 file that asciinema cat plays as the terminal showed it', async () => {
    const exported = await server.cli(['recordings', 'export', shellId]);
    assert.equal(exported.code, 0, exported.stderr);
    const [header, ...events] = exported.stdout.trimEnd().split('\n');
    assert.deepEqual(JSON.parse(header!), { version: 2, width: 100, height: 30, timestamp: Math.floor(started.getTime() / 1000), title: 'support@prod', env: { TERM: 'xterm-256color' } });
    assert.deepEqual(JSON.parse(events[0]!), [0.2, 'o', '\u001b[32m$\u001b[0m ']);
    assert.deepEqual(JSON.parse(events[1]!), [1, 'i', 'e']);
    const file = join((await tempDir()).path, 'session.cast');
    await writeFile(file, exported.stdout);
    // asciinema cat wants a terminal (it opens /dev/tty): `script` gives it one, raw output (no \n → \r\n).
    const { stdout } = await run('script', ['-qec', `stty -onlcr; asciinema cat '${file}'`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' } });
    assert.equal(stdout, shown);

    const res = await api(server, `/api/v1/recordings/${shellId}/cast`, { headers: { accept: 'application/x-asciicast' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/x-asciicast');
    assert.equal(res.text, exported.stdout);
  });

  test('search finds typed and shown text across events and escapes, case ignored, with the moment', async () => {
    const found = await server.cli(['recordings', 'search', 'RM -rf']);
    assert.equal(found.code, 0, found.stderr);
    const lines = found.stdout.trim().split('\n');
    assert.equal(lines.length, 2, found.stdout);
    assert.match(lines[1]!, new RegExp(`^${shellId}\\s.*ana@corp\\.example\\s+support\\s+prod\\s+0:02\\.2\\s+input\\s+echo héllo; rm -rf$`));
    const shownText = JSON.parse((await server.cli(['recordings', 'search', '$ echo', '--json'])).stdout) as { time: number; stream: string }[];
    assert.deepEqual(shownText.map((m) => [m.time, m.stream]), [[0.2, 'output']], 'the colour codes between "$" and the text do not hide it');
    assert.equal((await server.cli(['recordings', 'search', 'up 3 days', '--socket', 'db', '--json'])).stdout.includes(execId), true);
    assert.equal((await server.cli(['recordings', 'search', 'rm -rf', '--user', 'bob@corp.example'])).stdout.trim(), '(none)');
    assert.equal((await server.cli(['recordings', 'search', 'nowhere to be seen'])).stdout.trim(), '(none)');
  });

  test('play shows the output with the timing cut by --idle-limit and --speed; bad flags are one line', async () => {
    const played = await server.cli(['recordings', 'play', shellId, '--speed', '20', '--idle-limit', '0.5']);
    assert.equal(played.code, 0, played.stderr);
    assert.equal(played.stdout, shown);
    const bad = await server.cli(['recordings', 'play', shellId, '--speed', '0']);
    assert.notEqual(bad.code, 0);
    assert.equal(bad.stderr, 'postern: --speed must be a positive number\n');
    const unknown = await server.cli(['recordings', 'export', 'rec_nothinghere']);
    assert.equal(unknown.stderr, 'postern: recording "rec_nothinghere" does not exist\n');
  });

  test('a recording whose edge died is readable up to its last chunk, and a follow of it ends', async () => {
    // A writer whose clock says its last write was two minutes ago: an edge that was SIGKILLed then.
    const past = await openStore(join(server.dataDir, 'postern.db'), { logger: silentLogger, now: () => new Date(Date.now() - 120_000) });
    const dead = createRecordingSink({ store: past.recordings, audit: () => undefined, logger: silentLogger });
    try {
      const handle = dead.start(meta({ connectionId: 'conn_dead', startedAt: new Date(Date.now() - 130_000) }));
      handle.output(Buffer.from('last words\r\n'));
      await dead.flush();
      const followed = await withTimeout(api(server, `/api/v1/recordings/${handle.id}/cast?follow=1`), 15_000, 'the follow of a dead recording to end');
      assert.equal(followed.status, 200);
      assert.deepEqual(JSON.parse(followed.text.trimEnd().split('\n').at(-1)!).slice(1), ['o', 'last words\r\n']);
      const listed = JSON.parse((await server.cli(['recordings', 'ls', '--live', '--json'])).stdout) as { id: string; endedAt: string | null }[];
      assert.deepEqual(listed.map((r) => [r.id, r.endedAt]), [[handle.id, null]], 'still open: nobody ended it');
    } finally {
      await past.close();
    }
  });

  test('sessions watch follows a live recording as it is appended to and ends when it ends', async () => {
    const none = await server.cli(['sessions', 'watch', 'conn_shell']);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /^postern: connection "conn_shell" has no live recording/);

    const live = sink.start(meta({ connectionId: 'conn_live', startedAt: new Date() }));
    live.output(Buffer.from('first screen\r\n'));
    await sink.flush();
    const watch = spawnCli('sessions watch', ['sessions', 'watch', 'conn_live'], server.env);
    await watch.waitForOutput(/watching ana@corp\.example as support on prod/, { stream: 'stderr' });
    await watch.waitForOutput(/first screen/);
    live.output(Buffer.from('second screen\r\n'));
    await sink.flush();
    await watch.waitForOutput(/second screen/);
    live.end({ reason: 'killed by an administrator' });
    await sink.flush();
    const exit = await withTimeout(watch.exited, 15_000, 'watch to end with the session');
    assert.equal(exit.code, 0, watch.stderr);
    assert.equal(watch.stdout, 'first screen\r\nsecond screen\r\n');
    assert.match(watch.stderr, /\[the session ended: killed by an administrator\]/);
  });
});
