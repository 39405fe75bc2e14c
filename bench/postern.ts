// Starts a private Postern (server + one connector) in a temp data dir with the sockets a bench group needs.
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, makeTempDir, removeTempDir, run, sleep, start } from './proc.js';
import type { Child } from './proc.js';
import { createKeyAndCsr } from '../src/ca/csr.js';
import { SESSION_COOKIE_NAME } from '../src/identity/session-cookie.js';

export const BENCH_USER = 'bench@bench.localhost';
const BENCH_PASSWORD = 'bench: correct horse battery staple';

export const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
/** Node flags for Postern's processes (server, connector, agents): the same young-generation size as bin/postern.js, plus extras, e.g. BENCH_POSTERN_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
export const NODE_ARGS = ['--max-semi-space-size=32', ...(process.env.BENCH_POSTERN_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)];

export interface SocketSpec {
  name: string;
  type: 'http' | 'tls' | 'ssh' | 'postgres';
  upstream: string;
  /** postgres sockets: the role the connector logs in as (no password: a trust-auth bench server). */
  postgresUser?: string;
  /** A sign-in socket (cloudauth, users of the bench's email domain): every request is decided and logged. */
  signIn?: boolean;
}

export interface Postern {
  port: number;
  dataDir: string;
  caPem: string;
  caFile: string;
  /** What the CLI needs to act as this server's admin (posternCli). */
  env: NodeJS.ProcessEnv;
  server: Child;
  connector: Child;
  /** A user certificate for `tls` sockets (PEMs, and the same as files for fixtures). */
  client: { key: string; cert: string };
  clientFiles: { key: string; cert: string };
  stop(): Promise<void>;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One HTTPS request to the edge at 127.0.0.1:port for `host` (SNI and Host), no connection reuse. */
function request(port: number, caPem: string, host: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, servername: host, path, method: init.method ?? 'GET', ca: caPem, agent: false, headers: { host: `${host}:${port}`, ...init.headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`${host}${path}: no answer within 30 s`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

/** POSTs JSON to the server's API with its admin token; resolves with the parsed answer. */
async function postApi(port: number, caPem: string, token: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await request(port, caPem, 'localhost', path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status >= 300) throw new Error(`POST ${path}: ${res.status} ${res.text}`);
  return JSON.parse(res.text) as Record<string, unknown>;
}

/** `name=value` pairs of the Set-Cookie headers of an answer. */
const cookiesOf = (res: Answer) => ([] as string[]).concat(res.headers['set-cookie'] ?? []).map((line) => line.split(';')[0]!).filter((pair) => !pair.endsWith('='));

/**
 * Signs the bench user in to a sign-in socket the way a browser does: the control host's form
 * (its CSRF cookie and field), then the one-time hand-off to the socket host, which sets the session cookie.
 * Resolves with the `Cookie` header value that socket accepts.
 */
export async function signIn(postern: Postern, socket: string): Promise<string> {
  const { port, caPem } = postern;
  const query = new URLSearchParams({ socket, return_to: '/' }).toString();
  const form = await request(port, caPem, 'localhost', `/auth/login?${query}`);
  const csrf = /name="csrf" value="([^"]*)"/.exec(form.text)?.[1];
  if (form.status !== 200 || !csrf) throw new Error(`sign-in form: ${form.status} ${form.text.slice(0, 200)}`);
  const body = new URLSearchParams({ csrf, socket, return_to: '/', email: BENCH_USER, password: BENCH_PASSWORD }).toString();
  const posted = await request(port, caPem, 'localhost', '/auth/login', { method: 'POST', headers: { cookie: cookiesOf(form).join('; '), 'content-type': 'application/x-www-form-urlencoded' }, body });
  const handoff = posted.headers.location ? new URL(posted.headers.location) : undefined;
  if (posted.status !== 303 || !handoff) throw new Error(`sign-in: ${posted.status} ${posted.text.slice(0, 200)}`);
  const callback = await request(port, caPem, handoff.hostname, handoff.pathname + handoff.search);
  const session = cookiesOf(callback).find((pair) => pair.startsWith(`${SESSION_COOKIE_NAME}=`));
  if (!session) throw new Error(`sign-in hand-off to ${handoff.hostname}: ${callback.status}, no session cookie`);
  await assertSignedIn(postern, socket, session);
  return session;
}

/** Throws unless the socket answers 200 to the cookie (a redirect to sign-in would be cheap and look fast: wrk counts only >= 400 as errors). */
export async function assertSignedIn(postern: Postern, socket: string, cookie: string): Promise<void> {
  const res = await request(postern.port, postern.caPem, `${socket}.localhost`, '/', { headers: { cookie } });
  if (res.status !== 200) throw new Error(`sign-in socket ${socket}: the session cookie got ${res.status}, not 200`);
}

/** A bench user and a client certificate for it, written beside the data dir's other files. */
async function issueClientCertificate(env: NodeJS.ProcessEnv, port: number, dataDir: string, caPem: string): Promise<{ client: Postern['client']; clientFiles: Postern['clientFiles'] }> {
  posternCli(env, ['user', 'create', '--email', BENCH_USER, '--password-stdin'], `${BENCH_PASSWORD}\n`);
  const { keyPem, csrPem } = await createKeyAndCsr(BENCH_USER);
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const issued = await postApi(port, caPem, token, '/api/v1/certificates/tls', { csr: csrPem, email: BENCH_USER, ttl_seconds: 6 * 3600 });
  const clientFiles = { key: join(dataDir, 'bench-client.key'), cert: join(dataDir, 'bench-client.pem') };
  writeFileSync(clientFiles.key, keyPem, { mode: 0o600 });
  writeFileSync(clientFiles.cert, String(issued.certificate));
  return { client: { key: keyPem, cert: String(issued.certificate) }, clientFiles };
}

/** Runs the Postern CLI against a bench server (its env: data dir with the admin token, server URL); throws with its stderr on failure. */
export function posternCli(env: NodeJS.ProcessEnv, args: string[], input?: string): string {
  const r = run(process.execPath, [CLI, ...args], { env, timeoutMs: 30_000, ...(input === undefined ? {} : { input }) });
  if (r.code !== 0) throw new Error(`postern ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** A Postern server alone (control plane and edge on one port), with the admin token in its data dir. */
export interface PosternServer {
  port: number;
  dataDir: string;
  env: NodeJS.ProcessEnv;
  server: Child;
  stop(): Promise<void>;
}

export async function startPosternServer(extraNodeArgs: string[] = []): Promise<PosternServer> {
  const dataDir = makeTempDir('postern-bench-');
  const port = await freePort();
  const env = { ...process.env, POSTERN_DATA_DIR: dataDir, POSTERN_LOG_LEVEL: 'warn', POSTERN_SERVER: `https://localhost:${port}` };
  const server = start('postern server', process.execPath, [...NODE_ARGS, ...extraNodeArgs, CLI, 'server', '--listen', `127.0.0.1:${port}`], { env, raiseNofile: true });
  const stop = async () => {
    await server.stop(5_000);
    removeTempDir(dataDir);
  };
  try {
    await server.waitFor(/Postern is running at https:\/\/localhost:(\d+)/, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, dataDir, env, server, stop };
}

export async function startPostern(sockets: SocketSpec[], extraNodeArgs: string[] = []): Promise<Postern> {
  const { port, dataDir, env, server, stop: stopServer } = await startPosternServer(extraNodeArgs);
  let connector: Child | undefined;
  const stop = async () => {
    await connector?.stop(5_000);
    await stopServer();
  };
  try {
    for (const s of sockets) posternCli(env, ['socket', 'create', '--name', s.name, '--type', s.type, '--upstream', s.upstream, ...(s.signIn ? ['--allowed-email-domains', BENCH_USER.split('@')[1]!] : [])]);
    const token = posternCli(env, ['connector', 'token', 'create', '--name', 'bench', ...sockets.flatMap((s) => ['--socket', s.name])]).trim().split(/\s+/)[0] ?? '';
    if (!token.startsWith('pjt')) throw new Error(`unexpected join token output: ${token}`);
    const yaml = [
      `server: https://localhost:${port}`,
      `credentials: ${join(dataDir, 'connector-creds.json')}`,
      `token: ${token}`,
      'connections: 2',
      'sockets:',
      ...sockets.map((s) => `  - { name: ${s.name}, type: ${s.type}, upstream: "${s.upstream}"${s.postgresUser ? `, postgres: { user: ${s.postgresUser} }` : ''} }`),
      '',
    ].join('\n');
    const config = join(dataDir, 'connector.yaml');
    writeFileSync(config, yaml, { mode: 0o600 });
    connector = start('postern connector', process.execPath, [...NODE_ARGS, ...extraNodeArgs, CLI, 'connector', 'start', '--config', config], { env, raiseNofile: true });
    await connector.waitFor(/connector \S+ is connected; serving/, 30_000);
    await waitTunnels(env, sockets.length > 0 ? 2 : 0);
    const caFile = join(dataDir, 'ca.pem');
    const caPem = readFileSync(caFile, 'utf8');
    return { port, dataDir, env, caPem, caFile, server, connector, stop, ...(await issueClientCertificate(env, port, dataDir, caPem)) };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Waits (bounded) until the edge lists `want` live tunnels that serve sockets. */
async function waitTunnels(env: NodeJS.ProcessEnv, want: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  let seen = 0;
  while (Date.now() < deadline) {
    const list = JSON.parse(posternCli(env, ['connector', 'ls', '--json'])) as { tunnels?: { sockets: string[]; draining: boolean }[] }[];
    seen = list.flatMap((c) => c.tunnels ?? []).filter((t) => !t.draining && t.sockets.length > 0).length;
    if (seen >= want) return;
    await sleep(250);
  }
  throw new Error(`only ${seen} of ${want} tunnels came up within 15 s`);
}
