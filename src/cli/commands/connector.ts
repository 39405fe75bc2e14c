// `postern connector …`: join tokens, the list of enrolled connectors, revocation, and
// `connector start --config FILE`, which runs a connector in the foreground.
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { printJson, printTable } from '../output.js';
import { parseDuration } from '../server-config.js';
import { loadConnectorConfig } from '../../connector/index.js';
import { runConnector } from '../run-connector.js';
import { collect, parseTags } from '../list-flags.js';

export function registerConnector(program: Command, context: () => CliContext): void {
  const connector = program.command('connector').description('connectors: the outbound-only agents beside your services');
  const token = connector.command('token').description('one-time join tokens for enrolling connectors');
  token.command('create')
    .description('create a join token (use it once, in the connector\'s YAML or `connect`)')
    .option('--name <name>', 'name the enrolled connector will get')
    .option('--ttl <duration>', 'how long the token stays usable', '1h')
    .option('--socket <name>', 'a socket the connector will be bound to, i.e. may serve (repeatable; must exist)', collect)
    .option('--tag <key=value>', 'also bind every socket, now or later, with all these tags (repeatable pairs form one selector)', collect)
    .addHelpText('after', '\nA connector serves only the sockets it is bound to; without --socket or --tag it serves none\nuntil `postern socket update NAME --add-connector ID` binds one.')
    .action(async (options: { name?: string; ttl: string; socket?: string[]; tag?: string[] }) => {
      const ctx = context();
      const tags = parseTags(options.tag);
      const created = await ctx.client().post<{ id: string; token: string; name: string; expiresAt: string; sockets: string[]; socketTags: Record<string, string> | null }>('/api/v1/connectors/tokens', {
        ...(options.name ? { name: options.name } : {}), ttl_seconds: Math.round(parseDuration(options.ttl) / 1000),
        ...(options.socket ? { sockets: options.socket } : {}),
        ...(tags ? { tags } : {}),
      });
      if (ctx.json) return printJson(created);
      process.stdout.write(`${created.token}\n`);
      const selector = Object.entries(created.socketTags ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
      const binds = [...created.sockets, ...(selector ? [`every socket tagged ${selector}`] : [])];
      process.stderr.write(`join token for connector "${created.name}", usable once until ${created.expiresAt}; it may serve ${binds.length ? binds.join(', ') : 'no socket yet (bind one with `postern socket update NAME --add-connector ID`)'}\n`);
    });
  token.command('ls')
    .description('list join tokens')
    .action(async () => {
      const ctx = context();
      const { tokens } = await ctx.client().get<{ tokens: Record<string, unknown>[] }>('/api/v1/connectors/tokens');
      if (ctx.json) return printJson(tokens);
      printTable(tokens, ['id', 'connectorName', 'sockets', 'socketTags', 'expiresAt', 'usedAt', 'connectorId']);
    });
  connector.command('ls')
    .description('list enrolled connectors and their live tunnels')
    .action(async () => {
      const ctx = context();
      const { connectors } = await ctx.client().get<{ connectors: (Record<string, unknown> & { tunnels: unknown[] })[] }>('/api/v1/connectors');
      if (ctx.json) return printJson(connectors);
      printTable(connectors.map((c) => ({ ...c, tunnels: c.tunnels.length, revoked: c.revokedAt ? 'yes' : 'no' })), ['id', 'name', 'socketTags', 'tunnels', 'certNotAfter', 'revoked']);
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
