// `postern connector …`: join tokens, the list of enrolled connectors, revocation, and
// `connector start --config FILE`, which runs a connector in the foreground.
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { printJson, printTable } from '../output.js';
import { parseDuration } from '../server-config.js';
import { loadConnectorConfig } from '../../connector/config.js';
import { runConnector } from '../run-connector.js';

export function registerConnector(program: Command, context: () => CliContext): void {
  const connector = program.command('connector').description('connectors: the outbound-only agents beside your services');
  const token = connector.command('token').description('one-time join tokens for enrolling connectors');
  token.command('create')
    .description('create a join token (use it once, in the connector\'s YAML or `connect`)')
    .option('--name <name>', 'name the enrolled connector will get')
    .option('--ttl <duration>', 'how long the token stays usable', '1h')
    .action(async (options: { name?: string; ttl: string }) => {
      const ctx = context();
      const created = await ctx.client().post<{ id: string; token: string; name: string; expiresAt: string }>('/api/v1/connectors/tokens', {
        ...(options.name ? { name: options.name } : {}), ttl_seconds: Math.round(parseDuration(options.ttl) / 1000),
      });
      if (ctx.json) return printJson(created);
      process.stdout.write(`${created.token}\n`);
      process.stderr.write(`join token for connector "${created.name}", usable once until ${created.expiresAt}\n`);
    });
  token.command('ls')
    .description('list join tokens')
    .action(async () => {
      const ctx = context();
      const { tokens } = await ctx.client().get<{ tokens: Record<string, unknown>[] }>('/api/v1/connectors/tokens');
      if (ctx.json) return printJson(tokens);
      printTable(tokens, ['id', 'connectorName', 'expiresAt', 'usedAt', 'connectorId']);
    });
  connector.command('ls')
    .description('list enrolled connectors and their live tunnels')
    .action(async () => {
      const ctx = context();
      const { connectors } = await ctx.client().get<{ connectors: (Record<string, unknown> & { tunnels: unknown[] })[] }>('/api/v1/connectors');
      if (ctx.json) return printJson(connectors);
      printTable(connectors.map((c) => ({ ...c, tunnels: c.tunnels.length, revoked: c.revokedAt ? 'yes' : 'no' })), ['id', 'name', 'tunnels', 'certNotAfter', 'revoked']);
    });
  connector.command('revoke <id>')
    .description('revoke a connector: its tunnels are cut and it cannot reconnect')
    .action(async (id: string) => {
      const ctx = context();
      await ctx.client().delete(`/api/v1/connectors/${encodeURIComponent(id)}`);
      if (ctx.json) printJson({ revoked: id });
      else process.stdout.write(`revoked connector ${id}\n`);
    });
  connector.command('start')
    .description('run a connector from a YAML file (server, credentials, sockets with upstreams)')
    .requiredOption('--config <file>', 'connector YAML')
    .option('--proxy <url>', 'reach the edge through this HTTP proxy (WebSocket fallback)')
    .action(async (options: { config: string; proxy?: string }) => {
      const config = await loadConnectorConfig(options.config);
      await runConnector(config, { ...(options.proxy ? { proxy: options.proxy } : {}), json: context().json });
    });
}
