// The signed-in user's short-lived certificates, cached under the config dir (0600) and renewed
// when less than a fifth of their life is left: a TLS client certificate for `tls` sockets and
// an OpenSSH certificate for the user's SSH key.
import { execFile } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { access, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { CliContext } from './context.js';
import { createKeyAndCsr } from '../ca/index.js';
import { PosternError } from '../errors.js';

const run = promisify(execFile);

export interface TlsIdentity {
  readonly keyPem: string;
  readonly certPem: string;
  readonly caPem: string;
}

/** This server's files under the config dir (0700). */
export function clientDir(ctx: CliContext): string {
  const server = createHash('sha256').update(new URL(ctx.server).origin).digest('hex').slice(0, 12);
  return join(ctx.configDir, 'client', server);
}

function fresh(validFrom: number, validTo: number): boolean {
  return validTo - Date.now() > (validTo - validFrom) / 5;
}

async function readOptional(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

async function writePrivate(path: string, text: string): Promise<void> {
  await writeFile(path, text, { mode: 0o600 });
  await chmod(path, 0o600);
}

/** `signIn` gives the context of a person's sign-in (signing in first when there is none). */
export async function tlsIdentity(ctx: CliContext, ttlSeconds: number, signIn: () => Promise<CliContext>): Promise<TlsIdentity> {
  const dir = clientDir(ctx);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const [keyPem, certPem, caPem] = await Promise.all(['tls.key', 'tls.crt', 'ca.pem'].map((name) => readOptional(join(dir, name))));
  if (keyPem && certPem && caPem) {
    const cert = new X509Certificate(certPem);
    if (fresh(Date.parse(cert.validFrom), Date.parse(cert.validTo))) return { keyPem, certPem, caPem };
  }
  const person = await signIn();
  const next = await createKeyAndCsr('postern-client');
  const issued = await person.client().post<{ certificate: string; ca: string }>('/api/v1/me/certificates/tls', { csr: next.csrPem, ttl_seconds: ttlSeconds });
  await writePrivate(join(dir, 'tls.key'), next.keyPem);
  await writePrivate(join(dir, 'tls.crt'), issued.certificate);
  await writePrivate(join(dir, 'ca.pem'), issued.ca);
  return { keyPem: next.keyPem, certPem: issued.certificate, caPem: issued.ca };
}

/** `ssh.corp.example` → `ssh` when the server's domain is corp.example; '' for other hosts. */
export function socketOfHost(host: string, domain: string): string {
  const lower = host.toLowerCase().replace(/\.$/, '');
  const label = lower.endsWith(`.${domain}`) ? lower.slice(0, -domain.length - 1) : '';
  return label.includes('.') ? '' : label;
}

/**
 * Makes (once) an Ed25519 key with ssh-keygen, gets it certified if needed; returns the key path.
 * With a socket host, the certificate carries the logins the policies allow there, so it is
 * renewed when the next call names another socket.
 */
/** Where the person's SSH key for this server lives (made on first use by `client ssh-keysign`). */
export function sshKeyPath(ctx: CliContext): string {
  return join(clientDir(ctx), 'ssh', 'id_ed25519');
}

export async function sshIdentity(ctx: CliContext, ttlSeconds: number, signIn: () => Promise<CliContext>, host?: string): Promise<string> {
  const key = sshKeyPath(ctx);
  await mkdir(dirname(key), { recursive: true, mode: 0o700 });
  if (!(await access(key).then(() => true, () => false))) {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'postern', '-f', key]).catch((cause: unknown) => {
      throw new PosternError('internal', 'ssh-keygen failed: is OpenSSH installed?', { cause });
    });
  }
  const certPath = `${key}-cert.pub`;
  const socket = host === undefined ? '' : socketOfHost(host, new URL(ctx.server).hostname);
  const socketFile = `${key}-cert.socket`;
  // Without a host any fresh certificate will do (ssh-config only needs the key to exist).
  const sameSocket = host === undefined || (await readFile(socketFile, 'utf8').catch(() => '')) === socket;
  const validity = await run('ssh-keygen', ['-L', '-f', certPath]).then((out) => /Valid: from (\S+) to (\S+)/.exec(out.stdout), () => null);
  if (sameSocket && validity && fresh(Date.parse(validity[1]!), Date.parse(validity[2]!))) return key;
  const person = await signIn();
  const publicKey = await readFile(`${key}.pub`, 'utf8');
  const issued = await person.client().post<{ certificate: string }>('/api/v1/me/certificates/ssh', { public_key: publicKey, ttl_seconds: ttlSeconds, ...(socket ? { socket } : {}) });
  await writeFile(certPath, issued.certificate + '\n', { mode: 0o644 });
  await writeFile(socketFile, socket, { mode: 0o600 });
  return key;
}
