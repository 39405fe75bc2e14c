// The CLI's sign-ins: `<config dir>/credentials.json`, mode 0600 in a 0700 directory, one
// entry per server (keyed by its origin) holding the CLI session token `postern login` got,
// and the CA that server was trusted with, so later commands need no --ca-file.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PosternError } from '../errors.js';

export const CREDENTIALS_FILE = 'credentials.json';

export interface StoredLogin {
  readonly token: string;
  readonly email: string;
  readonly sessionId: string;
  readonly expiresAt: string;
  readonly caPem?: string;
  readonly savedAt: string;
}

interface CredentialsFile {
  version: 1;
  servers: Record<string, StoredLogin>;
}

/** `https://Host:443/x` → `https://host` (the key of an entry); the input when it is not a URL. */
export function serverKey(server: string): string {
  try {
    return new URL(server).origin;
  } catch {
    return server;
  }
}

function isLogin(value: unknown): value is StoredLogin {
  const v = value as Partial<StoredLogin> | null;
  return typeof v === 'object' && v !== null && typeof v.token === 'string' && typeof v.email === 'string'
    && typeof v.sessionId === 'string' && typeof v.expiresAt === 'string' && (v.caPem === undefined || typeof v.caPem === 'string');
}

function read(configDir: string): CredentialsFile {
  let text: string;
  try {
    text = readFileSync(join(configDir, CREDENTIALS_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, servers: {} };
    throw new PosternError('config_invalid', `cannot read ${join(configDir, CREDENTIALS_FILE)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    const parsed = JSON.parse(text) as { servers?: unknown };
    const servers: Record<string, StoredLogin> = {};
    if (typeof parsed.servers === 'object' && parsed.servers !== null) {
      for (const [key, value] of Object.entries(parsed.servers)) if (isLogin(value)) servers[key] = value;
    }
    return { version: 1, servers };
  } catch {
    throw new PosternError('config_invalid', `${join(configDir, CREDENTIALS_FILE)} is not valid JSON: delete it and run \`postern login\` again`);
  }
}

/** Written to a temporary file first, then renamed: a crash never leaves half a file. */
function write(configDir: string, file: CredentialsFile): void {
  mkdirSync(configDir, { recursive: true, mode: 0o700 });
  const path = join(configDir, CREDENTIALS_FILE);
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

/** The sign-in stored for `server`, if any (an unreadable file counts as none). */
export function loadLogin(configDir: string, server: string): StoredLogin | undefined {
  try {
    return read(configDir).servers[serverKey(server)];
  } catch {
    return undefined;
  }
}

export function saveLogin(configDir: string, server: string, login: StoredLogin): string {
  const file = read(configDir);
  file.servers[serverKey(server)] = login;
  write(configDir, file);
  return join(configDir, CREDENTIALS_FILE);
}

/** Returns whether there was an entry to delete. */
export function deleteLogin(configDir: string, server: string): boolean {
  const file = read(configDir);
  const key = serverKey(server);
  if (!(key in file.servers)) return false;
  delete file.servers[key];
  write(configDir, file);
  return true;
}
