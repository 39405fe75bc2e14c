// `postern server` settings: flags > POSTERN_* env > YAML file > defaults, validated once
// into an immutable value with one-line errors that name the setting.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { PosternError, errorMessage } from '../errors.js';
import { formatZodIssue } from '../zod-issues.js';
import { dataFiles, defaultDataDir } from './paths.js';
import { DEFAULT_ADMIN_GROUP } from '../control/index.js';
import type { ConfiguredProvider } from '../control/index.js';
import { SYSLOG_FACILITIES } from '../reporting/index.js';
import type { SyslogFacility } from '../reporting/index.js';

const listenSchema = z.string().transform((value, ctx) => {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not host:port (e.g. 127.0.0.1:8443)` });
    return z.NEVER;
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
});

/** `65536`, `512KiB`, `64MiB`, `1GiB`: a byte count. */
const sizeSchema = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const match = /^(\d+)\s*(B|KiB|MiB|GiB)?$/i.exec(String(value).trim());
  if (!match) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size such as 65536, 512KiB or 64MiB` });
    return z.NEVER;
  }
  const unit = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 }[(match[2] ?? 'b').toLowerCase() as 'b' | 'kib' | 'mib' | 'gib'];
  return Number(match[1]) * unit;
});

const durationSchema = z.string().regex(/^\d+(ms|s|m|h|d)$/, 'must be a duration such as 30m, 24h or 7d').transform(parseDuration);

const exporterSchema = z.discriminatedUnion('kind', [
  z.object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a lower-case name'),
    kind: z.literal('webhook'),
    url: z.url({ protocol: /^https?$/ }),
    format: z.enum(['json', 'jsonl']).optional(),
    /** HMAC-SHA256 of the body in x-postern-signature, from the named environment variable. */
    secret_env: z.string().min(1).optional(),
  }).strict(),
  z.object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a lower-case name'),
    kind: z.literal('syslog'),
    /** udp://host:514 or tcp://host:6514 (RFC 5424; octet counting over TCP). */
    url: z.string().regex(/^(udp|tcp):\/\/[^/]+:\d+$/, 'must be udp://host:port or tcp://host:port'),
    facility: z.enum(Object.keys(SYSLOG_FACILITIES) as [SyslogFacility, ...SyslogFacility[]]).optional(),
  }).strict(),
]);

export type ExporterSettings = z.infer<typeof exporterSchema>;

const fileSchema = z.object({
  listen: z.string().optional(),
  domain: z.string().optional(),
  data_dir: z.string().optional(),
  db: z.string().optional(),
  role: z.string().optional(),
  public_port: z.number().int().optional(),
  connector_cert_ttl: z.string().optional(),
  agent_cert_ttl: z.string().optional(),
  agent_trust_domain: z.string().optional(),
  session_ttl: z.string().optional(),
  session_idle: z.string().optional(),
  /** Sign-in providers applied at start (idempotent); every other key of an entry is the provider's config. */
  identity_providers: z.array(z.object({
    name: z.string(),
    kind: z.enum(['oidc', 'github', 'saml']),
    display_name: z.string().optional(),
    client_secret: z.string().min(1).optional(),
    client_secret_env: z.string().min(1).optional(),
    client_secret_file: z.string().min(1).optional(),
    disabled: z.boolean().optional(),
  }).catchall(z.unknown())).optional(),
  /** Load balancers whose X-Forwarded-For / PROXY protocol is believed (CIDRs). */
  trusted_proxies: z.array(z.string()).optional(),
  /** A MaxMind GeoLite2/GeoIP2 .mmdb file instead of the bundled country data. */
  geoip_file: z.string().optional(),
  /** HTTP front: time for a request head, longest pause in a body, idle keep-alive. */
  header_timeout: z.string().optional(),
  body_idle_timeout: z.string().optional(),
  keep_alive_timeout: z.string().optional(),
  /** Open upstream streams one client address may hold on public sockets. */
  max_streams_per_client: z.number().int().optional(),
  /** Where the audit trail is also sent; each resumes from its last delivered event. */
  audit_exporters: z.array(exporterSchema).optional(),
  /** Terminal bytes one recorded session may hold; past it recording stops (audited), the session goes on. */
  recording_max_bytes: z.union([z.number().int(), z.string()]).optional(),
  /** Members of this group are admins with their own sign-in. */
  admin_group: z.string().optional(),
}).strict();

