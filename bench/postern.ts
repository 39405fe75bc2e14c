// Starts a private Postern (server + one connector) in a temp data dir with the sockets a bench group needs.
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, makeTempDir, removeTempDir, run, sleep, start } from './proc.js';
import type { Child } from './proc.js';
import { createKeyAndCsr } from '../src/ca/csr.js';

const BENCH_USER = 'bench@bench.localhost';

export const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
/** Node flags for the server and connector: the same young-generation size as bin/postern.js, plus extras, e.g. BENCH_POSTERN_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof'. */
const NODE_ARGS = ['--max-semi-space-size=32', ...(process.env.BENCH_POSTERN_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)];

export interface SocketSpec {
  name: string;
  type: 'http' | 'tls';
  upstream: string;
}

export interface Postern {
  port: number;
  dataDir: string;
  caPem: string;
  caFile: string;
  server: Child;
  connector: Child;
  /** A user certificate for `tls` sockets (PEMs, and the same as files for fixtures). */
  client: { key: string; cert: string };
  clientFiles: { key: string; cert: string };
  stop(): Promise<void>;
}

/** POSTs JSON to the server's API with its admin token; resolves with the parsed answer. */
function postApi(port: number, caPem: string, token: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = https.request({ host: '127.0.0.1', port, servername: 'localhost', path, method: 'POST', ca: caPem, headers: { host: `localhost:${port}`, authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => ((res.statusCode ?? 0) < 300 ? resolve(JSON.parse(text) as Record<string, unknown>) : reject(new Error(`POST ${path}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** A bench user and a client certificate for it, written beside the data dir's other files. */
async function issueClientCertificate(env: NodeJS.ProcessEnv, port: number, dataDir: string, caPem: string): Promise<{ client: Postern['client']; clientFiles: Postern['clientFiles'] }> {
  cli(env, ['user', 'create', '--email', BENCH_USER]);
  const { keyPem, csrPem } = await createKeyAndCsr(BENCH_USER);
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const issued = await postApi(port, caPem, token, '/api/v1/certificates/tls', { csr: csrPem, email: BENCH_USER, ttl_seconds: 6 * 3600 });
  const clientFiles = { key: join(dataDir, 'bench-client.key'), cert: join(dataDir, 'bench-client.pem') };
  writeFileSync(clientFiles.key, keyPem, { mode: 0o600 });
  writeFileSync(clientFiles.cert, String(issued.certificate));
  return { client: { key: keyPem, cert: String(issued.certificate) }, clientFiles };
}

function cli(env: NodeJS.ProcessEnv, args: string[]): string {
  const r = run(process.execPath, [CLI, ...args], { env, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`postern ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

export async function startPostern(sockets: SocketSpec[], extraNodeArgs: string[] = []): Promise<Postern> {
  const dataDir = makeTempDir('postern-bench-');
  const port = await freePort();
  const env = { ...process.env, POSTERN_DATA_DIR: dataDir, POSTERN_LOG_LEVEL: 'warn', POSTERN_SERVER: `https://localhost:${port}` };
  let server: Child | undefined;
  let connector: Child | undefined;
  const stop = async () => {
    await connector?.stop(5_000);
    await server?.stop(5_000);
    removeTempDir(dataDir);
  };
  try {
    server = start('postern server', process.execPath, [...NODE_ARGS, ...extraNodeArgs, CLI, 'server', '--listen', `127.0.0.1:${port}`], { env, raiseNofile: true });
    await server.waitFor(/Postern is running at https:\/\/localhost:(\d+)/, 30_000);
    for (const s of sockets) cli(env, ['socket', 'create', '--name', s.name, '--type', s.type, '--upstream', s.upstream]);
    const token = cli(env, ['connector', 'token', 'create', '--name', 'bench', ...sockets.flatMap((s) => ['--socket', s.name])]).trim().split(/\s+/)[0] ?? '';
    if (!token.startsWith('pjt')) throw new Error(`unexpected join token output: ${token}`);
    const yaml = [
      `server: https://localhost:${port}`,
      `credentials: ${join(dataDir, 'connector-creds.json')}`,
      `token: ${token}`,
      'connections: 2',
      'sockets:',
      ...sockets.map((s) => `  - { name: ${s.name}, type: ${s.type}, upstream: "${s.upstream}" }`),
      '',
    ].join('\n');
    const config = join(dataDir, 'connector.yaml');
    writeFileSync(config, yaml, { mode: 0o600 });
    connector = start('postern connector', process.execPath, [...NODE_ARGS, ...extraNodeArgs, CLI, 'connector', 'start', '--config', config], { env, raiseNofile: true });
    await connector.waitFor(/connector \S+ is connected; serving/, 30_000);
    await waitTunnels(env, sockets.length > 0 ? 2 : 0);
    const caFile = join(dataDir, 'ca.pem');
    const caPem = readFileSync(caFile, 'utf8');
    return { port, dataDir, caPem, caFile, server, connector, stop, ...(await issueClientCertificate(env, port, dataDir, caPem)) };
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
    const list = JSON.parse(cli(env, ['connector', 'ls', '--json'])) as { tunnels?: { sockets: string[]; draining: boolean }[] }[];
    seen = list.flatMap((c) => c.tunnels ?? []).filter((t) => !t.draining && t.sockets.length > 0).length;
    if (seen >= want) return;
    await sleep(250);
  }
  throw new Error(`only ${seen} of ${want} tunnels came up within 15 s`);
}
