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
  recordInput: boolean;
  upstreamHostKey: string | null;
  database: string | null;
  url: string;
  online: boolean;
  createdAt: string;
  updatedAt: string;
  connectors: { id: string; name: string; binding: 'direct' | 'tags' }[];
}

interface UserCaView {
  publicKey: string;
  sshdConfig: string[];
}

function showSocket(ctx: CliContext, socket: SocketView): void {
  if (ctx.json) return printJson(socket);
  const signIn = socket.auth.cloudauth
    ? ['required', ...socket.auth.allowedEmailDomains.map((d) => `@${d}`), ...socket.auth.allowedEmailAddresses].join(' ')
    : 'none (public)';
  const connectors = socket.connectors.map((c) => `${c.id} (${c.name}${c.binding === 'tags' ? ', by tags' : ''})`);
  const ssh = socket.type === 'ssh'
    ? { recordInput: socket.recordInput ? 'yes (keystrokes too)' : 'no (output only)', upstreamHostKey: socket.upstreamHostKey ?? 'none yet (pinned at first use)' }
    : {};
  printFields({ ...socket, ...ssh, online: socket.online ? 'yes' : 'no', signIn, connectors: connectors.length ? connectors.join(', ') : 'none (no connector may serve it)' },
    ['name', 'type', 'url', 'upstream', 'online', 'signIn', 'connectors', 'description', 'tags', ...(socket.rawPaths ? ['rawPaths'] : []),
      ...(socket.type === 'ssh' ? ['recordInput', 'upstreamHostKey'] : []), ...(socket.type === 'postgres' ? ['database'] : []), 'id', 'createdAt', 'updatedAt']);
}

/** How an sshd behind a socket comes to trust Postern's user certificates. */
function sshdTrustLines(heading: string, userCa: UserCaView): string[] {
  return [
    '',
    heading,
    `  echo '${userCa.publicKey}' | sudo tee /etc/ssh/postern_user_ca.pub`,
    '  sudo mkdir -p /etc/ssh/postern_principals',
    '  echo ana@corp.example | sudo tee /etc/ssh/postern_principals/ana   # who may log in as "ana" (one email or login per line)',
    '  # then add to /etc/ssh/sshd_config and reload sshd:',
    ...userCa.sshdConfig.map((line) => `  ${line}`),
    '',
  ];
}

