// Spawns the real `postern` CLI (server, connectors, one-shot commands) as child processes;
// every child is registered and killed by `cleanupAll()` (and SIGKILLed if the test process exits).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { cleanupTempDirs, freePort, tempDir, waitFor, withTimeout } from './util.js';
import type { AuditEvent } from '../../src/reporting/events.js';

/** The compiled CLI entry point, next to the compiled tests (dist/test/helpers → dist/src/cli). */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const live = new Set<Managed>();
const killLive = () => {
  for (const managed of live) managed.child.kill('SIGKILL');
};
process.on('exit', killLive);
// A test process stopped by a signal does not emit 'exit': kill the children, then let the signal take its course.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killLive();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

/** The test's environment minus anything that could point a child at a real server, proxy or home dir. */
export function baseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('POSTERN_') || key.startsWith('NODE_TEST') || /^(https?|all|no)_proxy$/i.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One child process with its output kept in memory. */
export class Managed {
  stdout = '';
  stderr = '';
  private done = false;
  private readonly waiters: (() => void)[] = [];
  readonly exited: Promise<Exit>;

  constructor(readonly name: string, readonly child: ChildProcess) {
    live.add(this);
    child.stdout?.setEncoding('utf8').on('data', (text: string) => ((this.stdout += text), this.notify()));
    child.stderr?.setEncoding('utf8').on('data', (text: string) => ((this.stderr += text), this.notify()));
    child.on('error', (err) => (this.stderr += `\n[spawn error] ${err.message}\n`));
    this.exited = new Promise((resolve) => child.once('close', (code, signal) => {
      this.done = true;
      live.delete(this);
      this.notify();
      resolve({ code, signal });
    }));
  }

