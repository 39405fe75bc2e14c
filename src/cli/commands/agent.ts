// `postern agent --config FILE` runs a workload agent in the foreground (prints its SPIFFE id,
// renews, serves its services' identities and, with `mesh:`, their mutual-TLS mesh, stops on
// SIGTERM, exits non-zero when its identity is revoked); `agent ls`, `agent
// revoke`, `agent token create` and `agent issuer add|ls|rm` manage agents from the control plane.
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { printJson, printTable } from '../output.js';
import { parseDuration } from '../server-config.js';
import { collect, parseTags } from '../list-flags.js';
import { createLogger } from '../logger.js';
import { onShutdownSignal } from '../signals.js';
import { Agent, AgentFlowLog, Mesh, MeshView, ServiceIdentities, WorkloadApi, loadAgentConfig } from '../../agent/index.js';
import type { AgentConfig, AgentIdentity, ServiceSvid } from '../../agent/index.js';
import type { AgentView } from '../../api-client/index.js';
import { PosternError } from '../../errors.js';

const pairs = (record: Record<string, string>) => Object.entries(record).map(([k, v]) => `${k}=${v}`).join(',');

async function runAgent(configPath: string, json: boolean): Promise<void> {
  const config = await loadAgentConfig(configPath);
  const logger = createLogger('info');
  const agent = new Agent({ config, logger });
  const say = (identity: AgentIdentity, event: 'attested' | 'renewed') => {
    if (json) process.stdout.write(JSON.stringify({ event, agent: identity.agentId, spiffeId: identity.spiffeId, notAfter: identity.notAfter }) + '\n');
    else process.stdout.write(`${event === 'attested' ? 'agent identity' : 'renewed'} ${identity.spiffeId} (until ${identity.notAfter})\n`);
  };
  let attested = false;
  agent.on('identity', (identity: AgentIdentity) => {
    say(identity, attested ? 'renewed' : 'attested');
    attested = true;
  });
  agent.on('fatal', (err: PosternError) => {
    process.stderr.write(`postern: agent stopped: ${err.message}\n`);
    process.exit(1);
  });
  const identity = await agent.start();
  const services = config.services.length > 0 ? await startServices(config, agent, identity, logger, json) : undefined;
  const mesh = config.mesh && services ? await startMesh(config, agent, services.identities, logger, json) : undefined;
  // The identity's timers are unref'd: this keeps the process up until a signal.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  onShutdownSignal(async () => {
    await mesh?.stop();
    agent.stop();
    services?.identities.stop();
    await services?.api.close();
    clearInterval(keepAlive);
  });
}

/** The control plane's view to decide with, the flow log, and the mesh's listeners. */
async function startMesh(config: AgentConfig, agent: Agent, identities: ServiceIdentities, logger: ReturnType<typeof createLogger>, json: boolean) {
  const view = new MeshView({ server: config.server, agentIdentity: () => agent.identity, logger });
  await view.start();
  const flowLog = new AgentFlowLog({ server: config.server, agentIdentity: () => agent.identity, logger });
  const mesh = new Mesh({ config: config.mesh!, identities, authority: view, flowLog, agentId: () => agent.identity?.agentId, logger });
  try {
    await mesh.start();
  } catch (err) {
    view.stop();
    await flowLog.stop();
    throw err;
  }
  const say = (line: Record<string, unknown>, text: string) => process.stdout.write(json ? JSON.stringify(line) + '\n' : `${text}\n`);
  const address = mesh.inboundAddress();
  if (address) say({ event: 'mesh.listen', address: `${address.address}:${address.port}` }, `mesh: services reachable on ${address.address}:${address.port}`);
  for (const o of config.mesh!.outbound) {
    const local = `${o.listen.host}:${o.listen.port}`;
    say({ event: 'mesh.outbound', address: local, to: o.to, protocol: o.protocol }, `mesh: ${local} → ${o.to} (${o.protocol})`);
  }
  return {
    stop: async () => {
      await mesh.stop();
      view.stop();
      await flowLog.stop();
    },
  };
}

/** The declared services' identities and the Workload API that hands them out. */
async function startServices(config: AgentConfig, agent: Agent, identity: AgentIdentity, logger: ReturnType<typeof createLogger>, json: boolean) {
  const identities = new ServiceIdentities({
    server: config.server, services: config.services, agentIdentity: () => agent.identity, trustDomain: new URL(identity.spiffeId).host, logger,
  });
  identities.on('svid', (svid: ServiceSvid) => {
    if (json) process.stdout.write(JSON.stringify({ event: 'svid', spiffeId: svid.spiffeId, notAfter: svid.notAfter }) + '\n');
    else process.stdout.write(`service identity ${svid.spiffeId} (until ${svid.notAfter})\n`);
  });
  await identities.start();
  const api = new WorkloadApi({ socketPath: config.workload_api!.socket, mode: config.workload_api!.mode, identities, logger });
  await api.listen();
  if (!json) process.stdout.write(`workload API on ${config.workload_api!.socket}\n`);
  return { identities, api };
}

