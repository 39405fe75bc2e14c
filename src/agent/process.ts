// Which local process is on the other end of a connection the agent accepted: the socket's inode
// from /proc/net/{tcp,tcp6} (or, for a Unix socket, its peer's inode from sock_diag via `ss`),
// the process(es) whose /proc/<pid>/fd link to it, then their executable, uid and the exe's sha256.
// Linux only. Parsers are pure; the I/O is a thin layer under them.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readFile, readdir, readlink, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import type { Socket } from 'node:net';
import { PosternError } from '../errors.js';

// ---- pure parsers -------------------------------------------------------------------------------

/** Kernel TCP states (include/net/tcp_states.h), as /proc/net/tcp prints them in hex. */
const tcpStates: Record<string, string> = {
  '01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '06': 'TIME_WAIT',
  '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING', '0C': 'NEW_SYN_RECV',
};

export interface TcpSocketEntry {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  state: string;
  /** The socket's owner (the creator's fsuid), known even when its process's /proc is unreadable. */
  uid: number;
  /** 0 for sockets no file refers to any more (TIME_WAIT, orphans). */
  inode: number;
  /** From `ss -p`: the (pid, fd) pairs it says hold the socket; to be checked, never believed (a process name is free text). */
  holders?: { pid: number; fd: number }[];
}

/** An address in one spelling, so `::ffff:127.0.0.1`, `::FFFF:7f00:1` and `127.0.0.1` compare equal. */
export function canonicalAddress(address: string): string {
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) throw new PosternError('bad_request', `not an IP address: ${JSON.stringify(address)}`);
  const host = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!mapped) return host;
  const [high, low] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
}

/** "0100007F" (IPv4, host byte order on little-endian) or 32 hex digits (four such words). */
export function decodeProcAddress(hex: string): string {
  if (!/^([0-9A-Fa-f]{8}){1,4}$/.test(hex) || (hex.length !== 8 && hex.length !== 32)) {
    throw new PosternError('bad_request', `not a /proc/net address: ${JSON.stringify(hex)}`);
  }
  const words = hex.match(/.{8}/g)!.map((word) => word.match(/../g)!.reverse().join(''));
  if (words.length === 1) return words[0]!.match(/../g)!.map((byte) => parseInt(byte, 16)).join('.');
  const groups = words.flatMap((word) => [word.slice(0, 4), word.slice(4)]);
  return canonicalAddress(groups.join(':'));
}

/** The rows of /proc/net/tcp or /proc/net/tcp6 (header skipped, malformed rows refused). */
export function parseProcNetTcp(text: string): TcpSocketEntry[] {
  const entries: TcpSocketEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const [, local, remote, state, , , , uid, , inode] = fields as [string, string, string, string, string, string, string, string, string, string];
    const [localHex, localPortHex] = local.split(':') as [string, string];
    const [remoteHex, remotePortHex] = remote.split(':') as [string, string];
    entries.push({
      localAddress: decodeProcAddress(localHex), localPort: parseInt(localPortHex, 16),
      remoteAddress: decodeProcAddress(remoteHex), remotePort: parseInt(remotePortHex, 16),
      state: tcpStates[state.toUpperCase()] ?? `UNKNOWN_${state}`, uid: Number(uid), inode: Number(inode),
    });
  }
  return entries;
}

export interface ConnectionSelector {
  /** The port of the socket that opened the connection, as that process sees it (the agent's `socket.remotePort`). */
  localPort: number;
  /** The port it connected to (the agent's `socket.localPort`). */
  remotePort: number;
  localAddress?: string;
  remoteAddress?: string;
}

/** The live socket (some file still refers to it, not a listener) matching the selector. */
export function findTcpSocket(entries: readonly TcpSocketEntry[], selector: ConnectionSelector): TcpSocketEntry[] {
  const local = selector.localAddress === undefined ? undefined : canonicalAddress(selector.localAddress);
  const remote = selector.remoteAddress === undefined ? undefined : canonicalAddress(selector.remoteAddress);
  return entries.filter((entry) => entry.inode !== 0 && entry.state !== 'LISTEN'
    && entry.localPort === selector.localPort && entry.remotePort === selector.remotePort
    && (local === undefined || entry.localAddress === local) && (remote === undefined || entry.remoteAddress === remote));
}

/** The inode of an fd link such as "socket:[485654]"; undefined for anything else. */
export function socketInodeOfLink(link: string): number | undefined {
  const match = /^socket:\[(\d+)\]$/.exec(link);
  return match ? Number(match[1]) : undefined;
}

