// Child-process plumbing for the bench: spawn in own process groups, wait for output or ports, and kill everything on exit.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** The last ~16 KiB of stdout+stderr, for error messages. */
  tail(): string;
  /** Resolves with the first stdout/stderr line matching `re` (rejects on exit or timeout). */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  readonly exited: Promise<number | null>;
  stop(graceMs?: number): Promise<void>;
}

const children = new Set<Child>();
const tempDirs = new Set<string>();
let aborting = false;

/** A fresh directory under the OS temp dir, removed at exit whatever happens. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}
let nofilePrefix: string[] = [];

/** Commands run under this prefix (e.g. `prlimit --nofile=…`) when the fd limit is too low. */
export function setSpawnPrefix(prefix: string[]): void {
  nofilePrefix = prefix;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal); // the child leads its own process group (detached)
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

export function start(name: string, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; raiseNofile?: boolean } = {}): Child {
  if (aborting) throw new Error(`not starting ${name}: the bench is stopping`);
  const argv = options.raiseNofile && nofilePrefix.length > 0 ? [...nofilePrefix, command, ...args] : [command, ...args];
  const proc = spawn(argv[0]!, argv.slice(1), { env: options.env ?? process.env, cwd: options.cwd, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  if (proc.pid === undefined) throw new Error(`cannot start ${name} (${command})`);
  const pid = proc.pid;
  let tail = '';
  let partial = '';
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  const lines: string[] = [];
  const onData = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    tail = (tail + text).slice(-16_384);
    partial += text;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    if (partial.length > 65_536) partial = partial.slice(-65_536);
    for (const line of parts) {
      if (lines.length < 200) lines.push(line);
      for (let i = waiters.length - 1; i >= 0; i--) {
        const m = line.match(waiters[i]!.re);
        if (m) waiters.splice(i, 1)[0]!.resolve(m);
      }
    }
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  proc.stdin!.on('error', () => undefined);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => {
      exitCode = code;
      children.delete(child);
      resolve(code);
    });
    proc.once('error', () => {
      exitCode = null;
      children.delete(child);
      resolve(null);
    });
  });
  const child: Child = {
    name,
    proc,
    pid,
    exited,
    tail: () => tail,
    waitFor(re, timeoutMs) {
      for (const line of lines) {
        const m = line.match(re);
        if (m) return Promise.resolve(m);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no /${re.source}/ within ${timeoutMs} ms; output:\n${tail}`)), timeoutMs);
        waiters.push({ re, resolve: (m) => (clearTimeout(timer), resolve(m)) });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (code ${code}) before /${re.source}/; output:\n${tail}`));
        });
      });
    },
    async stop(graceMs = 3_000) {
      if (exitCode !== undefined) return;
      proc.stdin!.end();
      killGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      killGroup(pid, 'SIGKILL'); // leftovers in its group (e.g. nginx workers)
    },
  };
  children.add(child);
  return child;
}

/** Stops every child still running, newest first (clients before the servers they use). */
export async function stopAll(): Promise<void> {
  for (const child of [...children].reverse()) await child.stop();
}

/** Last resort on exit / Ctrl-C: SIGKILL every group we started. */
export function installCleanup(): void {
  process.once('exit', () => {
    for (const child of children) killGroup(child.pid, 'SIGKILL');
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      aborting = true;
      process.stderr.write(`\n${signal}: stopping ${children.size} child process(es)…\n`);
      const hard = setTimeout(() => process.exit(130), 5_000);
      void stopAll().finally(() => {
        clearTimeout(hard);
        process.exit(130);
      });
    });
  }
}

/** Runs a command to completion (bounded), returning its output. */
export function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(command, args, { env: options.env ?? process.env, timeout: options.timeoutMs ?? 30_000, encoding: 'utf8', input: options.input ?? '', maxBuffer: 16 * 1024 * 1024 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** Async variant for long runs (wrk) so the event loop stays free. */
export function runAsync(command: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = start(command, command, args, env ? { env } : {});
    let stdout = '';
    child.proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    const timer = setTimeout(() => void child.stop(1_000), timeoutMs);
    void child.exited.then((code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr: child.tail() });
    });
  });
}

export function which(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = `${dir}/${tool}`;
    if (existsSync(p)) return p;
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** True when something LISTENs on 127.0.0.1:port (read from /proc, so nothing is connected to it). */
export function isListening(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && f[1]?.endsWith(`:${hex}`)) return true;
    }
  }
  return false;
}

export async function waitListening(port: number, timeoutMs: number, what: string, child?: Child): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (isListening(port)) return;
    await sleep(50);
  }
  throw new Error(`${what}: port ${port} not listening after ${timeoutMs} ms${child ? `; output:\n${child.tail()}` : ''}`);
}

/** VmRSS of a process in KiB. */
export function rssKiB(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** Median of `samples` RSS readings spread over `spanMs`. */
export async function settledRss(pid: number, samples = 5, spanMs = 2_000): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < samples; i++) {
    values.push(rssKiB(pid));
    if (i < samples - 1) await sleep(spanMs / (samples - 1));
  }
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)]!;
}

/** Soft and hard RLIMIT_NOFILE as seen by children. */
export function nofileLimits(): { soft: number; hard: number } {
  const r = run('sh', ['-c', 'ulimit -Sn; ulimit -Hn']);
  const [soft, hard] = r.stdout.trim().split('\n').map((v) => (v.trim() === 'unlimited' ? 1 << 20 : Number(v)));
  return { soft: soft ?? 1024, hard: hard ?? 1024 };
}

const FIXTURE = new URL('./fixture.js', import.meta.url).pathname;

/** Starts a bench/fixture.ts helper and waits for its "ready <port>". */
export async function fixture(kind: string, args: (string | number)[], raiseNofile = false, nodeArgs: string[] = []): Promise<{ child: Child; port: number }> {
  const child = start(`fixture ${kind}`, process.execPath, [...nodeArgs, FIXTURE, kind, ...args.map(String)], { raiseNofile });
  const m = await child.waitFor(/^ready (\d+)/, 15_000);
  return { child, port: Number(m[1]) };
}

/** User + system CPU seconds a process has used so far (/proc/<pid>/stat, clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
