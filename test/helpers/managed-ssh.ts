// The fixture of the managed SSH end-to-end tests: a real server with a managed `ssh` socket, a
// connector beside a private sshd that trusts only Postern's user CA, a user with a TLS client
// certificate (the identity; openssl s_client is ssh's ProxyCommand), known_hosts from the host CA,
// and ways to run the real OpenSSH clients (ssh, sftp, scp, a pty session) through it.
import { execFile, spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { Client } from 'ssh2';
import { createKeyAndCsr } from '../../src/ca/csr.js';
import type { AuditEvent } from '../../src/reporting/events.js';
import { api } from './https.js';
import { Managed, auditEvents, baseEnv, startConnector, startServer } from './processes.js';
import type { ConnectorHandle, ServerHandle } from './processes.js';
import { Pty } from './pty.js';
import type { PtyOptions } from './pty.js';
import { LOGIN, startSshd } from './sshd.js';
import type { Sshd, SshResult } from './sshd.js';
import { tempDir, waitFor } from './util.js';

const run = promisify(execFile);

export const EMAIL = 'ana@corp.example';
export const PASSWORD = 'correct horse battery staple';
export const SOCKET = 'prod';
export const HOST = `${SOCKET}.localhost`;
export const POLICY = 'ssh-access';

/** The `what.ssh` block of a policy rule, as the README documents it. */
export interface SshWhat {
  logins?: string[];
  shell?: boolean;
  exec?: boolean | string[];
  sftp?: boolean;
  scp?: boolean;
  port_forwarding?: boolean | { local?: boolean; remote?: boolean };
  agent_forwarding?: boolean;
  max_session?: string;
}

/** What the fixture's policy allows unless a test applies another. */
export const DEFAULT_SSH: SshWhat = {
  logins: [LOGIN], shell: true, exec: ['echo *', 'uptime', 'sleep *'], sftp: true, scp: true, port_forwarding: false, agent_forwarding: false,
};

export interface LiveConnection {
  id: string;
  protocol: string;
  socket: string;
  email: string;
  sessionId: string;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
}

export interface ManagedSsh {
  /** The running server (a new handle after `restartServer`). */
  readonly server: ServerHandle;
  readonly sshd: Sshd;
  readonly connector: ConnectorHandle;
  readonly dir: string;
  readonly knownHostsFile: string;
  readonly clientFiles: { key: string; cert: string };
  /** `LOGIN@prod.localhost` (or another login). */
  target(login?: string): string;
  /** The options every OpenSSH client here gets: no user config, the ProxyCommand, strict host checking against the host CA. */
  sshOptions(): string[];
  runSsh(args: readonly string[], options?: RunOptions): Promise<SshResult>;
  /** sftp or scp with the same options. */
  runTool(tool: 'sftp' | 'scp', args: readonly string[], options?: RunOptions): Promise<SshResult>;
  /** A long-running ssh (e.g. `-N -L …`) in the background, killed by cleanupAll. */
  spawnSsh(args: readonly string[]): Managed;
  /** `ssh -tt LOGIN@prod.localhost [args…]` on a real terminal. */
  pty(args?: readonly string[], options?: PtyOptions): Pty;
  /** Starts `ssh -tt` on a terminal and waits for its prompt and its live connection. */
  openShell(): Promise<{ term: Pty; connection: LiveConnection }>;
  applyPolicy(ssh: SshWhat, extra?: { who?: Record<string, unknown> }): Promise<void>;
  /** Live SSH connections on the socket (the API's view; `sessions ls` shows the same). */
  liveConnections(): Promise<LiveConnection[]>;
  /** Waits (bounded) for a live SSH connection that is not in `known`. */
  waitForNewConnection(known: ReadonlySet<string>): Promise<LiveConnection>;
  /** Waits (bounded) for an audit event of `type` on the socket passing `test`. */
  waitForEvent(type: string, test: (event: AuditEvent) => boolean, what: string): Promise<AuditEvent>;
  events(type: string): Promise<AuditEvent[]>;
  /** Makes the upstream sshd present a new host key (same port); resolves with its public key line. */
  rotateHostKey(): Promise<string>;
  /** The upstream sshd's host public key line. */
  hostKey(): Promise<string>;
  /** Stops the server with `signal` and starts it again on the same port and data dir; waits for the tunnel. */
  restartServer(signal: NodeJS.Signals): Promise<ServerHandle>;
  /** The ssh2 library's client over a TLS connection with the user's certificate (for protocol-level tests). */
  ssh2Client(): Promise<Client>;
  /** A raw TLS connection to the socket with the user's certificate. */
  tlsSocket(): Promise<tls.TLSSocket>;
  stop(): Promise<void>;
}

/** The result of a finished child with its exit code (-1 when killed or timed out). */
function runChild(command: string, args: readonly string[], env: NodeJS.ProcessEnv, options: RunOptions): Promise<SshResult> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { env, timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0, stdout, stderr });
    });
    child.stdin?.end(options.input ?? '');
  });
}

