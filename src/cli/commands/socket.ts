// `postern socket …`: create, list, show, update and delete sockets through the API.
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { printFields, printJson, printTable } from '../output.js';
import { PosternError } from '../../errors.js';
import { addAuthFlags, authBody } from '../auth-flags.js';
import type { AuthFlags } from '../auth-flags.js';
import { collect, parseTags } from '../list-flags.js';

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
  connectors: { id: string; name: string; binding: 'direct' | 'tags' }[];
}

function showSocket(ctx: CliContext, socket: SocketView): void {
  if (ctx.json) return printJson(socket);
  const signIn = socket.auth.cloudauth
    ? ['required', ...socket.auth.allowedEmailDomains.map((d) => `@${d}`), ...socket.auth.allowedEmailAddresses].join(' ')
    : 'none (public)';
  const connectors = socket.connectors.map((c) => `${c.id} (${c.name}${c.binding === 'tags' ? ', by tags' : ''})`);
  printFields({ ...socket, online: socket.online ? 'yes' : 'no', signIn, connectors: connectors.length ? connectors.join(', ') : 'none (no connector may serve it)' },
    ['name', 'type', 'url', 'upstream', 'online', 'signIn', 'connectors', 'description', 'tags', ...(socket.rawPaths ? ['rawPaths'] : []), 'id', 'createdAt', 'updatedAt']);
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
    .option('--connector <id-or-name>', 'a connector that may serve it (repeatable); join tokens and tag selectors bind others', collect)
    .action(async (options: { name: string; type: string; upstream?: string; description?: string; tag?: string[]; rawPaths?: boolean; connector?: string[] } & AuthFlags) => {
      const ctx = context();
      const created = await ctx.client().post<SocketView>('/api/v1/sockets', {
        name: options.name, type: options.type, ...authBody(options),
        ...(options.rawPaths ? { raw_paths: true } : {}),
        ...(options.connector ? { connectors: options.connector } : {}),
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
    .option('--connector <id-or-name>', 'replace the connectors bound to it by name with these (repeatable)', collect)
    .option('--add-connector <id-or-name>', 'bind one more connector (repeatable)', collect)
    .option('--remove-connector <id-or-name>', 'unbind a connector (repeatable)', collect)
    .addHelpText('after', [
      '',
      'Only the connectors bound to a socket serve it; an announcement by any other is refused.',
      'A connector is bound by name (its join token\'s --socket, or --connector here) or by its',
      'join token\'s --tag selector matching the socket\'s tags. Changes reach live tunnels at once:',
      'an unbound connector gets no new streams and its open ones for the socket are reset.',
      '  postern socket update grafana --connector office-nuc --connector conn_abc   # exactly these two',
      '  postern socket update grafana --add-connector conn_def --remove-connector office-nuc',
    ].join('\n'))
    .action(async (name: string, options: { type?: string; upstream?: string; description?: string; tag?: string[]; connector?: string[]; addConnector?: string[]; removeConnector?: string[]; rawPaths?: boolean } & AuthFlags) => {
      const ctx = context();
      const patch = {
        ...authBody(options),
        ...(options.rawPaths !== undefined ? { raw_paths: options.rawPaths } : {}),
        ...(options.cloudauth === false ? { cloudauth: false } : {}),
        ...(options.type ? { type: options.type } : {}),
        ...(options.upstream ? { upstream: options.upstream } : {}),
        ...(options.description !== undefined ? { description: options.description } : {}),
        ...(options.tag ? { tags: parseTags(options.tag) } : {}),
        ...(options.connector ? { connectors: options.connector } : {}),
        ...(options.addConnector ? { add_connectors: options.addConnector } : {}),
        ...(options.removeConnector ? { remove_connectors: options.removeConnector } : {}),
      };
      if (Object.keys(patch).length === 0) throw new PosternError('bad_request', 'nothing to change: pass --type, --upstream, --description, --tag, --raw-paths, --connector, --add-connector, --remove-connector or a sign-in flag');
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
