// A private PostgreSQL cluster for one test file: initdb in a temp dir, TLS on with a test CA
// made by openssl, the pg_hba lines the test gives, a free loopback port; started and stopped
// with bounded waits. As root it runs as the `postgres` user (PostgreSQL refuses root).
import { execFile } from 'node:child_process';
import { chown, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, tempDir } from './util.js';

const run = promisify(execFile);

export interface PgCluster {
  readonly port: number;
  /** Loopback addresses it listens on. */
  readonly hosts: readonly string[];
  readonly caFile: string;
  /** Runs SQL as the superuser over the Unix socket (trusted). */
  psql(sql: string, database?: string): Promise<string>;
  /** A client certificate for `cn` signed by the test CA (PostgreSQL `cert` auth maps CN to the role). */
  clientCertificate(cn: string): Promise<{ cert: string; key: string }>;
  stop(): Promise<void>;
}

async function postgresBin(): Promise<string | undefined> {
  const versions = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
  const newest = versions.filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))[0];
  return newest && join('/usr/lib/postgresql', newest, 'bin');
}

/** Why a private cluster cannot run here, or undefined when it can. */
export async function pgClusterUnavailable(): Promise<string | undefined> {
  if (!(await postgresBin())) return 'no PostgreSQL server binaries under /usr/lib/postgresql/*/bin';
  if (userInfo().uid === 0 && !(await run('id', ['-u', 'postgres']).then(() => true, () => false))) return 'running as root with no postgres user to run the cluster as';
  if (!(await run('openssl', ['version']).then(() => true, () => false))) return 'no openssl to make the test CA';
  return undefined;
}

/** An X.509 certificate signed by the CA in `dir`, with `extensions` (openssl extfile lines). */
async function issue(dir: string, name: string, subject: string, extensions: readonly string[]): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  await writeFile(ext, extensions.join('\n') + '\n');
  await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', join(dir, `${name}.csr`), '-subj', subject]);
  await run('openssl', ['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-out', cert, '-days', '1', '-extfile', ext]);
  return { cert, key };
}

/**
 * Starts a cluster whose server certificate names only `certifiedHost` (so a connection by
 * another of `hosts` fails a host name check), with `hba` as its pg_hba.conf after a trusted
 * local line for the superuser.
 */
export async function startPgCluster(options: { hosts: readonly string[]; certifiedHost: string; hba: readonly string[] }): Promise<PgCluster> {
  const bin = (await postgresBin())!;
  const asRoot = userInfo().uid === 0;
  const root = (await tempDir('postern-pgcluster-')).path;
  const data = join(root, 'data');
  const sockets = join(root, 'sockets');
  const tlsDir = join(root, 'tls');
  await mkdir(sockets);
  await mkdir(tlsDir);
  const owner = asRoot ? (await run('id', ['-u', 'postgres'])).stdout.trim() : undefined;
  const group = asRoot ? (await run('id', ['-g', 'postgres'])).stdout.trim() : undefined;
  const own = async (path: string) => {
    if (owner !== undefined) await chown(path, Number(owner), Number(group));
  };
  await own(root);
  await own(sockets);
  const asPostgres = (file: string, args: readonly string[]) => (asRoot ? run('runuser', ['-u', 'postgres', '--', file, ...args]) : run(file, [...args]));

  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(tlsDir, 'ca.key'), '-out', join(tlsDir, 'ca.crt'),
    '-subj', '/CN=Postern test PostgreSQL CA', '-days', '1', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const server = await issue(tlsDir, 'server', '/CN=postgres test server', [`subjectAltName=IP:${options.certifiedHost}`, 'extendedKeyUsage=serverAuth']);
  await own(tlsDir);
  await own(server.key);
  await own(server.cert);
  await own(join(tlsDir, 'ca.crt'));

  await asPostgres(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  await writeFile(join(data, 'pg_hba.conf'), ['local all postgres trust', ...options.hba, ''].join('\n'));
  await own(join(data, 'pg_hba.conf'));
  const port = await freePort();
  const settings = [
    `port=${port}`, `listen_addresses=${options.hosts.join(',')}`, `unix_socket_directories=${sockets}`, 'ssl=on',
    `ssl_cert_file=${server.cert}`, `ssl_key_file=${server.key}`, `ssl_ca_file=${join(tlsDir, 'ca.crt')}`,
    'fsync=off', 'shared_buffers=16MB', 'max_connections=30',
  ];
  await asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-l', join(root, 'postgres.log'), '-w', '-t', '30', '-o', settings.map((s) => `-c ${s}`).join(' '), 'start'])
    .catch(async (err: Error) => {
      const log = await readFile(join(root, 'postgres.log'), 'utf8').catch(() => '');
      throw new Error(`the private PostgreSQL cluster did not start: ${err.message}\n${log}`);
    });
  let stopped = false;
  return {
    port,
    hosts: options.hosts,
    caFile: join(tlsDir, 'ca.crt'),
    psql: async (sql, database = 'postgres') => (await run('psql', ['-X', '-w', '-h', sockets, '-p', String(port), '-U', 'postgres', '-d', database, '-v', 'ON_ERROR_STOP=1', '-tA', '-c', sql])).stdout,
    clientCertificate: (cn) => issue(tlsDir, `client-${cn}`, `/CN=${cn}`, ['extendedKeyUsage=clientAuth']),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', '-t', '20', 'stop']).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    },
  };
}