export interface ProcessIds {
  uid: number;
  realUid: number;
  gid: number;
  realGid: number;
}

/** Effective and real ids from /proc/<pid>/status ("Uid:\treal\teffective\tsaved\tfs"). */
export function parseProcStatusIds(text: string): ProcessIds {
  const ids = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)\\s*$`, 'm').exec(text);
    if (!match) throw new PosternError('internal', `/proc status has no ${name} line`);
    return { real: Number(match[1]), effective: Number(match[2]) };
  };
  const uid = ids('Uid');
  const gid = ids('Gid');
  return { uid: uid.effective, realUid: uid.real, gid: gid.effective, realGid: gid.real };
}

/** The readlink of /proc/<pid>/exe, with the kernel's " (deleted)" suffix split off. */
export function parseExeLink(target: string): { path: string; deletedSuffix: boolean } {
  const suffix = ' (deleted)';
  return target.endsWith(suffix) ? { path: target.slice(0, -suffix.length), deletedSuffix: true } : { path: target, deletedSuffix: false };
}

export interface UnixSocketPair {
  inode: number;
  peerInode: number;
}

/**
 * The (inode, peer inode) pairs of `ss -xnH` output. `ss` prints socket names raw, so a name with
 * a newline can forge a line: callers must treat more than one pair for an inode as ambiguous.
 * Over netlink the peer's name is always "*", which makes a line end "<inode> * <peer inode>".
 */
export function parseSsUnixPairs(text: string): UnixSocketPair[] {
  const pairs: UnixSocketPair[] = [];
  for (const line of text.split('\n')) {
    const match = /\s(\d+)\s+\*\s+(\d+)\s*$/.exec(line);
    if (match) pairs.push({ inode: Number(match[1]), peerInode: Number(match[2]) });
  }
  return pairs;
}

/** The peer of `inode`, only when exactly one line says so and exactly one says the reverse. */
export function unixPeerInode(pairs: readonly UnixSocketPair[], inode: number): number {
  const ours = pairs.filter((pair) => pair.inode === inode);
  if (ours.length !== 1 || ours[0]!.peerInode === 0) {
    throw new PosternError('identity_invalid', `unix socket ${inode}: ${ours.length === 0 ? 'not listed' : ours.length > 1 ? 'listed more than once (a forged socket name?)' : 'has no peer'}`);
  }
  const peer = ours[0]!.peerInode;
  const reverse = pairs.filter((pair) => pair.inode === peer);
  if (reverse.length !== 1 || reverse[0]!.peerInode !== inode) {
    throw new PosternError('identity_invalid', `unix socket ${inode}: its peer ${peer} is not listed exactly once as connected back`);
  }
  return peer;
}

export interface HolderFacts {
  pid: number;
  exe: string;
  exeDeleted: boolean;
  ids: ProcessIds;
}

/** One identity for a socket: every process holding it must agree on executable and ids (fork without exec, prefork workers); otherwise none. */
export function agreeingHolder(holders: readonly HolderFacts[], what: string): HolderFacts {
  const [first] = [...holders].sort((a, b) => a.pid - b.pid);
  if (!first) throw new PosternError('not_found', `${what}: no process holds it`);
  const differs = holders.find((h) => h.exe !== first.exe || h.exeDeleted !== first.exeDeleted || h.ids.uid !== first.ids.uid || h.ids.gid !== first.ids.gid);
  if (differs) {
    throw new PosternError('identity_invalid', `${what}: held by processes that differ (pid ${first.pid} ${first.exe} uid ${first.ids.uid}, pid ${differs.pid} ${differs.exe} uid ${differs.ids.uid})`);
  }
  return first;
}

// ---- /proc I/O ----------------------------------------------------------------------------------

export interface LocalProcess {
  /** The lowest pid of the processes holding the socket (all of them agree on exe and ids). */
  pid: number;
  /** Every process holding the socket. */
  pids: number[];
  /** The executable's path; for a deleted (e.g. upgraded) binary, the path it had. */
  exe: string;
  exeDeleted: boolean;
  uid: number;
  realUid: number;
  gid: number;
  realGid: number;
  /** Hex sha256 of the executable the process runs (read through /proc/<pid>/exe, so the file it actually mapped). */
  sha256?: string;
}

export interface ProcessLookupOptions {
  /** Where procfs is mounted. */
  procRoot?: string;
  /** Hash the executable with this (shared, cached) hasher. */
  hasher?: ExecutableHasher;
  /** Stop walking /proc after this long; a host with many processes should not stall a connection forever. */
  timeoutMs?: number;
}

const gone = (err: unknown) => {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ESRCH' || code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR';
};

/** `127.0.0.1:5432`, `[::1]:5432` as ss prints them. */
function splitSsAddress(text: string): { address: string; port: number } | undefined {
  const colon = text.lastIndexOf(':');
  const port = Number(text.slice(colon + 1));
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1').replace(/%[^%]*$/, '');
  if (colon < 1 || !Number.isInteger(port) || port < 0 || port > 65535) return undefined;
  try {
    return { address: canonicalAddress(host), port };
  } catch {
    return undefined;
  }
}

/** The rows of `ss -t -n -e -p -H state …` (`0 0 127.0.0.1:5 127.0.0.1:7 users:(("node",pid=9,fd=3)) uid:0 ino:12 …`); rows without an inode are skipped. */
export function parseSsTcp(text: string): TcpSocketEntry[] {
  const entries: TcpSocketEntry[] = [];
  for (const line of text.split('\n')) {
    const all = line.trim().split(/\s+/);
    // With several states asked for, ss prints the state first (ESTAB, FIN-WAIT-2, …).
    const fields = /^\d+$/.test(all[0] ?? '') ? all : all.slice(1);
    if (fields.length < 5) continue;
    const local = splitSsAddress(fields[2]!);
    const remote = splitSsAddress(fields[3]!);
    const inode = Number(/(?:^|\s)ino:(\d+)/.exec(line)?.[1]);
    const uid = Number(/(?:^|\s)uid:(\d+)/.exec(line)?.[1] ?? 0);
    if (!local || !remote || !Number.isInteger(inode) || inode <= 0) continue;
    const holders = [...line.matchAll(/pid=(\d+),fd=(\d+)/g)].map((m) => ({ pid: Number(m[1]), fd: Number(m[2]) }));
    entries.push({ localAddress: local.address, localPort: local.port, remoteAddress: remote.address, remotePort: remote.port, state: /^\d+$/.test(all[0] ?? '') ? 'ESTABLISHED' : all[0]!, uid, inode, ...(holders.length > 0 ? { holders } : {}) });
  }
  return entries;
}

function requireLinux(): void {
  if (process.platform !== 'linux') {
    throw new PosternError('config_invalid', `finding the process behind a connection needs Linux /proc (this is ${process.platform})`);
  }
}

/**
 * The pids whose fd table holds socket `inode`. All processes are walked (not the first hit), so a
 * socket shared after fork is seen as shared. Processes that exit mid-walk, or whose fds we may
 * not read (not root), are skipped.
 */
export async function socketHolders(inode: number, options: ProcessLookupOptions = {}): Promise<number[]> {
  const procRoot = options.procRoot ?? '/proc';
  const deadline = Date.now() + (options.timeoutMs ?? 2_000);
  const target = `socket:[${inode}]`;
  const pids = (await readdir(procRoot)).filter((name) => /^\d+$/.test(name));
  const holders: number[] = [];
  const walkOne = async (pid: string) => {
    const fdDir = `${procRoot}/${pid}/fd`;
    const fds = await readdir(fdDir).catch((err: unknown) => (gone(err) ? [] : Promise.reject(err)));
    // All of a process's links at once: one at a time, a process with a thousand fds costs a thousand thread-pool round trips in a row.
    const links = await Promise.all(fds.map((fd) => readlink(`${fdDir}/${fd}`).catch((err: unknown) => (gone(err) ? '' : Promise.reject(err)))));
    if (links.includes(target)) holders.push(Number(pid));
  };
  // A few at a time: enough to overlap the syscalls, not so many that a big host floods the thread pool.
  const parallel = 8;
  for (let i = 0; i < pids.length; i += parallel) {
    if (Date.now() > deadline) throw new PosternError('request_timeout', `walking ${procRoot} for socket ${inode} took longer than ${options.timeoutMs ?? 2_000} ms`, { retryable: true });
    await Promise.all(pids.slice(i, i + parallel).map(walkOne));
  }
  return holders.sort((a, b) => a - b);
}

async function holderFacts(pid: number, procRoot: string): Promise<HolderFacts | undefined> {
  try {
    const [link, status, exeStat] = await Promise.all([
      readlink(`${procRoot}/${pid}/exe`), readFile(`${procRoot}/${pid}/status`, 'utf8'), stat(`${procRoot}/${pid}/exe`),
    ]);
    const { path, deletedSuffix } = parseExeLink(link);
    // A real file name may end in " (deleted)": it is deleted only if that name no longer leads to the running file.
    const exeDeleted = deletedSuffix && !(await stat(link).then((s) => sameFile(s, exeStat), () => false));
    return { pid, exe: exeDeleted ? path : link, exeDeleted, ids: parseProcStatusIds(status) };
  } catch (err) {
    if (gone(err)) return undefined;
    throw err;
  }
}

const sameFile = (a: Stats, b: Stats) => a.dev === b.dev && a.ino === b.ino;

/**
 * The holders `ss -p` reported, each checked in /proc (its fd must be this socket): a process can
 * name itself `x",pid=1,fd=3` to add a line, so one that does not check out refuses the lookup.
 * Without a report, the whole /proc walk.
 */
