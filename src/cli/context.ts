// How a CLI command finds its server: flags > POSTERN_* env > the local server's data dir
// (server.json, admin.token, ca.pem), so on the server's own machine nothing needs typing.
// The token: --token > POSTERN_TOKEN > the sign-in `postern login` stored for this server
// (credentials.json in the config dir) > the local admin.token. A person who signed in acts
// as themselves; automation keeps passing a token explicitly or relies on admin.token.
// On the server's own machine a stored sign-in does not lock its owner out of admin commands:
// when the server refuses it as not an admin (`admin_required`, decided by the server on each
// request from the group membership), the request is sent again with admin.token. The server
// decides, not a list of admin routes here, so the CLI cannot drift from the API.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient } from '../api-client/index.js';
import { PosternError, errorMessage } from '../errors.js';
import { dataFiles, defaultConfigDir, defaultDataDir } from './paths.js';
import { loadLogin, serverKey } from './credentials.js';

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
  /** Where `postern login` keeps credentials.json. */
  readonly configDir: string;
  /** Where the token came from. */
  readonly tokenSource: 'flag' | 'env' | 'login' | 'admin-file' | 'none';
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
  const configDir = defaultConfigDir(env);
  const login = loadLogin(configDir, server);
  /** A sign-in past its expiry is skipped (its CA is still trusted). */
  const loginToken = login && Date.parse(login.expiresAt) > Date.now() ? login.token : undefined;
  const preferred = options.token ?? env.POSTERN_TOKEN ?? loginToken;
  const adminFile = readOptional(join(dataDir, dataFiles.adminToken))?.trim() || undefined;
  const adminToken = preferred === undefined ? adminFile : undefined;
  const token = preferred ?? adminToken;
  const tokenSource = options.token ? 'flag' : env.POSTERN_TOKEN ? 'env' : loginToken ? 'login' : adminToken ? 'admin-file' : 'none';
  /** Only behind the stored sign-in (an explicit token is what the user asked for) and only to the server this data dir belongs to. */
  const adminFallbackToken = tokenSource === 'login' && localUrl !== undefined && serverKey(localUrl) === serverKey(server) ? adminFile : undefined;
  const caFile = options.caFile ?? env.POSTERN_CA;
  let caPem: string | undefined;
  if (caFile) {
    try {
      caPem = readFileSync(caFile, 'utf8');
    } catch (cause) {
      throw new PosternError('config_invalid', `cannot read CA file ${caFile}: ${(cause as NodeJS.ErrnoException).code ?? errorMessage(cause)}`);
    }
  } else {
    caPem = readOptional(join(dataDir, dataFiles.ca)) ?? login?.caPem;
  }
  return {
    server,
    ...(token ? { token } : {}),
    ...(caPem ? { caPem } : {}),
    dataDir,
    configDir,
    tokenSource,
    json: options.json ?? false,
    client: () => new ApiClient({ server, ...(token ? { token } : {}), ...(adminFallbackToken ? { adminFallbackToken } : {}), ...(caPem ? { caPem } : {}) }),
  };
}
