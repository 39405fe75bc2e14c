// E2E: managed SSH (`--type ssh`) with the real OpenSSH client and sshd — a shell on a real terminal
// recorded with its keystrokes and played by Debian's asciinema, exec decided per command, a login
// the policy does not name, and live sessions cut by a policy change, by `sessions kill` (watched
// live meanwhile) and by max_session, each telling the terminal why.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEFAULT_SSH, EMAIL, SOCKET, startManagedSsh } from '../helpers/managed-ssh.js';
import type { ManagedSsh } from '../helpers/managed-ssh.js';
import { cleanupAll, spawnCli } from '../helpers/processes.js';
import { LOGIN, haveOpenSsh } from '../helpers/sshd.js';
import { waitFor, withTimeout } from '../helpers/util.js';

const run = promisify(execFile);
const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

/** The line the edge writes to the terminal when it ends a session: `\r\npostern: <reason>\r\n`. */
const CUT = /\r\npostern: ([^\r\n]+)\r\n/;

type CastEvent = [number, string, string];

function parseCast(text: string): { header: Record<string, unknown>; events: CastEvent[] } {
  const [header, ...events] = text.trimEnd().split('\n');
  return { header: JSON.parse(header!) as Record<string, unknown>, events: events.map((line) => JSON.parse(line) as CastEvent) };
}