export function registerSocket(program: Command, context: () => CliContext): void {
  const socket = program.command('socket').description('manage sockets (a service published through Postern)');
  addAuthFlags(socket.command('create'))
    .description('create a socket')
    .requiredOption('--name <name>', 'DNS label: the socket is reached at <name>.<domain>')
    .option('--type <type>', 'http, https, tls, ssh (SSH terminated and recorded at the edge) or postgres (queries audited at the edge)', 'http')
    .option('--upstream <url>', 'what the connector dials, e.g. http://127.0.0.1:3000 or tcp://127.0.0.1:22 (informational)')
    .option('--description <text>', 'free text')
    .option('--tag <key=value>', 'a tag (repeatable)', collect)
    .option('--raw-paths', 'HTTP sockets: pass ambiguous paths (encoded /, \\, ;) as sent instead of refusing them')
    .option('--record-input', 'ssh sockets: recordings keep keystrokes too, not only the output')
    .option('--database <name>', 'postgres sockets: the database a session opens when the client names none (which databases a person may open is the policy\'s what.database.names)')
    .option('--connector <id-or-name>', 'a connector that may serve it (repeatable); join tokens and tag selectors bind others', collect)
    .action(async (options: { name: string; type: string; upstream?: string; description?: string; tag?: string[]; rawPaths?: boolean; recordInput?: boolean; database?: string; connector?: string[] } & AuthFlags) => {
      const ctx = context();
      const created = await ctx.client().post<SocketView>('/api/v1/sockets', {
        name: options.name, type: options.type, ...authBody(options),
        ...(options.rawPaths ? { raw_paths: true } : {}),
        ...(options.recordInput ? { record_input: true } : {}),
        ...(options.database ? { database: options.database } : {}),
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
      const databases = sockets.some((s) => s.database !== null);
      printTable(sockets.map((s) => ({ ...s, online: s.online ? 'yes' : 'no' })), ['name', 'type', 'url', 'upstream', ...(databases ? ['database'] : []), 'online']);
    });
  socket.command('show <name>')
    .description('show one socket (for tls and ssh sockets also how sshd and ssh come to trust Postern\'s certificates)')
    .action(async (name: string) => {
      const ctx = context();
      const client = ctx.client();
      const shown = await client.get<SocketView>(`/api/v1/sockets/${encodeURIComponent(name)}`);
      if (shown.type !== 'tls' && shown.type !== 'ssh') return showSocket(ctx, shown);
      const ssh = await client.get<UserCaView>('/api/v1/ssh/ca');
      if (shown.type === 'tls') {
        if (ctx.json) return printJson({ ...shown, ssh });
        showSocket(ctx, shown);
        return void process.stdout.write(sshdTrustLines('SSH behind this socket: let sshd trust Postern\'s user certificates', ssh).join('\n'));
      }
      const sshHostCa = await client.get<{ public_key: string; known_hosts: string }>('/api/v1/ssh/host-ca');
      if (ctx.json) return printJson({ ...shown, ssh, sshHostCa });
      showSocket(ctx, shown);
      process.stdout.write([
        ...sshdTrustLines('The upstream sshd: let it trust Postern\'s user certificates (the edge logs in with a short-lived one)', ssh),
        'ssh clients: trust the host certificates of ssh sockets (`postern client ssh-config` sets this up) with this known_hosts line:',
        `  ${sshHostCa.known_hosts}`,
        '',
      ].join('\n'));
    });
  addAuthFlags(socket.command('update <name>'))
    .description('change a socket')
    .option('--no-cloudauth', 'stop requiring sign-in')
    .option('--type <type>', 'http, https, tls or ssh')
    .option('--upstream <url>', 'what the connector dials (informational)')
    .option('--description <text>', 'free text')
    .option('--tag <key=value>', 'replace tags (repeatable)', collect)
    .option('--raw-paths', 'pass ambiguous paths as sent')
    .option('--no-raw-paths', 'refuse ambiguous paths (the default)')
    .option('--record-input', 'ssh sockets: recordings keep keystrokes too')
    .option('--no-record-input', 'ssh sockets: recordings keep the output only (the default)')
    .option('--forget-host-key', 'ssh sockets: drop the pinned upstream host key (after the upstream sshd was legitimately re-keyed); the next connection pins again')
    .option('--database <name>', 'postgres sockets: the database a session opens when the client names none ("" clears it)')
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
    .action(async (name: string, options: { type?: string; upstream?: string; description?: string; tag?: string[]; connector?: string[]; addConnector?: string[]; removeConnector?: string[]; rawPaths?: boolean; recordInput?: boolean; forgetHostKey?: boolean; database?: string } & AuthFlags) => {
      const ctx = context();
      const patch = {
        ...authBody(options),
        ...(options.rawPaths !== undefined ? { raw_paths: options.rawPaths } : {}),
        ...(options.recordInput !== undefined ? { record_input: options.recordInput } : {}),
        ...(options.forgetHostKey ? { upstream_host_key: null } : {}),
        ...(options.database !== undefined ? { database: options.database || null } : {}),
        ...(options.cloudauth === false ? { cloudauth: false } : {}),
        ...(options.type ? { type: options.type } : {}),
        ...(options.upstream ? { upstream: options.upstream } : {}),
        ...(options.description !== undefined ? { description: options.description } : {}),
        ...(options.tag ? { tags: parseTags(options.tag) } : {}),
        ...(options.connector ? { connectors: options.connector } : {}),
        ...(options.addConnector ? { add_connectors: options.addConnector } : {}),
        ...(options.removeConnector ? { remove_connectors: options.removeConnector } : {}),
      };
      if (Object.keys(patch).length === 0) throw new PosternError('bad_request', 'nothing to change: pass --type, --upstream, --description, --tag, --raw-paths, --record-input, --forget-host-key, --database, --connector, --add-connector, --remove-connector or a sign-in flag');
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
