// `postern socket …`: create, list, show, update and delete sockets through the API.
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { printFields, printJson, printTable } from '../output.js';
import { PosternError } from '../../errors.js';
import { addAuthFlags, authBody } from '../auth-flags.js';
import type { AuthFlags } from '../auth-flags.js';

interface SocketView {
  id: string;
  auth: { cloudauth: boolean; allowedEmailDomains: string[]; allowedEmailAddresses: string[] };
  name: string;
  type: string;
  upstream: string | null;
  description: string;
  tags: Record<string, string>;
  rawPaths: boolean;
  url: string;
  online: boolean;
  createdAt: string;
  updatedAt: string;
}

function parseTags(values: string[] | undefined): Record<string, string> | undefined {
  if (!values) return undefined;
  const tags: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0) throw new PosternError('bad_request', `--tag "${value}" must be key=value`);
    tags[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return tags;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function showSocket(ctx: CliContext, socket: SocketView): void {
  if (ctx.json) return printJson(socket);
  const signIn = socket.auth.cloudauth
    ? ['required', ...socket.auth.allowedEmailDomains.map((d) => `@${d}`), ...socket.auth.allowedEmailAddresses].join(' ')
    : 'none (public)';
  printFields({ ...socket, online: socket.online ? 'yes' : 'no', signIn }, ['name', 'type', 'url', 'upstream', 'online', 'signIn', 'description', 'tags', ...(socket.rawPaths ? ['rawPaths'] : []), 'id', 'createdAt', 'updatedAt']);
}

export function registerSocket(program: Command, context: () => CliContext): void {
  const socket = program.command('socket').description('manage sockets (a service published through Postern)');
  addAuthFlags(socket.command('create'))
    .description('create a socket')
    .requiredOption('--name <name>', 'DNS label: the socket is reached at <name>.<domain>')
    .option('--type <type>', 'http, https or tls', 'http')
    .option('--upstream <url>', 'what the connector dials, e.g. http://127.0.0.1:3000 (informational)')
    .option('--description <text>', 'free text')
    .option('--tag <key=value>', 'a tag (repeatable)', collect)
    .option('--raw-paths', 'HTTP sockets: pass ambiguous paths (encoded /, \\, ;) as sent instead of refusing them')
    .action(async (options: { name: string; type: string; upstream?: string; description?: string; tag?: string[]; rawPaths?: boolean } & AuthFlags) => {
      const ctx = context();
      const created = await ctx.client().post<SocketView>('/api/v1/sockets', {
        name: options.name, type: options.type, ...authBody(options),
        ...(options.rawPaths ? { raw_paths: true } : {}),
        ...(options.upstream ? { upstream: options.upstream } : {}),
        ...(options.description ? { description: options.description } : {}),
        ...(options.tag ? { tags: parseTags(options.tag) } : {}),
      });
      showSocket(ctx, created);
    });
  socket.command('ls')
    .description('list sockets')
    .action(async () => {
      const ctx = context();
      const { sockets } = await ctx.client().get<{ sockets: SocketView[] }>('/api/v1/sockets');
      if (ctx.json) return printJson(sockets);
      printTable(sockets.map((s) => ({ ...s, online: s.online ? 'yes' : 'no' })), ['name', 'type', 'url', 'upstream', 'online']);
    });
  socket.command('show <name>')
    .description('show one socket (for tls sockets also how to trust Postern\'s SSH certificates)')
    .action(async (name: string) => {
      const ctx = context();
      const client = ctx.client();
      const shown = await client.get<SocketView>(`/api/v1/sockets/${encodeURIComponent(name)}`);
      if (shown.type !== 'tls') return showSocket(ctx, shown);
      const ssh = await client.get<{ publicKey: string; sshdConfig: string[] }>('/api/v1/ssh/ca');
      if (ctx.json) return printJson({ ...shown, ssh });
      showSocket(ctx, shown);
      process.stdout.write([
        '',
        'SSH behind this socket: let sshd trust Postern\'s user certificates',
        `  echo '${ssh.publicKey}' | sudo tee /etc/ssh/postern_user_ca.pub`,
        '  sudo mkdir -p /etc/ssh/postern_principals',
        '  echo ana@corp.example | sudo tee /etc/ssh/postern_principals/ana   # who may log in as "ana" (one email or login per line)',
        '  # then add to /etc/ssh/sshd_config and reload sshd:',
        ...ssh.sshdConfig.map((line) => `  ${line}`),
        '',
      ].join('\n'));
    });
  addAuthFlags(socket.command('update <name>'))
    .description('change a socket')
    .option('--no-cloudauth', 'stop requiring sign-in')
    .option('--type <type>', 'http, https or tls')
    .option('--upstream <url>', 'what the connector dials (informational)')
    .option('--description <text>', 'free text')
    .option('--tag <key=value>', 'replace tags (repeatable)', collect)
    .option('--raw-paths', 'pass ambiguous paths as sent')
    .option('--no-raw-paths', 'refuse ambiguous paths (the default)')
    .action(async (name: string, options: { type?: string; upstream?: string; description?: string; tag?: string[]; rawPaths?: boolean } & AuthFlags) => {
      const ctx = context();
      const patch = {
        ...authBody(options),
        ...(options.rawPaths !== undefined ? { raw_paths: options.rawPaths } : {}),
        ...(options.cloudauth === false ? { cloudauth: false } : {}),
        ...(options.type ? { type: options.type } : {}),
        ...(options.upstream ? { upstream: options.upstream } : {}),
        ...(options.description !== undefined ? { description: options.description } : {}),
        ...(options.tag ? { tags: parseTags(options.tag) } : {}),
      };
      if (Object.keys(patch).length === 0) throw new PosternError('bad_request', 'nothing to change: pass --type, --upstream, --description, --tag, --raw-paths or a sign-in flag');
      showSocket(ctx, await ctx.client().patch<SocketView>(`/api/v1/sockets/${encodeURIComponent(name)}`, patch));
    });
  socket.command('delete <name>')
    .description('delete a socket')
    .action(async (name: string) => {
      const ctx = context();
      await ctx.client().delete(`/api/v1/sockets/${encodeURIComponent(name)}`);
      if (ctx.json) printJson({ deleted: name });
      else process.stdout.write(`deleted socket ${name}\n`);
    });
}
