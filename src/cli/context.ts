// How a CLI command finds its server: flags > POSTERN_* env > the local server's data dir
// (server.json, admin.token, ca.pem), so on the server's own machine nothing needs typing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient } from '../control/client.js';
import { PosternError, errorMessage } from '../errors.js';
import { dataFiles, defaultDataDir } from './paths.js';

export interface GlobalOptions {
  server?: string;
  token?: string;
  caFile?: string;
  dataDir?: string;
  json?: boolean;
}

export interface CliContext {
  readonly server: string;
  readonly token?: string;
  readonly caPem?: string;
  readonly dataDir: string;
  readonly json: boolean;
  client(): ApiClient;
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function resolveContext(options: GlobalOptions, env: NodeJS.ProcessEnv = process.env): CliContext {
  const dataDir = options.dataDir ?? env.POSTERN_DATA_DIR ?? defaultDataDir(env);
  const local = readOptional(join(dataDir, dataFiles.server));
  let localUrl: string | undefined;
  if (local) {
    try {
      localUrl = (JSON.parse(local) as { url?: string }).url;
    } catch {
      localUrl = undefined;
    }
  }
  const server = options.server ?? env.POSTERN_SERVER ?? localUrl ?? 'https://localhost:8443';
  const token = options.token ?? env.POSTERN_TOKEN ?? readOptional(join(dataDir, dataFiles.adminToken))?.trim();
  const caFile = options.caFile ?? env.POSTERN_CA;
  let caPem: string | undefined;
  if (caFile) {
    try {
      caPem = readFileSync(caFile, 'utf8');
    } catch (cause) {
      throw new PosternError('config_invalid', `cannot read CA file ${caFile}: ${(cause as NodeJS.ErrnoException).code ?? errorMessage(cause)}`);
    }
  } else {
    caPem = readOptional(join(dataDir, dataFiles.ca));
  }
  return {
    server,
    ...(token ? { token } : {}),
    ...(caPem ? { caPem } : {}),
    dataDir,
    json: options.json ?? false,
    client: () => new ApiClient({ server, ...(token ? { token } : {}), ...(caPem ? { caPem } : {}) }),
  };
}
