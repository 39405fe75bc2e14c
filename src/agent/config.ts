// The agent's YAML file: where the control plane is, which CA to trust (a pin, as connectors
// do), how to attest, and whether to report host facts. It names no credentials file: the
// agent's key lives in memory only.
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
}).strict().superRefine((c, ctx) => {
  const seen = new Set<string>();
  for (const [i, s] of c.services.entries()) {
    const key = `${s.namespace}/${s.name}`;
    if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['services', i, 'name'], message: `${key} is declared twice` });
    seen.add(key);
  }
  if (c.services.length > 0 && !c.workload_api) ctx.addIssue({ code: 'custom', path: ['workload_api'], message: 'required when services are declared (socket: /run/postern/workload.sock)' });
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