async function checkedHolders(inode: number, reported: readonly { pid: number; fd: number }[] | undefined, options: ProcessLookupOptions): Promise<number[]> {
  if (!reported) return socketHolders(inode, options);
  const procRoot = options.procRoot ?? '/proc';
  const links = await Promise.all(reported.map(({ pid, fd }) => readlink(`${procRoot}/${pid}/fd/${fd}`).catch(() => '')));
  if (links.some((link) => link !== `socket:[${inode}]`)) throw new PosternError('identity_invalid', `socket ${inode}: ss reported holders that do not hold it`);
  return [...new Set(reported.map((r) => r.pid))].sort((a, b) => a - b);
}

async function describeHolders(inode: number, what: string, options: ProcessLookupOptions, reported?: readonly { pid: number; fd: number }[]): Promise<LocalProcess> {
  const procRoot = options.procRoot ?? '/proc';
  const pids = await checkedHolders(inode, reported, options);
  if (pids.length === 0) {
    const hint = process.getuid?.() === 0 ? '' : ' (not root: other users\' processes are not readable)';
    throw new PosternError('not_found', `${what}: no process holds socket ${inode}${hint}`);
  }
  const facts = (await Promise.all(pids.map((pid) => holderFacts(pid, procRoot)))).filter((f): f is HolderFacts => f !== undefined);
  const holder = agreeingHolder(facts, what);
  const sha256 = options.hasher ? await options.hasher.hashOf(`${procRoot}/${holder.pid}/exe`) : undefined;
  return {
    pid: holder.pid, pids: facts.map((f) => f.pid), exe: holder.exe, exeDeleted: holder.exeDeleted, ...holder.ids,
    ...(sha256 === undefined ? {} : { sha256 }),
  };
}

