// Small shared test utilities: free ports, temp dirs with cleanup, bounded polling and timeouts.
import net from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Both ends of one TCP connection on 127.0.0.1: [accepted, dialed]. */
export async function socketPair(options: { allowHalfOpen?: boolean } = {}): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen: options.allowHalfOpen ?? false });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const dialed = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: options.allowHalfOpen ?? false });
  const [[acceptedEnd]] = await Promise.all([accepted, once(dialed, 'connect')]);
  server.close();
  return [acceptedEnd, dialed];
}

/** A TCP port that was free on 127.0.0.1 a moment ago (the OS picked it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const tempDirs = new Set<string>();

export interface TempDir {
  readonly path: string;
  cleanup(): Promise<void>;
}

/** A fresh directory under the OS temp dir; `cleanupTempDirs()` removes every one not yet removed. */
export async function tempDir(prefix = 'postern-e2e-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.add(path);
  return {
    path,
    cleanup: async () => {
      tempDirs.delete(path);
      await rm(path, { recursive: true, force: true });
    },
  };
}

export async function cleanupTempDirs(): Promise<void> {
  const all = [...tempDirs];
  tempDirs.clear();
  await Promise.all(all.map((path) => rm(path, { recursive: true, force: true })));
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Named in the timeout error. */
  what?: string;
}

/**
 * Polls `fn` until it returns something other than undefined/false (a thrown error counts as
 * "not yet"); bounded by `timeoutMs`, after which it throws with the last result or error.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, options: WaitOptions = {}): Promise<Exclude<T, undefined | false>> {
  const { timeoutMs = 10_000, intervalMs = 100, what = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let attempt = 0; ; attempt++) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value as Exclude<T, undefined | false>;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms (${attempt + 1} attempts) waiting for ${what}; last: ${detail}`);
    }
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/** Rejects when `promise` has not settled within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
