// `postern client …`: what a person runs to reach sockets — a TLS stream with their certificate
// (stdin/stdout, so it works as an OpenSSH ProxyCommand, or a local port), a local PostgreSQL
// port or the libpq environment for a postgres socket, SSH certificates, and the ssh_config
// block that ties both together (with the known_hosts line that trusts the host certificates of
// ssh sockets).
import { X509Certificate } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { delimiter, dirname, join, resolve } from 'node:path';
import tls from 'node:tls';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { clientDir, socketOfHost, sshIdentity, sshKeyPath, tlsIdentity } from '../client-certs.js';
import type { TlsIdentity } from '../client-certs.js';
import { parseDuration } from '../server-config.js';
import { signedIn } from './login.js';
import { PosternError, errorMessage } from '../../errors.js';
import { MAX_STARTUP_LENGTH, decodeStartup, encodeStartup, roleOption } from '../../pgwire/index.js';
import type { AppList } from '../../control/index.js';

function openStream(ctx: CliContext, host: string, identity: TlsIdentity): tls.TLSSocket {
  const server = new URL(ctx.server);
  // The edge is where the control plane is; SNI picks the socket.
  return tls.connect({
    host: server.hostname === 'localhost' ? '127.0.0.1' : server.hostname,
    port: Number(server.port || 443),
    servername: host,
    ca: identity.caPem,
    cert: identity.certPem,
    key: identity.keyPem,
    minVersion: 'TLSv1.3',
  });
}

/** OpenSSL's alert codes (ERR_SSL_…_ALERT_…, e.g. CERTIFICATE_REQUIRED): the edge refused the handshake. */
function refusedHandshake(err: NodeJS.ErrnoException): boolean {
  return typeof err.code === 'string' && err.code.startsWith('ERR_SSL_') && err.code.includes('ALERT');
}

function describeFailure(host: string, err: NodeJS.ErrnoException): PosternError {
  const message = refusedHandshake(err)
    ? `${host} refused the connection: ${err.message} (is your sign-in allowed on this socket?)`
    : `cannot reach ${host}: ${errorMessage(err)}`;
  return new PosternError('forbidden', message, { cause: err });
}

const SSL_REQUEST = Buffer.from('0000000804d2162f', 'hex');
const GSSENC_REQUEST = Buffer.from('0000000804d21630', 'hex');
/** A StartupMessage or CancelRequest is at least this long, as is an encryption request. */
const MIN_STARTUP = 8;

/**
 * The local client's startup packet asking for `role` too (appended to its `options`, so it wins
 * over one the client set); anything else, or a packet that does not decode, goes as it came and
 * the edge answers it.
 */
export function startupAskingRole(startup: Buffer, role: string): Buffer {
  let packet;
  try {
    packet = decodeStartup(startup.subarray(4));
  } catch {
    return startup;
  }
  if (packet.type !== 'StartupMessage') return startup;
  const options = [packet.parameters.options, roleOption(role)].filter(Boolean).join(' ');
  return encodeStartup({ ...packet, parameters: { ...packet.parameters, options } });
}

/**
 * One local PostgreSQL connection: its encryption requests are answered "no" (the hop to the
 * edge is TLS already), then its startup (asking for `role`, if given) and everything after go
 * through a TLS stream.
 */
function relayPostgres(local: net.Socket, open: () => tls.TLSSocket, host: string, role: string | undefined): void {
  let buffered = Buffer.alloc(0);
  local.on('error', () => local.destroy());
  const onData = (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= MIN_STARTUP) {
      const head = buffered.subarray(0, MIN_STARTUP);
      if (!head.equals(SSL_REQUEST) && !head.equals(GSSENC_REQUEST)) break;
      local.write('N');
      buffered = buffered.subarray(MIN_STARTUP);
    }
    if (buffered.length < MIN_STARTUP) return;
    const length = buffered.readUInt32BE(0);
    if (role !== undefined && length <= MAX_STARTUP_LENGTH) {
      if (buffered.length < length) return;
      buffered = Buffer.concat([startupAskingRole(buffered.subarray(0, length), role), buffered.subarray(length)]);
    }
    local.off('data', onData);
    local.pause();
    const stream = open();
    stream.once('secureConnect', () => {
      stream.write(buffered);
      local.pipe(stream);
      stream.pipe(local);
    });
    stream.on('error', (err) => {
      process.stderr.write(`postern: ${describeFailure(host, err).message}\n`);
      local.destroy();
    });
    local.on('close', () => stream.destroy());
  };
  local.on('data', onData);
}