/**
 * The connected TCP sockets from `localPort` to `remotePort`: asked of the kernel with a filter
 * (`ss`, sock_diag), so the cost does not grow with the host's other sockets — /proc/net/tcp lists
 * every one, TIME_WAIT included, and a busy host has tens of thousands. Without iproute2, or with a
 * custom proc root (tests), the /proc tables are read instead.
 */
async function tcpSockets(localPort: number, remotePort: number, procRoot: string, options: ProcessLookupOptions): Promise<TcpSocketEntry[]> {
  if (procRoot === '/proc') {
    const filtered = await new Promise<string | undefined>((resolve, reject) => {
      // Connected, not only established: a caller that wrote and half-closed at once is in FIN-WAIT by now.
      execFile('ss', ['-t', '-n', '-e', '-p', '-H', 'state', 'connected', `( sport = :${localPort} and dport = :${remotePort} )`], { timeout: options.timeoutMs ?? 2_000 }, (err, stdout) => {
        if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') resolve(undefined);
        else if (err) reject(new PosternError('internal', `ss -t (iproute2) failed: ${err.message}`, { cause: err }));
        else resolve(stdout);
      });
    });
    if (filtered !== undefined) return parseSsTcp(filtered);
  }
  const tables = await Promise.all(['tcp', 'tcp6'].map((name) => readFile(`${procRoot}/net/${name}`, 'utf8').catch((err: unknown) => (gone(err) ? '' : Promise.reject(err)))));
  return tables.flatMap(parseProcNetTcp);
}

