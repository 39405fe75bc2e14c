// `postern policy …`: apply policy files, list, show, diff against what is stored, history,
// delete, and `test`, which prints the decision and, for every rule, why it matched or not.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import type { CliContext } from '../context.js';
import { printJson, printTable } from '../output.js';
import { PosternError, errorMessage, isPosternError } from '../../errors.js';
import { diffLines, unifiedLines } from '../../line-diff.js';
import type { PolicyTestAnswer } from '../../control/index.js';
import { SSH_CHANNELS, describedSshAction } from '../../policy/index.js';

interface StoredPolicy {
  ref: string;
  namespace: string;
  name: string;
  version: number;
  document: Record<string, unknown>;
  updatedAt: string;
  coverage?: { covered: string[]; outside: { name: string; namespace: string }[]; unknown: string[] };
}

/** What a policy governs: named sockets (marking those it cannot reach), a tag selector or all. */
function governs(p: StoredPolicy): unknown {
  if (!p.document.sockets) return p.document.tags ?? '(all)';
  const c = p.coverage ?? { covered: p.document.sockets as string[], outside: [], unknown: [] };
  return [...c.covered, ...c.outside.map((o) => `${o.name} (not covered: in namespace "${o.namespace}")`), ...c.unknown.map((n) => `${n} (no such socket)`)];
}

async function readPolicyFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new PosternError('bad_request', `cannot read ${file}: ${errorMessage(err)}`);
  }
}

/** Errors from the server name the field; the file name goes in front. */
function inFile(file: string, err: unknown): never {
  if (isPosternError(err, 'bad_request')) throw new PosternError('bad_request', `${file}: ${err.message.replace(/^body: /, '')}`);
  throw err;
}

const refPath = (ref: string) => `/api/v1/policies/${encodeURIComponent(ref)}`;