const settingsSchema = z.object({
  listen: listenSchema,
  domain: z.string().regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i, 'must be a DNS name such as localhost or postern.example.com').transform((d) => d.toLowerCase()),
  dataDir: z.string().min(1),
  db: z.string().min(1),
  role: z.enum(['all', 'control', 'edge']),
  publicPort: z.number().int().min(1).max(65535).optional(),
  connectorCertTtl: durationSchema,
  agentCertTtl: durationSchema.refine((ms) => ms >= 2_000, 'must be at least 2s'),
  /** SPIFFE trust domain of agent identities; default: the domain. */
  agentTrustDomain: z.string().regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'must be a lower-case DNS name such as example.org').optional(),
  sessionTtl: durationSchema,
  sessionIdle: durationSchema,
  identityProviders: z.array(z.custom<ConfiguredProvider>()).optional(),
  trustedProxies: z.array(z.string().refine((v) => /^[0-9a-f.:]+(\/\d{1,3})?$/i.test(v), 'must be IP addresses or CIDRs')),
  geoipFile: z.string().min(1).optional(),
  headerTimeout: durationSchema.refine((ms) => ms >= 1_000, 'must be at least 1s'),
  bodyIdleTimeout: durationSchema.refine((ms) => ms >= 1_000, 'must be at least 1s'),
  keepAliveTimeout: durationSchema.refine((ms) => ms >= 1_000, 'must be at least 1s'),
  maxStreamsPerClient: z.number().int().min(1).max(1_000_000),
  auditExporters: z.array(exporterSchema),
  recordingMaxBytes: sizeSchema.refine((n) => n >= 1024 && n <= 2 ** 40, 'must be from 1KiB to 1024GiB'),
  adminGroup: z.string().min(1, 'must name a group').max(256).refine((g) => g.trim() === g, 'must not start or end with spaces'),
  /** The built dashboard to serve instead of the one built with Postern. */
  webRoot: z.string().min(1).optional(),
});

export type ServerSettings = z.infer<typeof settingsSchema>;

export interface ServerFlags {
  config?: string;
  listen?: string;
  domain?: string;
  dataDir?: string;
  db?: string;
  role?: string;
  publicPort?: string;
  connectorCertTtl?: string;
  agentCertTtl?: string;
  agentTrustDomain?: string;
  sessionTtl?: string;
  sessionIdle?: string;
  trustedProxies?: string;
  geoipFile?: string;
  headerTimeout?: string;
  bodyIdleTimeout?: string;
  keepAliveTimeout?: string;
  maxStreamsPerClient?: string;
  recordingMaxBytes?: string;
  adminGroup?: string;
  webRoot?: string;
}

