// The connector's YAML file: where the edge is, where its credentials live, and the sockets it
// serves with their upstreams. Upstreams come only from here — never from the edge.
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { PosternError } from '../errors.js';
import { issueLine } from '../zod-issues.js';
import { parseConfigYaml, problemsLine, readConfigFile } from '../config-file.js';
import { socketNameSchema, SOCKET_TYPES, carriesTcp } from '../store/index.js';

const upstreamUrl = z.string().refine((value) => {
  try {
    return ['http:', 'https:', 'tcp:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, 'must be a URL such as http://127.0.0.1:3000 or tcp://127.0.0.1:22');

/** A PostgreSQL role name (an identifier of at most 63 bytes). */
const pgRole = z.string().min(1).max(63);
const path = z.string().min(1);

/** How one login proves itself upstream: a password from the environment or a file, a client certificate, or nothing (trust). */
const loginCredentials = {
  password_env: z.string().min(1).optional(),
  password_file: path.optional(),
  /** A client certificate and its key (PostgreSQL `cert` authentication): the session runs over TLS. */
  cert: path.optional(),
  key: path.optional(),
  /** The CA the upstream's server certificate must chain to; with it, or with a cert, the connector speaks TLS upstream. */
  ca: path.optional(),
  /** `full` (the default): the chain and the upstream's host name; `ca`: the chain only (an upstream reached by an address its certificate does not name). */
  verify: z.enum(['full', 'ca']).optional(),
};
type Credentials = { [K in keyof typeof loginCredentials]?: z.infer<(typeof loginCredentials)[K]> };

function checkCredentials(login: Credentials, ctx: z.RefinementCtx): void {
  if (login.password_env && login.password_file) ctx.addIssue({ code: 'custom', message: 'password_env or password_file, not both' });
  if ((login.cert === undefined) !== (login.key === undefined)) ctx.addIssue({ code: 'custom', path: [login.cert ? 'key' : 'cert'], message: 'cert and key go together' });
  if (login.verify !== undefined && !usesTls(login)) ctx.addIssue({ code: 'custom', path: ['verify'], message: 'applies to a TLS login (cert or ca)' });
}

const postgresLogin = z.strictObject({
  /** The default login: the role a session logs in as when policy maps it to none. */
  user: pgRole,
  ...loginCredentials,
  /** The roles policy may map people to (`what.database.users`), each with its own credentials. */
  roles: z.record(pgRole, z.strictObject(loginCredentials).superRefine(checkCredentials)).optional(),
}).superRefine(checkCredentials);

export const connectorSocketSchema = z.object({
  name: socketNameSchema,
  /** tls and ssh sockets are piped as raw TCP to a tcp:// upstream (the edge terminates ssh itself). */
  type: z.enum(SOCKET_TYPES).default('http'),
  upstream: upstreamUrl,
  /** For https upstreams with self-signed certificates. */
  upstream_tls_verify: z.boolean().default(true),
  /** postgres sockets: how the connector logs in; passwords and keys stay here (an environment variable or files). */
  postgres: postgresLogin.optional(),
}).strict();

export const connectorConfigSchema = z.object({
  server: z.string().url(),
  /** Edges to keep tunnels to (default: the server); connections are spread across them. */
  edges: z.array(z.string().url()).min(1).max(16).optional(),
  credentials: z.string().min(1).default('connector-credentials.json'),
  token: z.string().optional(),
  proxy: z.string().url().optional(),
  connections: z.number().int().min(1).max(16).default(2),
  sockets: z.array(connectorSocketSchema).min(1),
}).strict();

export type ConnectorConfig = z.infer<typeof connectorConfigSchema>;
export type ConnectorSocket = z.infer<typeof connectorSocketSchema>;
export type PostgresConfig = z.infer<typeof postgresLogin>;
/** One upstream login: the role and how it authenticates. */
export type PostgresLogin = Credentials & { readonly user: string };

/** Whether a login reaches the upstream over TLS: it presents a client certificate or verifies the server with a CA. */
export function usesTls(login: Credentials): boolean {
  return login.cert !== undefined || login.ca !== undefined;
}

/**
 * The login for a session: the default without a role (or for the default's own role), else the
 * role's entry; undefined for a role this connector does not know.
 */
export function postgresLoginFor(config: PostgresConfig, role: string | undefined): PostgresLogin | undefined {
  const { roles, ...fallback } = config;
  if (role === undefined || role === config.user) return fallback;
  const entry = roles !== undefined && Object.hasOwn(roles, role) ? roles[role] : undefined;
  return entry && { ...entry, user: role };
}

/** Every mistake of a file in one line, so a user fixes them in one go rather than one per run. */
export function parseConnectorConfig(text: string, source: string): ConnectorConfig {
  const raw = parseConfigYaml(text, source);
  const result = connectorConfigSchema.safeParse(raw);
  if (!result.success) throw new PosternError('config_invalid', problemsLine(source, result.error.issues.map(issueLine)));
  const problems: string[] = [];
  const names = new Set<string>();
  result.data.sockets.forEach((socket, i) => {
    if (names.has(socket.name)) problems.push(`sockets[${i}].name: "${socket.name}" is listed twice`);
    names.add(socket.name);
    const scheme = new URL(socket.upstream).protocol;
    if ((socket.type === 'postgres') !== (socket.postgres !== undefined)) problems.push(`sockets[${i}].postgres: a postgres login goes with type postgres, and type postgres needs one`);
    if (carriesTcp(socket.type) ? scheme !== 'tcp:' : scheme === 'tcp:') {
      problems.push(`sockets[${i}].upstream: "${socket.name}" of type ${socket.type} cannot use a ${scheme} upstream`);
    }
  });
  if (problems.length > 0) throw new PosternError('config_invalid', problemsLine(source, problems));
  return result.data;
}

/** The login's files taken relative to `base`. */
function resolveFiles<T extends Credentials>(login: T, base: string): T {
  const files = (['password_file', 'cert', 'key', 'ca'] as const).filter((k) => login[k] !== undefined);
  return { ...login, ...Object.fromEntries(files.map((k) => [k, resolve(base, login[k]!)])) };
}

/** Reads the file; relative paths inside it are taken relative to the file. */
export async function loadConnectorConfig(path: string): Promise<ConnectorConfig> {
  const text = await readConfigFile(path);
  const config = parseConnectorConfig(text, path);
  const base = dirname(resolve(path));
  const sockets = config.sockets.map((s) => {
    if (!s.postgres) return s;
    const { roles, ...login } = s.postgres;
    const resolvedRoles = roles && Object.fromEntries(Object.entries(roles).map(([role, entry]) => [role, resolveFiles(entry, base)]));
    return { ...s, postgres: { ...resolveFiles(login, base), ...(resolvedRoles ? { roles: resolvedRoles } : {}) } };
  });
  return { ...config, sockets, credentials: resolve(base, config.credentials) };
}