/** The process that opened a TCP connection on this host (in this network namespace). */
export async function processOfLocalConnection(localPort: number, remotePort: number, options: Omit<ConnectionSelector, 'localPort' | 'remotePort'> & ProcessLookupOptions = {}): Promise<LocalProcess> {
  requireLinux();
  const procRoot = options.procRoot ?? '/proc';
  const selector = { localPort, remotePort, ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }), ...(options.remoteAddress === undefined ? {} : { remoteAddress: options.remoteAddress }) };
  const what = `connection ${options.localAddress ?? '*'}:${localPort} → ${options.remoteAddress ?? '*'}:${remotePort}`;
  const matches = findTcpSocket(await tcpSockets(localPort, remotePort, procRoot, options), selector);
  if (matches.length === 0) throw new PosternError('not_found', `${what}: no such socket in ${procRoot}/net/tcp{,6}`);
  if (matches.length > 1) throw new PosternError('identity_invalid', `${what}: ${matches.length} sockets match; give the addresses`);
  return describeHolders(matches[0]!.inode, what, options, matches[0]!.holders);
}

/** The inode of a connected socket of this process (Node keeps the fd on its handle, unexposed in the types). */
export async function socketInode(socket: Socket, procRoot = '/proc'): Promise<number> {
  requireLinux();
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new PosternError('internal', 'the socket has no file descriptor (closed, or not a kernel socket)');
  const inode = socketInodeOfLink(await readlink(`${procRoot}/self/fd/${fd}`));
  if (inode === undefined) throw new PosternError('internal', `fd ${fd} is not a socket`);
  return inode;
}

export interface UnixPeerOptions extends ProcessLookupOptions {
  /** The `ss` binary (iproute2). */
  ss?: string;
}

/**
 * The process on the other end of a Unix stream socket this process accepted.
 *
 * What this kernel offers, and why it is done this way: /proc/net/unix lists inodes and bound
 * names but no peers (a client socket is usually unbound, its line has no path, and the inodes of a
 * pair are merely often adjacent: not evidence). SO_PEERCRED and SCM_CREDENTIALS would be the
 * right tools, but Node exposes neither, and it cannot open a sock_diag netlink socket either. The
 * kernel does report the peer inode over sock_diag (UNIX_DIAG_PEER), which `ss -x` prints; the
 * rest is the same /proc fd walk as for TCP.
 *
 * Limits: it needs iproute2 and costs one `ss` run (a dump of every Unix socket in the network
 * namespace) per connection: fine for a Workload API handshake, not for a data path. It reports who
 * holds the peer socket *now*, not who called connect() (SO_PEERCRED's answer): a socket passed on
 * with SCM_RIGHTS or inherited across fork is seen with its current holders, and holders that
 * differ are refused. A client can make its own lookup fail (a bound name containing a newline and
 * a forged line), never make it succeed as someone else: the answer requires exactly one line for
 * our inode, and our line is always there, printed from our own path.
 */
export async function processOfUnixPeer(socket: Socket, options: UnixPeerOptions = {}): Promise<LocalProcess> {
  const inode = await socketInode(socket, options.procRoot);
  const output = await new Promise<string>((resolve, reject) => {
    execFile(options.ss ?? 'ss', ['-x', '-n', '-H'], { timeout: options.timeoutMs ?? 2_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => {
      if (err) reject(new PosternError('internal', `ss -x (iproute2) failed: ${err.message}`, { cause: err }));
      else resolve(stdout);
    });
  });
  const peer = unixPeerInode(parseSsUnixPairs(output), inode);
  return describeHolders(peer, `unix peer of socket ${inode}`, options);
}

// ---- executable hashes --------------------------------------------------------------------------

/**
 * sha256 of executables, cached by (dev, ino, size, mtime) so a busy proxy hashes each binary once,
 * not once per connection. Bounded: the oldest entries go first.
 */
export class ExecutableHasher {
  private readonly cache = new Map<string, string>();

  constructor(private readonly maxEntries = 256) {}

  /** Hashes `path` (typically /proc/<pid>/exe); the file is opened once and identified by its fd. */
  async hashOf(path: string): Promise<string> {
    const handle = await open(path, 'r');
    try {
      const before = await handle.stat();
      const key = fileKey(before);
      const cached = this.cache.get(key);
      if (cached !== undefined) return cached;
      const hash = createHash('sha256');
      for await (const chunk of handle.createReadStream({ autoClose: false })) hash.update(chunk as Buffer);
      const digest = hash.digest('hex');
      // A file rewritten while we read it gives a digest of neither version: use it, never cache it.
      if (fileKey(await handle.stat()) === key) this.remember(key, digest);
      return digest;
    } finally {
      await handle.close();
    }
  }

  private remember(key: string, digest: string): void {
    this.cache.set(key, digest);
    if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!);
  }
}

const fileKey = (s: Stats) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
