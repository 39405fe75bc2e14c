// `postern policy …`: apply policy files, list, show, diff against what is stored, history,
// delete, and `test`, which prints the decision and, for every rule, why it matched or not.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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

interface SuggestAnswer {
  policies: { ref: string; yaml: string; document: { rules: unknown[] } }[];
  uncovered: { kind: 'socket' | 'service'; socket: string; actor: string; action: string; count: number; why: string }[];
  flows: number;
  covered: number;
  yaml: string;
  truncated: boolean;
}

/** What a policy governs: named sockets (marking those it cannot reach), a tag selector or all. */
function governs(p: StoredPolicy): unknown {
  if (p.document.services) return (p.document.services as string[]).map((name) => `service ${name}`);
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
  policy.command('suggest')
    .description('write policies from the traffic observed (people on sockets, services calling services; allowed and would-deny), and report what enforcing them would refuse')
    .option('--namespace <namespace>', 'only sockets and services in this namespace (and below)')
    .option('--socket <name>', 'only this socket (no services)')
    .option('--service <name>', 'only the services of this name (no sockets)')
    .option('--since <when>', 'how far back: a duration (7d, 12h) or an ISO 8601 instant', '7d')
    .option('--min-flows <n>', 'leave out rules covering fewer flows (they show in the report)')
    .option('--alarm-for <duration>', 'the suggestions\' denials raise access.alarm this long after they are applied (0s: never)', '7d')
    .option('--out <dir>', 'write each policy to <dir>/<namespace-name>.yaml, ready for `policy apply -f`')
    .action(async (options: { namespace?: string; socket?: string; service?: string; since: string; minFlows?: string; alarmFor: string; out?: string }) => {
      if (options.socket && options.service) throw new PosternError('bad_request', 'policy suggest: give --socket or --service, not both');
      const ctx = context();
      const minFlows = options.minFlows === undefined ? undefined : Number(options.minFlows);
      if (minFlows !== undefined && (!Number.isInteger(minFlows) || minFlows < 1)) throw new PosternError('bad_request', `--min-flows: expected a whole number of at least 1, got ${options.minFlows}`);
      const answer = await ctx.client().post<SuggestAnswer>('/api/v1/policies/suggest', {
        since: options.since, alarm_for: options.alarmFor,
        ...(options.namespace !== undefined ? { namespace: options.namespace } : {}), ...(options.socket ? { socket: options.socket } : {}), ...(options.service ? { service: options.service } : {}),
        ...(minFlows ? { min_flows: minFlows } : {}),
      });
      if (options.out) {
        await mkdir(options.out, { recursive: true });
        for (const p of answer.policies) await writeFile(join(options.out, `${p.ref.replaceAll('/', '-')}.yaml`), p.yaml);
      }
      if (ctx.json) return printJson(answer);
      if (!options.out) process.stdout.write(answer.yaml || '# nothing observed to learn from\n');
      else for (const p of answer.policies) process.stdout.write(`wrote ${join(options.out, `${p.ref.replaceAll('/', '-')}.yaml`)} (${p.document.rules.length} rules)\n`);
      // The report goes to stderr so the YAML on stdout stays a file `policy apply` reads.
      const report = [`# ${answer.covered} of ${answer.flows} observed flows allowed by the suggestions${answer.truncated ? ' (the audit read was cut at its bound: narrow --since, --socket or --service)' : ''}`];
      if (answer.uncovered.length > 0) report.push('# enforcing them would deny:', ...answer.uncovered.map((u) => `#   ${u.actor} ${u.action} on ${u.kind === 'service' ? 'service ' : ''}${u.socket} (${u.count}×): ${u.why}`));
      process.stderr.write(`${report.join('\n')}\n`);
    });
  const setMode = (mode: 'enforce' | 'observe') => async (ref: string | undefined, options: { namespace?: string; alarmFor?: string }) => {
    if ((ref === undefined) === (options.namespace === undefined)) throw new PosternError('bad_request', `policy ${mode}: give a policy ref or --namespace, not both`);
    const ctx = context();
    const answer = await ctx.client().post<{ mode: string; changed: { ref: string; version: number }[] }>('/api/v1/policies/mode', {
      mode, ...(ref !== undefined ? { ref } : { namespace: options.namespace }), ...(options.alarmFor ? { alarm_for: options.alarmFor } : {}),
    });
    if (ctx.json) return printJson(answer);
    if (answer.changed.length === 0) process.stdout.write(`already in ${mode} mode\n`);
    for (const c of answer.changed) process.stdout.write(`policy ${c.ref} now in ${mode} mode (version ${c.version})\n`);
  };
  policy.command('enforce [ref]')
    .description('leave observe mode: what the policy denies is refused again (and raises access.alarm for a while)')
    .option('--namespace <namespace>', 'every policy of this namespace and below')
    .option('--alarm-for <duration>', 'how long its denials raise access.alarm (0s: never)', '7d')
    .action(setMode('enforce'));
  policy.command('observe [ref]')
    .description('observe mode: what the policy would deny is let through and recorded as access.would_deny')
    .option('--namespace <namespace>', 'every policy of this namespace and below')
    .action(setMode('observe'));
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
