// Two "hosts" for tests as Linux network namespaces joined by a veth pair (10.77.0.1/24 and
// 10.77.0.2/24), each with its own loopback; commands run inside with `ip netns exec`. Needs root
// and iproute2: skipped with the reason locally, a failure in CI. Names carry this test process's
// pid, so leftovers of a crashed run are recognised (their pid is gone) and removed at start,
// without touching a run that is still going.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { CLI, Managed, baseEnv } from './processes.js';
import type { CliResult } from './processes.js';
import { withTimeout } from './util.js';

const PREFIX = 'postern-t';
const namespacePattern = new RegExp(`^${PREFIX}(\\d+)-[ab]$`);
// Interface names have at most 15 characters: "pt<pid>a".
const linkPattern = /^pt(\d+)[ab]$/;
const SUBNET = '10.77.0';

function missing(): string | false {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (spawnSync('ip', ['-V'], { stdio: 'ignore' }).status !== 0) return 'no `ip` command (apt-get install iproute2)';
  return false;
}

/** Skip locally without root or `ip` (with the reason shown); in CI the test runs and fails. */
export const needsNetns = { skip: process.env.CI === 'true' ? false : missing() } as const;

/** Runs `ip` with arguments, bounded; rejects with its stderr. */
export function ip(args: readonly string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

export interface NetnsHost {
  /** The namespace's name (for `ip netns exec`). */
  readonly namespace: string;
  /** Its address on the veth link. */
  readonly address: string;
  /** Starts `command` inside the namespace, its output kept; killed by `cleanupAll()` or the hosts' cleanup. */
  spawn(name: string, command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Managed;
  /** Starts the `postern` CLI inside the namespace. */
  spawnCli(name: string, args: readonly string[], env?: NodeJS.ProcessEnv): Managed;
  /** Runs `command` inside the namespace to completion (killed after `timeoutMs`). */
  run(command: string, args: readonly string[], options?: { env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliResult>;
}

export interface TwoHosts {
  readonly a: NetnsHost;
  readonly b: NetnsHost;
  /** Kills what runs inside and deletes both namespaces (the veth ends go with them). Idempotent. */
  cleanup(): Promise<void>;
}

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Kills the processes left inside a namespace (they keep it alive after `ip netns del`). */
async function killInside(namespace: string): Promise<void> {
  const pids = (await ip(['netns', 'pids', namespace]).catch(() => '')).split('\n').filter((line) => /^\d+$/.test(line)).map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Exited on its own meanwhile.
    }
  }
}

async function deleteNamespace(namespace: string): Promise<void> {
  await killInside(namespace);
  await ip(['netns', 'del', namespace]).catch((err: unknown) => {
    if (!/No such file|not found|Invalid/.test(String(err))) throw err;
  });
}

const ownedByDeadRun = (pattern: RegExp) => (name: string) => {
  const match = pattern.exec(name);
  return match !== null && !pidAlive(Number(match[1]));
};

/** Removes namespaces and stray root-namespace links of earlier runs whose test process is gone. */
export async function removeLeftovers(): Promise<string[]> {
  const namespaces = (await ip(['netns', 'list'])).split('\n').map((line) => line.split(' ')[0] ?? '').filter(ownedByDeadRun(namespacePattern));
  const links = (await ip(['-o', 'link', 'show'])).split('\n')
    .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '').filter(ownedByDeadRun(linkPattern));
  for (const namespace of namespaces) await deleteNamespace(namespace);
  for (const link of links) await ip(['link', 'del', link]).catch(() => undefined);
  return [...namespaces, ...links];
}

/** Our namespaces and links still present (for a test that cleanup left nothing behind). */
export async function ourLeftovers(pid = process.pid): Promise<string[]> {
  const namespaces = (await ip(['netns', 'list'])).split('\n').map((line) => line.split(' ')[0] ?? '').filter((name) => name.startsWith(`${PREFIX}${pid}-`));
  const links = (await ip(['-o', 'link', 'show'])).split('\n').map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '').filter((name) => name === `pt${pid}a` || name === `pt${pid}b`);
  return [...namespaces, ...links];
}

function host(namespace: string, address: string): NetnsHost {
  const start = (name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = baseEnv()) =>
    new Managed(name, spawn('ip', ['netns', 'exec', namespace, command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  return {
    namespace,
    address,
    spawn: start,
    spawnCli: (name, args, env) => start(name, process.execPath, [CLI, ...args], env),
    async run(command, args, options = {}) {
      const managed = start(`${namespace}: ${command}`, command, args, options.env);
      try {
        const { code } = await withTimeout(managed.exited, options.timeoutMs ?? 30_000, `${command} in ${namespace}`);
        return { code, stdout: managed.stdout, stderr: managed.stderr };
      } finally {
        await managed.stop('SIGKILL');
      }
    },
  };
}

/** Creates hosts A (10.77.0.1) and B (10.77.0.2), removing a crashed run's leftovers first. */
export async function createTwoHosts(): Promise<TwoHosts> {
  const why = missing();
  if (why) throw new Error(`cannot create test hosts: ${why}`);
  await removeLeftovers();
  const [nsA, nsB] = [`${PREFIX}${process.pid}-a`, `${PREFIX}${process.pid}-b`];
  const [linkA, linkB] = [`pt${process.pid}a`, `pt${process.pid}b`];
  const cleanup = async () => {
    await deleteNamespace(nsA);
    await deleteNamespace(nsB);
  };
  try {
    await ip(['netns', 'add', nsA]);
    await ip(['netns', 'add', nsB]);
    // Created with each end already inside its namespace: no moment where a link sits in the root namespace.
    await ip(['link', 'add', 'name', linkA, 'netns', nsA, 'type', 'veth', 'peer', 'name', linkB, 'netns', nsB]);
    for (const [namespace, link, address] of [[nsA, linkA, `${SUBNET}.1`], [nsB, linkB, `${SUBNET}.2`]] as const) {
      await ip(['-n', namespace, 'link', 'set', 'lo', 'up']);
      await ip(['-n', namespace, 'addr', 'add', `${address}/24`, 'dev', link]);
      await ip(['-n', namespace, 'link', 'set', link, 'up']);
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { a: host(nsA, `${SUBNET}.1`), b: host(nsB, `${SUBNET}.2`), cleanup };
}

/**
 * Makes a root-namespace port (the test's server on 127.0.0.1) reachable inside `host` at the same
 * 127.0.0.1 port, so an agent there uses the server's usual URL. Unix sockets are not namespaced:
 * the root side listens on one and dials the port; the host side forwards its port to the socket.
 */
export async function bridgeToRoot(target: NetnsHost, port: number, socketPath: string): Promise<{ close(): Promise<void> }> {
  const root = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => root.once('error', reject).listen(socketPath, resolve));
  const script = `const net = require('net');
net.createServer((c) => { const u = net.connect(process.argv[2]); c.pipe(u).pipe(c); c.on('error', () => u.destroy()); u.on('error', () => c.destroy()); })
  .listen(Number(process.argv[1]), '127.0.0.1', () => console.log('bridged'));`;
  const inside = target.spawn(`bridge :${port} into ${target.namespace}`, process.execPath, ['-e', script, String(port), socketPath]);
  await inside.waitForOutput(/bridged/, { timeoutMs: 10_000 });
  return {
    async close() {
      await inside.stop('SIGKILL');
      await new Promise<void>((resolve) => root.close(() => resolve()));
    },
  };
}
