// `postern service ls`: the services agents declared and the control plane accepted (their
// SPIFFE ids, the agent that declared each last, ports, process selectors and labels).
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { printJson, printTable } from '../output.js';
import type { ServiceView } from '../../api-client/index.js';

const pairs = (record: Record<string, string>) => Object.entries(record).map(([k, v]) => `${k}=${v}`).join(',');

export function registerService(program: Command, context: () => CliContext): void {
  const service = program.command('service').description('service identities declared by workload agents');
  service.command('ls')
    .description('list declared services (namespace/name order)')
    .option('--after <namespace/name>', 'the page after this service')
    .option('--limit <n>', 'services per page', '100')
    .action(async (options: { after?: string; limit: string }) => {
      const ctx = context();
      const query = new URLSearchParams({ limit: options.limit, ...(options.after ? { after: options.after } : {}) });
      const { services, next } = await ctx.client().get<{ services: ServiceView[]; next?: string }>(`/api/v1/services?${query}`);
      if (ctx.json) return printJson({ services, ...(next ? { next } : {}) });
      printTable(services.map((s) => ({ ...s, port: s.port ?? '', process: s.process ? `${s.process.exe}${s.process.uid !== undefined ? ` uid=${s.process.uid}` : ''}${s.process.sha256 ? ' sha256' : ''}` : '', labels: pairs(s.labels) })),
        ['id', 'spiffeId', 'agentId', 'port', 'process', 'labels', 'updatedAt']);
      if (next) process.stderr.write(`more: postern service ls --after ${next}\n`);
    });
}