describe('managed SSH: shells, exec, logins and live cuts', { skip: !haveOpenSsh && process.env.CI !== 'true' ? 'OpenSSH is not installed' : false }, () => {
  let f: ManagedSsh;

  before(async () => {
    f = await startManagedSsh({ recordInput: true });
  });

  after(async () => {
    await cleanupAll();
    await f?.stop();
  });


  test('a shell on a real terminal: recorded with its keystrokes, exported, played by asciinema, searchable, audited', async () => {
    const { term, connection } = await f.openShell();
    assert.doesNotMatch(term.screen, /WARNING|authenticity|Permanently added|Warning:/, 'the host CA in known_hosts: no prompt, no warning');
    await term.type('echo hello; exit\r');
    await term.waitFor(/[\r\n]hello\r\n/);
    assert.equal((await term.waitForExit(10_000)).code, 0);

    const end = await f.waitForEvent('ssh.session.end', (e) => e.connectionId === connection.id, 'the session end in the audit trail');
    assert.equal(end.actor, EMAIL);
    assert.equal(end.details.login, LOGIN);
    assert.ok(Number(end.details.bytesUp) > 0 && Number(end.details.bytesDown) > 0 && Number(end.details.durationMs) >= 0, JSON.stringify(end.details));
    const started = (await f.events('ssh.session.start')).find((e) => e.connectionId === connection.id);
    assert.ok(started, 'ssh.session.start with the connection id');
    assert.deepEqual([started.details.login, started.details.protocol], [LOGIN, 'ssh']);

    // The recording's end reaches the store with its last chunk, within a second of the session's end.
    const recording = await waitFor(async () => {
      const listed = JSON.parse((await f.server.cli(['recordings', 'ls', '--socket', SOCKET, '--json'])).stdout) as { id: string; connectionId: string; kind: string; login: string; email: string; endedAt: string | null }[];
      return listed.find((r) => r.connectionId === connection.id && r.kind === 'shell' && r.endedAt !== null);
    }, { what: `the ended shell recording of ${connection.id}`, timeoutMs: 10_000, intervalMs: 250 });
    assert.deepEqual([recording.email, recording.login], [EMAIL, LOGIN]);
    assert.ok((end.details.recordings as string[]).includes(recording.id), JSON.stringify(end.details));

    const exported = await f.server.cli(['recordings', 'export', recording.id]);
    assert.equal(exported.code, 0, exported.stderr);
    const { header, events } = parseCast(exported.stdout);
    assert.deepEqual([header.version, header.width, header.height, (header.env as { TERM?: string }).TERM], [2, 100, 30, 'xterm-256color']);
    const typed = events.filter((e) => e[1] === 'i').map((e) => e[2]).join('');
    assert.equal(typed, 'echo hello; exit\r', 'record_input: every keystroke');
    // Keys typed 15 ms apart arrive as they come (ssh may batch a few on a loaded machine): not one blob at the end.
    assert.ok(events.filter((e) => e[1] === 'i').length > 1, 'input recorded as it was typed');
    const shown = events.filter((e) => e[1] === 'o').map((e) => e[2]).join('');
    assert.match(shown, /[\r\n]hello\r\n/);
    for (let i = 1; i < events.length; i++) assert.ok(events[i]![0] >= events[i - 1]![0], `timestamps never go back: ${JSON.stringify(events.slice(i - 1, i + 1))}`);
    assert.ok(events.at(-1)![0] > events[0]![0], 'time passes in the recording');
    assert.ok(term.screen.includes(shown), 'the recording holds exactly what the terminal showed (ssh adds only its own closing line)');

    const file = join(f.dir, 'shell.cast');
    await writeFile(file, exported.stdout);
    // asciinema cat wants a terminal: `script` gives it one, raw output (no \n → \r\n).
    const { stdout: played } = await run('script', ['-qec', `stty -onlcr; asciinema cat '${file}'`, '/dev/null'], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' } });
    assert.equal(played, shown);

    const replay = await f.server.cli(['recordings', 'play', recording.id, '--speed', '4', '--idle-limit', '1']);
    assert.equal(replay.code, 0, replay.stderr);
    assert.equal(replay.stdout, shown);
    const found = JSON.parse((await f.server.cli(['recordings', 'search', 'echo hello', '--json'])).stdout) as { recording: { id: string }; stream: string }[];
    assert.ok(found.some((m) => m.recording.id === recording.id && m.stream === 'input'), JSON.stringify(found));
    assert.equal(typeof end.reason, 'string', `ssh.session.end names its reason: ${JSON.stringify(end)}`);
  });

  test('exec: an allowed command runs and is audited with its exit status and its own recording; another is refused with the reason', async () => {
    const ok = await f.runSsh([f.target(), 'echo', 'ok']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'ok\n');
    assert.equal(ok.stderr, '', 'no warning, no prompt');
    const audited = await f.waitForEvent('ssh.exec', (e) => e.details.command === 'echo ok', 'the exec in the audit trail');
    assert.equal(audited.details.exitStatus, 0);
    assert.equal(audited.actor, EMAIL);
    assert.match(String(audited.connectionId), /^conn_/);
    const recording = await f.server.cli(['recordings', 'export', String(audited.details.recording)]);
    assert.equal(recording.code, 0, recording.stderr);
    assert.match(parseCast(recording.stdout).events.filter((e) => e[1] === 'o').map((e) => e[2]).join(''), /ok/);
    const detail = JSON.parse((await f.server.cli(['recordings', 'ls', '--socket', SOCKET, '--json'])).stdout) as { id: string; kind: string; command?: string }[];
    assert.deepEqual(detail.filter((r) => r.id === audited.details.recording).map((r) => [r.kind, r.command]), [['exec', 'echo ok']]);

    const failing = await f.runSsh([f.target(), 'sleep', 'notanumber']);
    assert.notEqual(failing.code, 0, 'an allowed command that fails passes its exit status on');
    assert.ok((await f.waitForEvent('ssh.exec', (e) => e.details.command === 'sleep notanumber', 'the failing exec')).details.exitStatus !== 0);

    const refused = await f.runSsh([f.target(), 'id']);
    assert.notEqual(refused.code, 0);
    assert.doesNotMatch(refused.stdout, /uid=/);
    assert.match(refused.stderr, new RegExp(`^postern: .*\\bid\\b.* is not allowed on ${SOCKET}\\b.*$`, 'm'));
    const denied = await f.waitForEvent('access.denied', (e) => e.details.protocol === 'ssh' && /\bid\b/.test(JSON.stringify(e.details)), 'the refused exec in the audit trail');
    assert.equal(denied.actor, EMAIL);
    assert.ok(denied.details.channel, JSON.stringify(denied.details));
    assert.match(String(denied.connectionId), /^conn_/);
  });

  test('a login the policy does not name is refused when the connection opens, and says so', async () => {
    // The tests run as root in CI, and then root is the allowed login.
    const other = LOGIN === 'root' ? 'daemon' : 'root';
    const refused = await f.runSsh([f.target(other), 'true']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`^postern: login ${other} is not allowed on ${SOCKET}\\b`, 'm'));
    const denied = await f.waitForEvent('access.denied', (e) => e.details.protocol === 'ssh' && JSON.stringify(e.details).includes(other), 'the refused login in the audit trail');
    assert.equal(denied.actor, EMAIL);
  });

  test('sessions ls lists a live shell as an ssh connection', async () => {
    const { term, connection } = await f.openShell();
    try {
      const listed = JSON.parse((await f.server.cli(['sessions', 'ls', '--json'])).stdout) as { connections: { id: string; protocol: string; socket: string }[] }[];
      const shown = listed.flatMap((s) => s.connections).find((c) => c.id === connection.id);
      assert.deepEqual([shown?.protocol, shown?.socket], ['ssh', SOCKET], `sessions ls lists ${connection.id}: ${JSON.stringify(listed)}`);
    } finally {
      await term.close();
    }
  });

  test('the README\'s managed SSH policy applies as written and names the socket it governs', async () => {
    const readme = await readFile(README, 'utf8');
    const start = readme.indexOf('```yaml\nname: prod-ssh\n');
    assert.ok(start >= 0, 'README has the prod-ssh.yaml block');
    const file = join(f.dir, 'prod-ssh.yaml');
    await writeFile(file, readme.slice(start + '```yaml\n'.length, readme.indexOf('```', start + 3)));
    const applied = await f.server.cli(['policy', 'apply', '-f', file]);
    try {
      assert.equal(applied.code, 0, applied.stderr);
      assert.match(applied.stdout, /policy \S*prod-ssh applied/);
      assert.doesNotMatch(applied.stderr, /does not exist/, `it names the socket ${SOCKET}, which exists`);
    } finally {
      await f.server.cli(['policy', 'delete', 'prod-ssh']);
    }
  });

  test('a policy that no longer allows the user cuts a live shell within a second, and the terminal says why', async () => {
    const { term, connection } = await f.openShell();
    const mark = term.screen.length;
    try {
      await f.applyPolicy(DEFAULT_SSH, { who: { email: ['bob@corp.example'] } });
      const [, reason] = await term.waitFor(CUT, 3_000, mark);
      assert.match(reason!, /not allowed|denied|no rule|polic/i);
      await term.waitForExit(3_000);
      const end = await f.waitForEvent('ssh.session.end', (e) => e.connectionId === connection.id, 'the cut in the audit trail');
      assert.match(end.reason, /not allowed|denied|no rule|polic/i);
    } finally {
      await term.close();
      await f.applyPolicy(DEFAULT_SSH);
    }
  });

  test('sessions kill cuts a live shell that sessions watch follows; both say why', async () => {
    const { term, connection } = await f.openShell();
    const watch = spawnCli('sessions watch', ['sessions', 'watch', connection.id], f.server.env);
    await watch.waitForOutput(new RegExp(`watching ${EMAIL.replace('.', '\\.')} as ${LOGIN} on ${SOCKET}`), { stream: 'stderr' });
    await term.type('echo watched-$((6*7))\r');
    await term.waitFor(/[\r\n]watched-42\r\n/);
    await watch.waitForOutput(/watched-42/);
    const mark = term.screen.length;
    const killed = await f.server.cli(['sessions', 'kill', connection.id]);
    assert.equal(killed.code, 0, killed.stderr);
    const [, reason] = await term.waitFor(CUT, 3_000, mark);
    assert.match(reason!, /kill/i);
    await term.waitForExit(3_000);
    assert.equal((await withTimeout(watch.exited, 10_000, 'watch to end with the session')).code, 0, watch.stderr);
    assert.match(watch.stderr, /\[the session ended: [^\]]+\]/);
    const end = await f.waitForEvent('ssh.session.end', (e) => e.connectionId === connection.id, 'the kill in the audit trail');
    assert.match(end.reason, /kill/i);
  });

  test('max_session ends a shell when its time is up, with the reason on the terminal', async () => {
    await f.applyPolicy({ ...DEFAULT_SSH, max_session: '3s' });
    try {
      const { term, connection } = await f.openShell();
      const mark = term.screen.length;
      const [, reason] = await term.waitFor(CUT, 8_000, mark);
      assert.match(reason!, /max|session|3 ?s|time/i);
      await term.waitForExit(3_000);
      const end = await f.waitForEvent('ssh.session.end', (e) => e.connectionId === connection.id, 'the end in the audit trail');
      assert.equal(end.reason, reason);
    } finally {
      await f.applyPolicy(DEFAULT_SSH);
    }
  });
});
