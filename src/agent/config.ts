// The agent's YAML file: where the control plane is, which CA to trust (a pin, as connectors
// do), how to attest, whether to report host facts, the services on the host and the mesh
// between them (mesh.ts). It names no credentials file: the agent's key lives in memory only.
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { PosternError } from '../errors.js';
import { issueLine } from '../zod-issues.js';
import { parseConfigYaml, problemsLine, readConfigFile } from '../config-file.js';
import { agentServiceSchema, workloadApiSchema } from './services.js';

const joinTokenAttestation = z.object({
  method: z.literal('join_token'),
  /** `pat1.<secret>.<ca-pin>` from `postern agent token create`; its pin is the CA pin. */
  token: z.string().min(1).optional(),
  token_file: z.string().min(1).optional(),
}).strict().refine((a) => (a.token === undefined) !== (a.token_file === undefined), 'give exactly one of token and token_file');

const jwtAttestation = z.object({
  method: z.literal('jwt'),
  /** The trusted issuer's name on the control plane (`postern agent issuer ls`). */
  issuer: z.string().min(1),
  /** Read again at every attestation (Kubernetes and CI runners rotate it). */
  token_file: z.string().min(1),
}).strict();

/** `host:port`, `[v6]:port`; the host is required. */
const hostPort = z.string().transform((value, ctx) => {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not host:port (e.g. 127.0.0.1:7001)` });
    return z.NEVER;
  }
  return { host: match[1] ?? match[2]!, port };
});

/** Only local processes may use a dependency's listener: it speaks with this host's service identities. */
const isLoopback = (host: string) => host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));

const meshOutbound = z.object({
  /** The local listener the service's code connects to instead of the destination. */
  listen: hostPort.refine((a) => isLoopback(a.host), 'must be a loopback address (127.0.0.1 or ::1): only local processes may call through it'),
  /** `namespace/name` of the destination service. */
  to: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be namespace/name of a service (e.g. shop/orders)'),
  /** The destination agent's mesh listener. */
  address: hostPort,
  /** tcp: bytes after mutual TLS; http: a proxy that adds a JWT-SVID to each request. */
  protocol: z.enum(['tcp', 'http']).default('tcp'),
}).strict();

const meshSchema = z.object({
  /** Inbound mutual TLS for the declared services that have a port; absent: this host only calls out. */
  listen: hostPort.optional(),
  outbound: z.array(meshOutbound).default([]),
}).strict();

export type MeshConfig = z.infer<typeof meshSchema>;
export type MeshOutbound = MeshConfig['outbound'][number];

export const agentConfigSchema = z.object({
  server: z.string().url(),
  /** The CA pin (`postern agent token create` prints it inside tokens; `GET /api/v1/ca` has it). Required unless the token carries it. */
  ca_pin: z.string().min(20).optional(),
  attestation: z.discriminatedUnion('method', [joinTokenAttestation, jwtAttestation]),
  /** Report hostname, OS, kernel and machine id (self-asserted). */
  facts: z.boolean().default(true),
  /** The services on this host the agent obtains identities for (services.ts). */
  services: z.array(agentServiceSchema).default([]),
  /** The local Workload API (workload-api.ts); required when services are declared. */
  workload_api: workloadApiSchema.optional(),
  /** Service-to-service traffic: mutual TLS between agents, decided by the policies (mesh.ts). */
  mesh: meshSchema.optional(),
}).strict().superRefine((c, ctx) => {
  const seen = new Set<string>();
  for (const [i, s] of c.services.entries()) {
    const key = `${s.namespace}/${s.name}`;
    if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['services', i, 'name'], message: `${key} is declared twice` });
    seen.add(key);
  }
  if (c.services.length > 0 && !c.workload_api) ctx.addIssue({ code: 'custom', path: ['workload_api'], message: 'required when services are declared (socket: /run/postern/workload.sock)' });
  for (const [i, s] of c.services.entries()) {
    if (s.protocol === 'http' && s.port === undefined) ctx.addIssue({ code: 'custom', path: ['services', i, 'protocol'], message: 'is what the mesh speaks to the service\'s port: give port too' });
  }
  if (!c.mesh) return;
  if (c.mesh.listen && !c.services.some((s) => s.port !== undefined)) ctx.addIssue({ code: 'custom', path: ['mesh', 'listen'], message: 'no declared service has a port for it to receive on' });
  // The sender proves who calls by the calling process: a service without a selector cannot be recognised.
  if (c.mesh.outbound.length > 0 && !c.services.some((s) => s.process)) ctx.addIssue({ code: 'custom', path: ['mesh', 'outbound'], message: 'needs a declared service with a process selector (only such a service can call out)' });
  const listeners = new Set<string>();
  for (const [i, o] of c.mesh.outbound.entries()) {
    const key = `${o.listen.host}:${o.listen.port}`;
    if (listeners.has(key)) ctx.addIssue({ code: 'custom', path: ['mesh', 'outbound', i, 'listen'], message: `${key} is used twice` });
    listeners.add(key);
  }
});

export type AgentConfig = z.infer<typeof agentConfigSchema>;

export function parseAgentConfig(text: string, source: string): AgentConfig {
  const raw = parseConfigYaml(text, source);
  const result = agentConfigSchema.safeParse(raw);
  if (!result.success) {
    throw new PosternError('config_invalid', problemsLine(source, result.error.issues.map(issueLine)));
  }
  if (result.data.attestation.method === 'jwt' && result.data.ca_pin === undefined) {
    throw new PosternError('config_invalid', `${source}: ca_pin: required with jwt attestation (a JWT carries no CA pin)`);
  }
  return result.data;
}

/** Reads the file; token files named in it are taken relative to it. */
export async function loadAgentConfig(path: string): Promise<AgentConfig> {
  const text = await readConfigFile(path);
  const config = parseAgentConfig(text, path);
  const base = dirname(resolve(path));
  const attestation = config.attestation.token_file === undefined ? config.attestation : { ...config.attestation, token_file: resolve(base, config.attestation.token_file) };
  const services = config.services.map((s) => (s.labels_file === undefined ? s : { ...s, labels_file: resolve(base, s.labels_file) }));
  const workloadApi = config.workload_api && { ...config.workload_api, socket: resolve(base, config.workload_api.socket) };
  return { ...config, attestation, services, ...(workloadApi ? { workload_api: workloadApi } : {}) } as AgentConfig;
}