export function registerAgent(program: Command, context: () => CliContext): void {
  const agent = program.command('agent')
    .description('workload agents: attested, rotating identities for hosts and services')
    .option('--config <file>', 'run an agent from this YAML file (server, ca_pin, attestation, facts)')
    .action(async (options: { config?: string }) => {
      if (!options.config) throw new PosternError('config_invalid', 'pass --config agent.yaml to run an agent, or a subcommand (`postern agent --help`)');
      await runAgent(options.config, context().json);
    });
  agent.command('ls')
    .description('list agents with their attributes')
    .option('--after <id>', 'the page after this agent id')
    .option('--limit <n>', 'agents per page', '100')
    .action(async (options: { after?: string; limit: string }) => {
      const ctx = context();
      const query = new URLSearchParams({ limit: options.limit, ...(options.after ? { after: options.after } : {}) });
      const { agents, next } = await ctx.client().get<{ agents: AgentView[]; next?: string }>(`/api/v1/agents?${query}`);
      if (ctx.json) return printJson({ agents, ...(next ? { next } : {}) });
      printTable(agents.map((a) => ({ ...a, attributes: pairs(a.attributes), selfAsserted: pairs(a.selfAsserted), revoked: a.revokedAt ? 'yes' : 'no' })),
        ['id', 'name', 'method', 'spiffeId', 'attributes', 'selfAsserted', 'certNotAfter', 'revoked']);
      if (next) process.stderr.write(`more: postern agent ls --after ${next}\n`);
    });
  agent.command('revoke <id>')
    .description('revoke an agent: its next renewal (and any re-attestation) fails')
    .action(async (id: string) => {
      const ctx = context();
      await ctx.client().delete(`/api/v1/agents/${encodeURIComponent(id)}`);
      if (ctx.json) printJson({ revoked: id });
      else process.stdout.write(`revoked agent ${id}\n`);
    });
  agent.command('token').description('one-time join tokens for agents').command('create')
    .description('create a join token (an agent attests with it once)')
    .option('--name <name>', 'name the agent will get')
    .option('--ttl <duration>', 'how long the token stays usable', '1h')
    .option('--attr <key=value>', 'an attribute the agent gets, vouched for by you (repeatable)', collect)
    .option('--trust-facts', 'trust the host facts the agent reports (they become attributes)')
    .action(async (options: { name?: string; ttl: string; attr?: string[]; trustFacts?: boolean }) => {
      const ctx = context();
      const attributes = parseTags(options.attr, '--attr');
      const created = await ctx.client().post<{ token: string; name: string; expiresAt: string }>('/api/v1/agents/tokens', {
        ...(options.name ? { name: options.name } : {}), ttl_seconds: Math.round(parseDuration(options.ttl) / 1000),
        ...(attributes ? { attributes } : {}), ...(options.trustFacts ? { trust_facts: true } : {}),
      });
      if (ctx.json) return printJson(created);
      process.stdout.write(`${created.token}\n`);
      process.stderr.write(`join token for agent "${created.name}", usable once until ${created.expiresAt}\n`);
    });
  const issuer = agent.command('issuer').description('JWT issuers trusted for agent attestation');
  issuer.command('add <name>')
    .description('trust JWTs of an issuer (exact iss, one audience, keys from its JWKS)')
    .requiredOption('--issuer <url>', 'the iss claim tokens must carry')
    .requiredOption('--audience <aud>', 'the aud tokens must carry')
    .requiredOption('--jwks-url <url>', 'where the issuer publishes its keys')
    .option('--claim <attribute=claim>', 'map a claim (dotted path) to an agent attribute (repeatable)', collect)
    .option('--alg <alg>', 'an accepted algorithm (repeatable; default RS256, ES256)', collect)
    .option('--max-skew <seconds>', 'clock skew tolerated on exp/nbf', '60')
    .option('--trust-facts', 'trust the host facts such agents report')
    .action(async (name: string, options: { issuer: string; audience: string; jwksUrl: string; claim?: string[]; alg?: string[]; maxSkew: string; trustFacts?: boolean }) => {
      const ctx = context();
      const created = await ctx.client().post<Record<string, unknown>>('/api/v1/agents/issuers', {
        name, issuer: options.issuer, audience: options.audience, jwks_url: options.jwksUrl, claims: parseTags(options.claim, '--claim') ?? {},
        ...(options.alg ? { algorithms: options.alg } : {}), max_skew_seconds: Number(options.maxSkew), trust_facts: options.trustFacts ?? false,
      });
      if (ctx.json) return printJson(created);
      process.stdout.write(`trusting JWT issuer "${name}" (${options.issuer})\n`);
    });
  issuer.command('ls')
    .description('list trusted JWT issuers')
    .action(async () => {
      const ctx = context();
      const { issuers } = await ctx.client().get<{ issuers: { claims: Record<string, string>; algorithms: string[] }[] }>('/api/v1/agents/issuers');
      if (ctx.json) return printJson(issuers);
      printTable(issuers.map((i) => ({ ...i, claims: pairs(i.claims), algorithms: i.algorithms.join(',') })), ['name', 'issuer', 'audience', 'jwksUrl', 'claims', 'algorithms', 'maxSkewSeconds', 'trustFacts']);
    });
  issuer.command('rm <name>')
    .description('stop trusting an issuer (agents attested by it keep their identity until it expires)')
    .action(async (name: string) => {
      const ctx = context();
      await ctx.client().delete(`/api/v1/agents/issuers/${encodeURIComponent(name)}`);
      if (ctx.json) printJson({ removed: name });
      else process.stdout.write(`removed JWT issuer ${name}\n`);
    });
}
