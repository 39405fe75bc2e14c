// `postern audit …`: read the audit trail — search it, or tail it (and follow with -f). Lines
// read like "joe@corp.com POST /admin from 203.0.113.7 (RU): denied by rule corp/no-writes".
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { printJson } from '../output.js';
import { describeEvent } from '../../reporting/index.js';
import type { AuditEvent } from '../../reporting/index.js';

function printEvent(ctx: CliContext, event: AuditEvent): void {
  process.stdout.write(ctx.json ? `${JSON.stringify(event)}\n` : `${event.at}  #${event.id}  ${describeEvent(event)}\n`);
}

interface Filters {
  user?: string;
  socket?: string;
  type?: string;
  decision?: string;
  since?: string;
  until?: string;
}

function queryOf(filters: Filters, extra: Record<string, string>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...filters, ...extra })) if (value !== undefined) params.set(key, value);
  const text = params.toString();
  return text ? `?${text}` : '';
}

const addFilters = (command: Command) => command
  .option('--user <email>', 'events about this person')
  .option('--socket <name>', 'events on this socket')
  .option('--type <type>', 'e.g. access.denied, http.request, connection.close, admin.change')
  .option('--decision <allow|deny>', 'only allowed or denied')
  .option('--since <time>', 'ISO 8601, inclusive')
  .option('--until <time>', 'ISO 8601, exclusive');

export function registerAudit(program: Command, context: () => CliContext): void {
  const audit = program.command('audit').description('the audit trail: decisions, connections, HTTP requests, admin changes');
  addFilters(audit.command('search').description('find events (oldest first)'))
    .option('--limit <n>', 'at most this many', '100')
    .option('--after <id>', 'only events after this id')
    .action(async (options: Filters & { limit: string; after?: string }) => {
      const ctx = context();
      const { limit, after, ...filters } = options;
      const { events } = await ctx.client().get<{ events: AuditEvent[] }>(`/api/v1/audit${queryOf(filters, { limit, ...(after ? { after } : {}) })}`);
      if (ctx.json) return printJson(events);
      for (const event of events) printEvent(ctx, event);
      if (events.length === 0) process.stdout.write('(none)\n');
    });
  addFilters(audit.command('tail').description('the last events; with -f, keep printing new ones'))
    .option('-n, --lines <n>', 'how many to start with', '20')
    .option('-f, --follow', 'keep following until interrupted')
    .action(async (options: Filters & { lines: string; follow?: boolean }) => {
      const ctx = context();
      const { lines, follow, ...filters } = options;
      const { events } = await ctx.client().get<{ events: AuditEvent[] }>(`/api/v1/audit${queryOf(filters, { limit: lines, last: 'true' })}`);
      for (const event of events) printEvent(ctx, event);
      if (!follow) return;
      const after = String(events.at(-1)?.id ?? (await ctx.client().get<{ events: AuditEvent[] }>(`/api/v1/audit?limit=1&last=true`)).events[0]?.id ?? 0);
      await ctx.client().streamLines(`/api/v1/audit/stream${queryOf(filters, { after })}`, (line) => printEvent(ctx, JSON.parse(line) as AuditEvent));
    });
}
