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

export const connectorSocketSchema = z.object({
  name: socketNameSchema,
  /** tls and ssh sockets are piped as raw TCP to a tcp:// upstream (the edge terminates ssh itself). */
  type: z.enum(SOCKET_TYPES).default('http'),
  upstream: upstreamUrl,
  /** For https upstreams with self-signed certificates. */
  upstream_tls_verify: z.boolean().default(true),
  /** postgres sockets: the role the connector logs in as; the password stays here (an environment variable or a file). */
  postgres: z.object({
    user: z.string().min(1).max(63),
    password_env: z.string().min(1).optional(),
    password_file: z.string().min(1).optional(),
  }).strict().refine((p) => !(p.password_env && p.password_file), 'password_env or password_file, not both').optional(),
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

/** Reads the file; relative paths inside it are taken relative to the file. */
export async function loadConnectorConfig(path: string): Promise<ConnectorConfig> {
  const text = await readConfigFile(path);
  const config = parseConnectorConfig(text, path);
  const base = dirname(resolve(path));
  const sockets = config.sockets.map((s) => (s.postgres?.password_file ? { ...s, postgres: { ...s.postgres, password_file: resolve(base, s.postgres.password_file) } } : s));
  return { ...config, sockets, credentials: resolve(base, config.credentials) };
}
