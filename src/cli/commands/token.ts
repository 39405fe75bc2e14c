// `postern token …`: service tokens for automation (CI jobs, scripts). A token's secret is
// printed once at creation; the server keeps only its hash.
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { printJson, printTable } from '../output.js';
import { API_TOKEN_SCOPES } from '../../store/index.js';

/** `--scope a,b --scope c` → [a, b, c]; the server checks each against the closed set. */
function collectScopes(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

type TokenView = {
  id: string;
  name: string;
  role: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
};

export function registerToken(program: Command, context: () => CliContext): void {
  const token = program.command('token').description('service tokens for automation (shown once, revocable)');
  token.command('create')
    .description('create a service token and print it once')
    .requiredOption('--name <name>', 'what it is for (letters, digits, . _ -)')
    .requiredOption('--scope <scope,...>', `what it may do, repeatable: ${API_TOKEN_SCOPES.join(', ')} (admin = everything)`, collectScopes, [])
    .action(async (options: { name: string; scope: string[] }) => {
      const ctx = context();
      const created = await ctx.client().post<TokenView & { token: string }>('/api/v1/tokens', { name: options.name, scopes: options.scope });
      if (ctx.json) return printJson(created);
      process.stdout.write(`${created.token}\n`);
      process.stderr.write(`service token "${created.name}" (${created.id}, scopes ${created.scopes.join(', ')}): store it now, it is not shown again\n`);
    });
  token.command('ls')
    .description('list API tokens (never their secrets)')
    .option('--all', 'include revoked tokens')
    .action(async (options: { all?: boolean }) => {
      const ctx = context();
      const { tokens } = await ctx.client().get<{ tokens: TokenView[] }>('/api/v1/tokens');
      const shown = options.all ? tokens : tokens.filter((t) => t.revokedAt === null);
      if (ctx.json) return printJson(shown);
      printTable(shown.map((t) => ({ ...t, scopes: t.scopes.join(',') })), ['id', 'name', 'role', 'scopes', 'createdAt', 'lastUsedAt', 'revokedAt']);
    });
  token.command('revoke <id>')
    .description('revoke a service token: it stops working at once')
    .action(async (id: string) => {
      const ctx = context();
      await ctx.client().delete(`/api/v1/tokens/${encodeURIComponent(id)}`);
      if (ctx.json) printJson({ revoked: id });
      else process.stdout.write(`revoked token ${id}\n`);
    });
}