export function registerClient(program: Command, context: () => CliContext): void {
  const signIn = () => signedIn(context);
  const client = program.command('client').description('reach sockets as the signed-in user (signs in first when needed)');
  client.command('tls')
    .description('open a TLS stream to a socket with your certificate: stdin/stdout (an ssh ProxyCommand) or --listen')
    .requiredOption('--host <socket-host>', 'e.g. db.localhost (ssh_config: %h)')
    .option('--listen <host:port>', 'serve a local port instead; one stream per local connection')
    .option('--ttl <duration>', 'certificate lifetime', '4h')
    .action(async (options: { host: string; listen?: string; ttl: string }) => {
      const ctx = context();
      const identity = await tlsIdentity(ctx, Math.round(parseDuration(options.ttl) / 1000), signIn);
      if (!options.listen) {
        const stream = openStream(ctx, options.host, identity);
        await new Promise<void>((resolve, reject) => {
          stream.once('secureConnect', () => {
            process.stdin.pipe(stream);
            stream.pipe(process.stdout);
            stream.once('close', () => resolve());
          });
          stream.once('error', (err) => reject(describeFailure(options.host, err)));
        });
        process.exit(0);
      }
      const [listenHost, listenPort] = options.listen.split(/:(?=\d+$)/);
      const server = net.createServer({ allowHalfOpen: true }, (local) => {
        const stream = openStream(ctx, options.host, identity);
        stream.once('secureConnect', () => {
          local.pipe(stream);
          stream.pipe(local);
        });
        stream.on('error', (err) => {
          process.stderr.write(`postern: ${describeFailure(options.host, err).message}\n`);
          local.destroy();
        });
        local.on('error', () => stream.destroy());
      });
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(Number(listenPort), listenHost || '127.0.0.1', resolve));
      const address = server.address() as net.AddressInfo;
      process.stdout.write(`forwarding ${address.address}:${address.port} → ${options.host} (Ctrl-C to stop)\n`);
    });
  client.command('db')
    .description('serve a local port that speaks plain PostgreSQL to psql and TLS with your certificate to a postgres socket (no database password)')
    .requiredOption('--host <socket-host>', 'e.g. orders.localhost')
    .option('--listen <host:port>', 'the local port psql connects to', '127.0.0.1:5433')
    .option('--role <role>', 'ask for this database role (policy must map you to it: what.database.users)')
    .option('--print-env', 'instead of a local port: write your certificate, key and the CA to files and print the PG* variables with which psql (or any libpq client) connects straight to the edge')
    .option('--database <name>', '--print-env: the PGDATABASE to print (default: the socket\'s own database, if it has one)')
    .option('--ttl <duration>', 'certificate lifetime', '4h')
    .addHelpText('after', [
      '',
      'Straight to the edge, without a local port:',
      '  eval "$(postern client db --host orders.localhost --print-env)" && psql',
      'Any libpq client asks for a role with PGOPTIONS="-c postern.role=readonly" (what --role does).',
    ].join('\n'))
    .action(async (options: { host: string; listen: string; role?: string; printEnv?: boolean; database?: string; ttl: string }) => {
      const ctx = context();
      const identity = await tlsIdentity(ctx, Math.round(parseDuration(options.ttl) / 1000), signIn);
      if (options.printEnv) return printPostgresEnv(ctx, options.host, identity, options, signIn);
      const [listenHost, listenPort] = options.listen.split(/:(?=\d+$)/);
      const server = net.createServer({ allowHalfOpen: true }, (local) => relayPostgres(local, () => openStream(ctx, options.host, identity), options.host, options.role));
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(Number(listenPort), listenHost || '127.0.0.1', resolve));
      const address = server.address() as net.AddressInfo;
      process.stdout.write(`postgres on ${address.address}:${address.port} → ${options.host}: psql -h ${address.address} -p ${address.port} <database> (Ctrl-C to stop)\n`);
    });
  client.command('ssh-keysign')
    .description('make or reuse your SSH key and get it certified; prints the key path (for ssh_config Match exec / IdentityFile)')
    .option('--host <socket-host>', 'the socket being reached (ssh_config: %h): the certificate names the logins policies allow there')
    .option('--ttl <duration>', 'certificate lifetime', '1h')
    .action(async (options: { host?: string; ttl: string }) => {
      const key = await sshIdentity(context(), Math.round(parseDuration(options.ttl) / 1000), signIn, options.host);
      process.stdout.write(`${key}\n`);
    });
  client.command('ssh-config')
    .description('print an ssh_config block for reaching SSH sockets through Postern and write the known_hosts file it names (no sign-in: the first ssh signs in)')
    .action(async () => {
      const ctx = context();
      const key = sshKeyPath(ctx);
      const domain = new URL(ctx.server).hostname;
      // ssh sockets present host certificates of Postern's host CA (a public key: no sign-in needed).
      const { known_hosts: trustLine } = await ctx.client().get<{ known_hosts: string }>('/api/v1/ssh/host-ca');
      const knownHosts = join(ctx.configDir, 'known_hosts');
      await mkdir(ctx.configDir, { recursive: true, mode: 0o700 });
      await writeFile(knownHosts, `${trustLine}\n`, { mode: 0o644 });
      const self = await stableCommand(ctx.configDir);
      process.stdout.write([
        `Match host *.${domain} exec "${self} client ssh-keysign --host %h"`,
        `  ProxyCommand ${self} client tls --host %h`,
        `  IdentityFile ${key}`,
        `  CertificateFile ${key}-cert.pub`,
        `  UserKnownHostsFile ~/.ssh/known_hosts ${knownHosts}`,
        '',
      ].join('\n'));
    });
}