/** sshd serves the sftp subsystem (the helper's config has none); appended, then reloaded. */
async function enableSftp(sshd: Sshd): Promise<void> {
  const config = join(sshd.dir, 'sshd_config');
  const text = await readFile(config, 'utf8');
  if (/^Subsystem\s+sftp/m.test(text)) return;
  await writeFile(config, `${text}Subsystem sftp internal-sftp\n`);
  await reloadSshd(sshd);
}

/** SIGHUP makes sshd re-execute and re-read its config and host keys; it writes its pid file again once it listens. */
async function reloadSshd(sshd: Sshd): Promise<void> {
  const pidFile = join(sshd.dir, 'sshd.pid');
  const pid = Number((await waitFor(() => readFile(pidFile, 'utf8'), { what: 'the sshd pid file' })).trim());
  await rm(pidFile);
  process.kill(pid, 'SIGHUP');
  await waitFor(() => existsSync(pidFile), { what: 'sshd to listen again after SIGHUP', timeoutMs: 10_000 });
}

async function cliOk(server: ServerHandle, args: readonly string[]): Promise<string> {
  const result = await server.cli(args);
  if (result.code !== 0) throw new Error(`postern ${args.join(' ')} failed (${result.code}): ${result.stderr.trim()}`);
  return result.stdout;
}

/** Waits (bounded) until the connector holds a tunnel that serves the socket. */
async function waitForTunnel(server: ServerHandle): Promise<void> {
  await waitFor(async () => {
    const connectors = JSON.parse(await cliOk(server, ['connector', 'ls', '--json'])) as { tunnels?: { sockets: string[]; draining: boolean }[] }[];
    return connectors.some((c) => (c.tunnels ?? []).some((t) => !t.draining && t.sockets.includes(SOCKET)));
  }, { what: `a tunnel serving ${SOCKET}`, timeoutMs: 30_000, intervalMs: 250 });
}