export function registerPolicy(program: Command, context: () => CliContext): void {
  const policy = program.command('policy').description('access policies: who may reach which socket, from where, when, doing what');
  policy.command('apply')
    .description('create or update the policy in a YAML or JSON file')
    .requiredOption('-f, --file <file>', 'policy document')
    .action(async (options: { file: string }) => {
      const ctx = context();
      const text = await readPolicyFile(options.file);
      const answer = await ctx.client().put<{ policy: StoredPolicy; changed: boolean; warnings: string[] }>('/api/v1/policies', { text }).catch((err) => inFile(options.file, err));
      if (ctx.json) return printJson(answer);
      for (const warning of answer.warnings) process.stderr.write(`postern: warning: ${options.file}: ${warning}\n`);
      const { ref, version } = answer.policy;
      process.stdout.write(answer.changed ? `policy ${ref} applied (version ${version})\n` : `policy ${ref} unchanged (version ${version})\n`);
    });
  policy.command('ls').description('list policies').action(async () => {
    const ctx = context();
    const { policies } = await ctx.client().get<{ policies: StoredPolicy[] }>('/api/v1/policies');
    if (ctx.json) return printJson(policies);
    printTable(policies.map((p) => ({
      ...p, sockets: governs(p), rules: (p.document.rules as unknown[] | undefined)?.length ?? 0,
    })), ['ref', 'version', 'sockets', 'rules', 'updatedAt']);
  });
  policy.command('show <ref>').description('print a policy as YAML (ref = name or namespace/name)').action(async (ref: string) => {
    const ctx = context();
    const stored = await ctx.client().get<StoredPolicy>(refPath(ref));
    if (ctx.json) return printJson(stored);
    const gaps = [
      ...(stored.coverage?.outside ?? []).map((o) => `# does NOT govern socket ${o.name}: it is in namespace "${o.namespace}", outside ${stored.namespace || '""'}\n`),
      ...(stored.coverage?.unknown ?? []).map((name) => `# socket ${name} does not exist (yet)\n`),
    ];
    process.stdout.write(`# ${stored.ref}, version ${stored.version}, updated ${stored.updatedAt}\n${gaps.join('')}${toYaml(stored.document)}`);
  });
  policy.command('diff')
    .description('show what applying a file would change')
    .requiredOption('-f, --file <file>', 'policy document')
    .action(async (options: { file: string }) => {
      const ctx = context();
      const text = await readPolicyFile(options.file);
      const { document } = await ctx.client().post<{ document: Record<string, unknown> }>('/api/v1/policies/validate', { text }).catch((err) => inFile(options.file, err));
      const ref = document.namespace ? `${String(document.namespace)}/${String(document.name)}` : String(document.name);
      const stored = await ctx.client().get<StoredPolicy>(refPath(ref)).catch((err) => {
        if (isPosternError(err, 'not_found')) return undefined;
        throw err;
      });
      const lines = unifiedLines(diffLines(stored ? toYaml(stored.document) : '', toYaml(document)));
      const changed = lines.some((line) => !line.startsWith('  '));
      if (ctx.json) return printJson({ ref, exists: stored !== undefined, changed, diff: lines });
      process.stdout.write(`--- ${ref} ${stored ? `(version ${stored.version})` : '(new)'}\n+++ ${options.file}\n`);
      process.stdout.write(changed ? `${lines.join('\n')}\n` : '(no changes)\n');
    });
  policy.command('history <ref>').description('every version of a policy').action(async (ref: string) => {
    const ctx = context();
    const { versions } = await ctx.client().get<{ versions: { version: number; author: string; createdAt: string; document: unknown }[] }>(`${refPath(ref)}/versions`);
    if (ctx.json) return printJson(versions);
    printTable(versions.map((v) => ({ ...v, change: v.document === null ? 'deleted' : v.version === 1 ? 'created' : 'updated' })), ['version', 'change', 'author', 'createdAt']);
  });
  policy.command('delete <ref>').description('delete a policy (its history is kept)').action(async (ref: string) => {
    const ctx = context();
    await ctx.client().delete(refPath(ref));
    if (ctx.json) printJson({ deleted: ref });
    else process.stdout.write(`deleted policy ${ref}\n`);
  });
  policy.command('test')
    .description('decide a made-up request and explain every rule')
    .requiredOption('--socket <name>', 'socket name')
    .requiredOption('--email <email>', 'who')
    .option('--group <group...>', 'groups (default: the user\'s own)')
    .requiredOption('--ip <address>', 'client address')
    .option('--country <code>', 'ISO country (default: looked up from --ip)')
    .option('--at <time>', 'ISO 8601 time (default: now)')
    .option('--method <method>', 'HTTP method')
    .option('--path <path>', 'HTTP path')
    .option('--ssh-login <user>', 'SSH login user')
    .option('--ssh-channel <channel>', `SSH channel: ${SSH_CHANNELS.join(', ')}`)
    .option('--ssh-command <line>', 'an SSH exec\'s command line (alone: exec, or scp for `scp -t|-f …`)')
    .option('--database <name>', 'database name')
    .action(async (options: { socket: string; email: string; group?: string[]; ip: string; country?: string; at?: string; method?: string; path?: string; sshLogin?: string; sshChannel?: string; sshCommand?: string; database?: string }) => {
      const described = describedSshAction({ login: options.sshLogin, channel: options.sshChannel, command: options.sshCommand });
      if ('problem' in described) throw new PosternError('bad_request', `--ssh-${described.field}: ${described.problem}`);
      const ctx = context();
      const answer = await ctx.client().post<PolicyTestAnswer>('/api/v1/policies/test', {
        socket: options.socket, email: options.email, ip: options.ip,
        ...(options.group ? { groups: options.group } : {}), ...(options.country ? { country: options.country } : {}), ...(options.at ? { at: options.at } : {}),
        ...(options.method ? { method: options.method } : {}), ...(options.path ? { path: options.path } : {}),
        ...(options.sshLogin ? { ssh_login: options.sshLogin } : {}), ...(options.sshChannel ? { ssh_channel: options.sshChannel } : {}),
        ...(options.sshCommand !== undefined ? { ssh_command: options.sshCommand } : {}), ...(options.database ? { database: options.database } : {}),
      });
      if (ctx.json) return printJson(answer);
      // The server writes the explanation, so the CLI and the dashboard's test panel print the same lines.
      for (const line of answer.lines) process.stdout.write(`${line}\n`);
    });
}