  get running(): boolean {
    return !this.done;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Last lines of stderr, for failure messages. */
  tail(lines = 15): string {
    return this.stderr.trimEnd().split('\n').slice(-lines).join('\n');
  }

  private notify(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Waits (bounded, woken by output) until `pattern` appears in stdout or stderr. */
  async waitForOutput(pattern: RegExp, options: { stream?: 'stdout' | 'stderr'; timeoutMs?: number } = {}): Promise<RegExpMatchArray> {
    const { stream = 'stdout', timeoutMs = 20_000 } = options;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = (stream === 'stdout' ? this.stdout : this.stderr).match(pattern);
      if (match) return match;
      if (this.done) throw new Error(`${this.name} exited before printing ${pattern} on ${stream}\nstdout: ${this.stdout.trim()}\nstderr: ${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${pattern} from ${this.name}\nstdout: ${this.stdout.trim()}\nstderr: ${this.tail()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  /** Sends `signal`, then SIGKILL if the process is still there after `graceMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<Exit> {
    if (this.done) return this.exited;
    this.child.kill(signal);
    try {
      return await withTimeout(this.exited, graceMs, `${this.name} to exit on ${signal}`);
    } catch {
      this.child.kill('SIGKILL');
      return this.exited;
    }
  }
}

export function spawnCli(name: string, args: readonly string[], env: NodeJS.ProcessEnv): Managed {
  return new Managed(name, spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one CLI command to completion (killed after `timeoutMs`). */
export async function runCli(args: readonly string[], env: NodeJS.ProcessEnv = baseEnv(), timeoutMs = 30_000): Promise<CliResult> {
  const managed = spawnCli(`postern ${args.slice(0, 3).join(' ')}`, args, env);
  try {
    const { code } = await withTimeout(managed.exited, timeoutMs, `postern ${args.join(' ')}`);
    return { code, stdout: managed.stdout, stderr: managed.stderr };
  } finally {
    await managed.stop('SIGKILL');
  }
}

export interface ServerHandle {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly caFile: string;
  readonly caPem: string;
  readonly adminToken: string;
  /** Environment for CLI commands against this server (finds it through POSTERN_DATA_DIR). */
  readonly env: NodeJS.ProcessEnv;
  readonly process: Managed;
  stop(signal?: NodeJS.Signals): Promise<Exit>;
  logs(): string;
  cli(args: readonly string[], extraEnv?: NodeJS.ProcessEnv): Promise<CliResult>;
}

export interface StartServerOptions {
  port?: number;
  dataDir?: string;
  extraArgs?: readonly string[];
  timeoutMs?: number;
}

/** `postern server --listen 127.0.0.1:PORT`, ready once it printed "Postern is running at …". */
export async function startServer(options: StartServerOptions = {}): Promise<ServerHandle> {
  const port = options.port ?? await freePort();
  const dataDir = options.dataDir ?? (await tempDir('postern-e2e-data-')).path;
  const configDir = join(dataDir, 'client-config');
  const env = baseEnv({ POSTERN_DATA_DIR: dataDir, POSTERN_CONFIG_DIR: configDir, XDG_DATA_HOME: configDir, XDG_CONFIG_HOME: configDir });
  const managed = spawnCli(`server :${port}`, ['server', '--listen', `127.0.0.1:${port}`, ...(options.extraArgs ?? [])], env);
  let url: string;
  try {
    url = (await managed.waitForOutput(/Postern is running at (https:\/\/\S+)/, { timeoutMs: options.timeoutMs ?? 20_000 }))[1]!;
  } catch (err) {
    await managed.stop('SIGKILL');
    throw err;
  }
  const caFile = join(dataDir, 'ca.pem');
  const [caPem, adminToken] = await Promise.all([readFile(caFile, 'utf8'), readFile(join(dataDir, 'admin.token'), 'utf8')]);
  return {
    url, port, dataDir, caFile, caPem, adminToken: adminToken.trim(), env, process: managed,
    stop: (signal = 'SIGTERM') => managed.stop(signal),
    logs: () => managed.stderr,
    cli: (args, extraEnv = {}) => runCli(args, { ...env, ...extraEnv }),
  };
}

export interface ConnectorHandle {
  readonly id: string;
  readonly process: Managed;
  stop(signal?: NodeJS.Signals): Promise<Exit>;
  logs(): string;
}

/** Spawns `connector start --config …` or `connect …` (pass the args) and waits for "is connected". */
export async function startConnector(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 20_000): Promise<ConnectorHandle> {
  const managed = spawnCli(`connector ${args.slice(0, 3).join(' ')}`, args, env);
  let id: string;
  try {
    id = (await managed.waitForOutput(/connector (\S+) is connected/, { timeoutMs }))[1]!;
  } catch (err) {
    await managed.stop('SIGKILL');
    throw err;
  }
  return { id, process: managed, stop: (signal = 'SIGTERM') => managed.stop(signal), logs: () => managed.stderr };
}

export interface ConnectorYaml {
  server: string;
  credentials?: string;
  token?: string;
  connections?: number;
  proxy?: string;
  sockets: { name: string; type?: 'http' | 'https' | 'tls' | 'ssh' | 'postgres'; upstream: string; postgres?: PostgresLoginYaml }[];
}

/** How a connector logs in to a postgres upstream (src/connector/config.ts). */
export interface PostgresLoginCredentialsYaml {
  password_env?: string;
  password_file?: string;
  cert?: string;
  key?: string;
  ca?: string;
  verify?: 'full' | 'ca';
}

export interface PostgresLoginYaml extends PostgresLoginCredentialsYaml {
  user: string;
  roles?: Record<string, PostgresLoginCredentialsYaml>;
}

/** Writes a connector YAML file into `dir` (credentials default to ./<file>.creds.json beside it). */
export async function writeConnectorConfig(dir: string, file: string, config: ConnectorYaml): Promise<string> {
  const path = join(dir, file);
  await writeFile(path, stringify({ credentials: `./${file}.creds.json`, ...config }));
  return path;
}

/** Kills every child still running (SIGKILL after a short grace) and removes temp dirs. */
export async function cleanupAll(): Promise<void> {
  await Promise.all([...live].map((managed) => managed.stop('SIGTERM', 3_000)));
  await cleanupTempDirs();
}

/** Audit events through the real CLI (`postern audit search --json` with these filters). */
export async function auditEvents(server: ServerHandle, filters: readonly string[]): Promise<AuditEvent[]> {
  const result = await server.cli(['audit', 'search', '--json', '--limit', '1000', ...filters]);
  if (result.code !== 0) throw new Error(`postern audit search failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as AuditEvent[];
}

/** Waits (bounded) for an audit event matching `filters` and `test`. */
export function waitForAudit(server: ServerHandle, filters: readonly string[], test: (event: AuditEvent) => boolean, what: string): Promise<AuditEvent> {
  return waitFor(async () => (await auditEvents(server, filters)).find(test), { what, timeoutMs: 10_000, intervalMs: 250 });
}