export function resolveServerSettings(flags: ServerFlags, env: NodeJS.ProcessEnv = process.env): ServerSettings {
  const configPath = flags.config ?? env.POSTERN_CONFIG;
  const file = configPath ? readConfigFile(configPath) : {};
  const dataDir = resolve(flags.dataDir ?? env.POSTERN_DATA_DIR ?? file.data_dir ?? defaultDataDir(env));
  const publicPort = flags.publicPort ?? env.POSTERN_PUBLIC_PORT ?? file.public_port;
  const raw = {
    listen: flags.listen ?? env.POSTERN_LISTEN ?? file.listen ?? '127.0.0.1:8443',
    domain: flags.domain ?? env.POSTERN_DOMAIN ?? file.domain ?? 'localhost',
    dataDir,
    db: flags.db ?? env.POSTERN_DB ?? file.db ?? join(dataDir, dataFiles.database),
    role: flags.role ?? env.POSTERN_ROLE ?? file.role ?? 'all',
    ...(publicPort !== undefined ? { publicPort: Number(publicPort) } : {}),
    connectorCertTtl: flags.connectorCertTtl ?? env.POSTERN_CONNECTOR_CERT_TTL ?? file.connector_cert_ttl ?? '24h',
    agentCertTtl: flags.agentCertTtl ?? env.POSTERN_AGENT_CERT_TTL ?? file.agent_cert_ttl ?? '1h',
    ...((flags.agentTrustDomain ?? env.POSTERN_AGENT_TRUST_DOMAIN ?? file.agent_trust_domain) ? { agentTrustDomain: flags.agentTrustDomain ?? env.POSTERN_AGENT_TRUST_DOMAIN ?? file.agent_trust_domain } : {}),
    sessionTtl: flags.sessionTtl ?? env.POSTERN_SESSION_TTL ?? file.session_ttl ?? '12h',
    sessionIdle: flags.sessionIdle ?? env.POSTERN_SESSION_IDLE ?? file.session_idle ?? '2h',
    trustedProxies: (flags.trustedProxies ?? env.POSTERN_TRUSTED_PROXIES)?.split(',').map((v) => v.trim()).filter(Boolean) ?? file.trusted_proxies ?? [],
    ...((flags.geoipFile ?? env.POSTERN_GEOIP_FILE ?? file.geoip_file) ? { geoipFile: resolve(flags.geoipFile ?? env.POSTERN_GEOIP_FILE ?? file.geoip_file!) } : {}),
    headerTimeout: flags.headerTimeout ?? env.POSTERN_HEADER_TIMEOUT ?? file.header_timeout ?? '30s',
    bodyIdleTimeout: flags.bodyIdleTimeout ?? env.POSTERN_BODY_IDLE_TIMEOUT ?? file.body_idle_timeout ?? '30s',
    keepAliveTimeout: flags.keepAliveTimeout ?? env.POSTERN_KEEP_ALIVE_TIMEOUT ?? file.keep_alive_timeout ?? '65s',
    maxStreamsPerClient: Number(flags.maxStreamsPerClient ?? env.POSTERN_MAX_STREAMS_PER_CLIENT ?? file.max_streams_per_client ?? 256),
    auditExporters: file.audit_exporters ?? [],
    recordingMaxBytes: flags.recordingMaxBytes ?? env.POSTERN_RECORDING_MAX_BYTES ?? file.recording_max_bytes ?? '64MiB',
    adminGroup: flags.adminGroup ?? env.POSTERN_ADMIN_GROUP ?? file.admin_group ?? DEFAULT_ADMIN_GROUP,
    ...((flags.webRoot ?? env.POSTERN_WEB_ROOT) ? { webRoot: resolve((flags.webRoot ?? env.POSTERN_WEB_ROOT)!) } : {}),
    ...(file.identity_providers ? { identityProviders: file.identity_providers.map((entry) => configuredProvider(entry, env, configPath ?? '')) } : {}),
  };
  const result = settingsSchema.safeParse(raw);
  // The first path segment is a setting's name: say it as its flag is spelled (dataDir → data-dir).
  if (!result.success) throw new PosternError('config_invalid', formatZodIssue(result.error).replace(/^[a-z][A-Za-z]*/, (name) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)));
  return result.data;
}

function readConfigFile(path: string): z.infer<typeof fileSchema> {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new PosternError('config_invalid', `${path}: ${errorMessage(cause).split('\n')[0]}`, { cause });
  }
  const result = fileSchema.safeParse(raw ?? {});
  if (!result.success) throw new PosternError('config_invalid', `${path}: ${formatZodIssue(result.error)}`);
  return result.data;
}

/** One `identity_providers:` entry; the secret comes from the file, an env variable or a file named there. */
function configuredProvider(entry: NonNullable<z.infer<typeof fileSchema>['identity_providers']>[number], env: NodeJS.ProcessEnv, configPath: string): ConfiguredProvider {
  const { name, kind, display_name: displayName, client_secret: inline, client_secret_env: fromEnv, client_secret_file: fromFile, disabled, ...config } = entry;
  const where = `${configPath}: identity_providers: ${name}`;
  if ([inline, fromEnv, fromFile].filter((v) => v !== undefined).length > 1) throw new PosternError('config_invalid', `${where}: give only one of client_secret, client_secret_env, client_secret_file`);
  let clientSecret = inline;
  if (fromEnv !== undefined) {
    clientSecret = env[fromEnv];
    if (!clientSecret) throw new PosternError('config_invalid', `${where}: the environment variable ${fromEnv} (client_secret_env) is not set`);
  }
  if (fromFile !== undefined) {
    try {
      clientSecret = readFileSync(resolve(configPath ? join(configPath, '..') : '.', fromFile), 'utf8').trim();
    } catch (cause) {
      throw new PosternError('config_invalid', `${where}: cannot read client_secret_file: ${errorMessage(cause)}`, { cause });
    }
  }
  return {
    name, kind, config,
    ...(displayName !== undefined ? { displayName } : {}),
    ...(clientSecret !== undefined ? { clientSecret } : {}),
    ...(disabled !== undefined ? { disabled } : {}),
  };
}

export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!match) throw new PosternError('config_invalid', `"${text}" is not a duration such as 30m, 24h or 7d`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