/** Writes `text` to `path` (0600) through a temporary file, so a client never reads half of it or a key beside the wrong certificate. */
async function writePrivateFile(path: string, text: string): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}

/** The database the socket opens by default, from the person's own app list (undefined when it has none or is not open to them now). */
async function socketDatabase(person: CliContext, socket: string): Promise<{ reachable: boolean; database?: string }> {
  let after: string | undefined;
  // Apps come by name in pages; a bounded walk finds the socket or passes it.
  for (let page = 0; page < 100; page++) {
    const list = await person.client().get<AppList>(`/api/v1/me/apps?limit=500${after ? `&after=${encodeURIComponent(after)}` : ''}`);
    const app = list.apps.find((a) => a.name === socket);
    if (app) return { reachable: true, ...(app.database ? { database: app.database } : {}) };
    if (!list.next || list.apps.some((a) => a.name > socket)) return { reachable: false };
    after = list.next;
  }
  return { reachable: false };
}

/** Single quotes for a POSIX shell. */
function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * `client db --print-env`: the certificate files for libpq (0600, beside the cached identity)
 * and the variables that make psql connect straight to the edge's main port: PGHOST is the
 * socket's name (libpq sends it as SNI and verify-full checks the edge's certificate for it).
 */
async function printPostgresEnv(ctx: CliContext, host: string, identity: TlsIdentity, options: { role?: string; database?: string }, signIn: () => Promise<CliContext>): Promise<void> {
  const server = new URL(ctx.server);
  const dir = join(clientDir(ctx), 'postgres');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files = { cert: join(dir, 'client.crt'), key: join(dir, 'client.key'), ca: join(dir, 'ca.pem') };
  await writePrivateFile(files.key, identity.keyPem);
  await writePrivateFile(files.cert, identity.certPem);
  await writePrivateFile(files.ca, identity.caPem);
  const certificate = new X509Certificate(identity.certPem);
  const email = /(?:^|\n)CN=([^\n]+)/.exec(certificate.subject)?.[1] ?? '';
  let database = options.database;
  if (database === undefined) {
    const socket = socketOfHost(host, server.hostname);
    const found = socket ? await socketDatabase(await signIn(), socket) : { reachable: false };
    if (!found.reachable) process.stderr.write(`postern: ${host} is not among the sockets open to you now; the edge will decide when psql connects\n`);
    database = found.database;
  }
  // A name under .localhost need not resolve here; the edge listens where the server does.
  const address = server.hostname === 'localhost' ? '127.0.0.1' : net.isIP(server.hostname.replace(/^\[|\]$/g, '')) ? server.hostname.replace(/^\[|\]$/g, '') : undefined;
  const variables: [string, string | undefined][] = [
    ['PGHOST', host], ['PGHOSTADDR', address], ['PGPORT', server.port || '443'], ['PGSSLMODE', 'verify-full'],
    ['PGSSLROOTCERT', files.ca], ['PGSSLCERT', files.cert], ['PGSSLKEY', files.key], ['PGUSER', email], ['PGDATABASE', database],
    ['PGOPTIONS', options.role === undefined ? undefined : roleOption(options.role)],
  ];
  for (const [name, value] of variables) if (value) process.stdout.write(`export ${name}=${shellQuote(value)}\n`);
  process.stderr.write(`postern: the certificate is valid until ${new Date(certificate.validTo).toISOString()}; run this again for a fresh one\n`);
}

/** Whether an executable named `name` is on PATH. */
async function onPath(name: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    if (await access(join(dir, name), constants.X_OK).then(() => true, () => false)) return true;
  }
  return false;
}

/**
 * The command ssh_config runs: `postern` when it is on PATH, else a wrapper under the config
 * dir that runs this installation, never a path into npx's cache (which is cleaned).
 */
async function stableCommand(configDir: string): Promise<string> {
  if (await onPath('postern')) return 'postern';
  const wrapper = join(configDir, 'bin', 'postern');
  await mkdir(dirname(wrapper), { recursive: true, mode: 0o700 });
  const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
  await writeFile(wrapper, `#!/bin/sh\n# Written by \`postern client ssh-config\`: runs the Postern CLI it was made by.\nexec ${quote(process.execPath)} ${quote(resolve(process.argv[1] ?? ''))} "$@"\n`, { mode: 0o755 });
  const temporary = /[\\/]_npx[\\/]/.test(process.argv[1] ?? '');
  process.stderr.write(`postern: postern is not on PATH, so the block runs ${wrapper}${temporary ? ', which points into npx\'s cache: install Postern for good (npm install -g . in a clone) and run this again' : ''}\n`);
  return wrapper;
}