export async function startManagedSsh(options: { recordInput?: boolean } = {}): Promise<ManagedSsh> {
  const dir = (await tempDir('postern-managed-ssh-')).path;
  let server = await startServer();
  const env = baseEnv();

  const user = await api(server, '/api/v1/users', { method: 'POST', body: { email: EMAIL, password: PASSWORD } });
  if (user.status !== 201) throw new Error(`creating ${EMAIL}: ${user.status} ${user.text}`);
  // The upstream port is known only once sshd runs, and sshd needs the user CA from `socket show` first.
  await cliOk(server, ['socket', 'create', '--name', SOCKET, '--type', 'ssh', '--upstream', 'tcp://127.0.0.1:22', ...(options.recordInput ? ['--record-input'] : [])]);
  const shown = JSON.parse(await cliOk(server, ['socket', 'show', SOCKET, '--json'])) as { ssh: { publicKey: string } };
  const sshd = await startSshd(shown.ssh.publicKey, [LOGIN]);
  await enableSftp(sshd);
  const upstream = `tcp://127.0.0.1:${sshd.port}`;
  await cliOk(server, ['socket', 'update', SOCKET, '--upstream', upstream]);

  const token = (await cliOk(server, ['connector', 'token', 'create', '--name', 'c', '--socket', SOCKET])).trim().split(/\s+/)[0]!;
  const connectorConfig = join(dir, 'c.yaml');
  await writeFile(connectorConfig, stringify({ server: server.url, credentials: './c.yaml.creds.json', token, sockets: [{ name: SOCKET, type: 'ssh', upstream }] }));
  const connector = await startConnector(['connector', 'start', '--config', connectorConfig], server.env);
  await waitForTunnel(server);

  const { keyPem, csrPem } = await createKeyAndCsr(EMAIL);
  const issued = await api(server, '/api/v1/certificates/tls', { method: 'POST', body: { csr: csrPem, email: EMAIL } });
  if (issued.status !== 201) throw new Error(`issuing the TLS client certificate: ${issued.status} ${issued.text}`);
  const certPem = issued.json<{ certificate: string }>().certificate;
  const clientFiles = { key: join(dir, 'tls.key'), cert: join(dir, 'tls.crt') };
  await writeFile(clientFiles.key, keyPem, { mode: 0o600 });
  await writeFile(clientFiles.cert, certPem);

  const hostCa = await api(server, '/api/v1/ssh/host-ca', { token: null });
  if (hostCa.status !== 200) throw new Error(`GET /api/v1/ssh/host-ca: ${hostCa.status} ${hostCa.text}`);
  const knownHostsFile = join(dir, 'known_hosts');
  await writeFile(knownHostsFile, `${hostCa.json<{ known_hosts: string }>().known_hosts.trim()}\n`);

  let policyVersion = 0;
  const fixture: ManagedSsh = {
    get server() {
      return server;
    },
    sshd, connector, dir, knownHostsFile, clientFiles,
    target: (login = LOGIN) => `${login}@${HOST}`,
    sshOptions: () => [
      '-F', '/dev/null',
      '-o', `ProxyCommand=openssl s_client -quiet -verify_quiet -verify_return_error -connect 127.0.0.1:${server.port} -servername %h `
        + `-CAfile ${server.caFile} -cert ${clientFiles.cert} -key ${clientFiles.key}`,
      '-o', `UserKnownHostsFile=${knownHostsFile}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10',
    ],
    runSsh: (args, runOptions = {}) => runChild('ssh', [...fixture.sshOptions(), ...args], env, runOptions),
    runTool: (tool, args, runOptions = {}) => runChild(tool, [...fixture.sshOptions(), ...args], env, runOptions),
    spawnSsh: (args) => new Managed(`ssh ${args.join(' ')}`, spawn('ssh', [...fixture.sshOptions(), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })),
    pty: (args = [], ptyOptions = {}) => new Pty(['ssh', '-tt', ...fixture.sshOptions(), fixture.target(), ...args], { env, name: 'ssh -tt', ...ptyOptions }),
    openShell: async () => {
      const known = new Set((await fixture.liveConnections()).map((c) => c.id));
      const term = fixture.pty();
      await term.waitForPrompt();
      return { term, connection: await fixture.waitForNewConnection(known) };
    },
    applyPolicy: async (ssh, extra = {}) => {
      const file = join(dir, `policy-${++policyVersion}.yaml`);
      await writeFile(file, stringify({ name: POLICY, sockets: [SOCKET], rules: [{ name: 'ana', effect: 'allow', who: extra.who ?? { email: [EMAIL] }, what: { ssh } }] }));
      await cliOk(server, ['policy', 'apply', '-f', file]);
    },
    liveConnections: async () => {
      const res = await api(server, `/api/v1/connections?socket=${SOCKET}`);
      if (res.status !== 200) throw new Error(`GET /api/v1/connections: ${res.status} ${res.text}`);
      return res.json<{ connections: LiveConnection[] }>().connections.filter((c) => c.protocol === 'ssh');
    },
    waitForNewConnection: (known) => waitFor(async () => (await fixture.liveConnections()).find((c) => !known.has(c.id)), { what: 'a new live SSH connection', timeoutMs: 10_000, intervalMs: 100 }),
    events: (type) => auditEvents(server, ['--socket', SOCKET, '--type', type]),
    waitForEvent: (type, test, what) => waitFor(async () => (await fixture.events(type)).find(test), { what, timeoutMs: 10_000, intervalMs: 250 }),
    hostKey: async () => (await readFile(join(sshd.dir, 'host_key.pub'), 'utf8')).trim(),
    rotateHostKey: async () => {
      await rm(join(sshd.dir, 'host_key'));
      await rm(join(sshd.dir, 'host_key.pub'));
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(sshd.dir, 'host_key')]);
      await reloadSshd(sshd);
      return fixture.hostKey();
    },
    restartServer: async (signal) => {
      await server.stop(signal);
      server = await startServer({ port: server.port, dataDir: server.dataDir });
      await waitForTunnel(server);
      return server;
    },
    tlsSocket: () => new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: server.port, servername: HOST, ca: server.caPem, key: keyPem, cert: certPem });
      socket.once('secureConnect', () => resolve(socket)).once('error', reject);
    }),
    ssh2Client: async () => {
      const sock = await fixture.tlsSocket();
      return new Promise((resolve, reject) => {
        const client = new Client();
        client.once('ready', () => resolve(client)).once('error', reject);
        // The host certificate is OpenSSH's business (tested with ssh itself); this client tests the protocol.
        client.connect({ sock, username: LOGIN, readyTimeout: 15_000, hostVerifier: () => true });
      });
    },
    stop: async () => {
      await sshd.stop();
    },
  };
  await fixture.applyPolicy(DEFAULT_SSH);
  return fixture;
}

/** The base64 body of a public key line (type and comment aside), as a pin would hold it. */
export function keyBody(line: string): string {
  return line.trim().split(/\s+/)[1] ?? '';
}
