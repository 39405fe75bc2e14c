// Where Postern keeps files on this machine: the server's data dir (CA, admin token, SQLite
// file) and the user's config dir (connector credentials made by `postern connect`).
import { homedir } from 'node:os';
import { join } from 'node:path';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.POSTERN_DATA_DIR) return env.POSTERN_DATA_DIR;
  return join(env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'postern');
}

export function defaultConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.POSTERN_CONFIG_DIR) return env.POSTERN_CONFIG_DIR;
  return join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'postern');
}

export const dataFiles = {
  ca: 'ca.pem',
  adminToken: 'admin.token',
  server: 'server.json',
  database: 'postern.db',
} as const;
