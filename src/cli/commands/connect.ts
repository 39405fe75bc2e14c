// `postern connect`: the one-liner. Creates the socket if needed, enrolls a connector bound to
// it (credentials kept under the user's config dir), runs it in the foreground, prints the URL.
import net from 'node:net';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { defaultConfigDir } from '../paths.js';
import { runConnector } from '../run-connector.js';
import { enroll, readCredentials, writeCredentials, parseConnectorConfig } from '../../connector/index.js';
import { PosternError, isPosternError } from '../../errors.js';
import { stringify } from 'yaml';
import { addAuthFlags, authBody } from '../auth-flags.js';
import type { AuthFlags } from '../auth-flags.js';
import { carriesTcp } from '../../store/index.js';

interface SocketView {
  name: string;
  type: string;
  url: string;
  upstream: string | null;
  connectors: { id: string }[];
}

export function registerConnect(program: Command, context: () => CliContext): void {
  addAuthFlags(program.command('connect'))
    .description('publish a local service in one command: creates the socket, enrolls, runs the connector')
    .requiredOption('--name <name>', 'socket name: reached at https://<name>.<domain>/')
    .option('--port <port>', 'local port of the service')
    .option('--host <host>', 'local host of the service', '127.0.0.1')
    .option('--upstream <url>', 'full upstream URL instead of --host/--port (http://, https:// or tcp://)')
    .option('--type <type>', 'http, https, tls or ssh (an sshd: the edge terminates SSH, decides per channel and records)', 'http')
    .option('--proxy <url>', 'reach the edge through this HTTP proxy (WebSocket fallback)')
    .action(async (options: { name: string; port?: string; host: string; upstream?: string; type: string; proxy?: string } & AuthFlags) => {
      const ctx = context();
      const upstream = options.upstream ?? upstreamFrom(options);
      const client = ctx.client();
      const credentialsPath = join(defaultConfigDir(), 'connectors', `${options.name}.json`);
      const existing = await readCredentials(credentialsPath);
      const kept = existing && existing.server === client.serverUrl.origin ? existing : undefined;
      let socket: SocketView;
      try {
        socket = await client.get<SocketView>(`/api/v1/sockets/${encodeURIComponent(options.name)}`);
      } catch (err) {
        if (!isPosternError(err, 'not_found')) throw err;
        // The socket we create is bound to our connector: the one we have, or the one the join token below enrolls.
        socket = await client.post<SocketView>('/api/v1/sockets', { name: options.name, type: options.type, upstream, ...authBody(options), ...(kept ? { connectors: [kept.connectorId] } : {}) });
        process.stderr.write(`created socket ${socket.name} (${socket.type})\n`);
      }
      if (socket.type !== options.type) throw new PosternError('conflict', `socket "${socket.name}" exists with type ${socket.type}, not ${options.type}`);
      // What `socket show` says is what this connector dials.
      const changes = { ...authBody(options), ...(socket.upstream !== upstream ? { upstream } : {}) };
      if (Object.keys(changes).length > 0) {
        if (socket.upstream !== upstream && socket.upstream) process.stderr.write(`socket ${socket.name}: upstream ${socket.upstream} → ${upstream}\n`);
        socket = await client.patch<SocketView>(`/api/v1/sockets/${encodeURIComponent(socket.name)}`, changes);
      }
      const listening = await probeUpstream(upstream);
      if (listening !== true) process.stderr.write(`postern: warning: nothing answers on ${upstream} yet (${listening}); requests get 502 until it does\n`);
      let credentials = kept;
      if (!credentials) {
        const { token } = await client.post<{ token: string }>('/api/v1/connectors/tokens', { name: `connect-${options.name}`, ttl_seconds: 600, sockets: [options.name] });
        credentials = await enroll(client.serverUrl.origin, token, `connect-${options.name}`);
        await writeCredentials(credentialsPath, credentials);
      } else if (!socket.connectors.some((c) => c.id === credentials!.connectorId)) {
        await client.patch(`/api/v1/sockets/${encodeURIComponent(socket.name)}`, { add_connectors: [credentials.connectorId] });
        process.stderr.write(`bound socket ${socket.name} to connector ${credentials.connectorId}\n`);
      }
      const config = parseConnectorConfig(stringify({
        server: credentials.server,
        credentials: credentialsPath,
        sockets: [{ name: options.name, type: options.type, upstream }],
      }), 'connect');
      await runConnector(config, { ...(options.proxy ? { proxy: options.proxy } : {}), json: ctx.json, urls: { [socket.name]: socket.url } });
    });
}

/** true when a TCP connection to the upstream opens within a second, else why not. */
function probeUpstream(upstream: string): Promise<true | string> {
  const url = new URL(upstream);
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  return new Promise((resolve) => {
    const socket = net.connect({ host: url.hostname, port, timeout: 1_000 });
    const done = (result: true | string) => {
      socket.destroy();
      resolve(result);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done('no answer within 1 s'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'connection refused' : err.code ?? err.message));
  });
}

function upstreamFrom(options: { port?: string; host: string; type: string }): string {
  const port = Number(options.port);
  if (!options.port || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new PosternError('bad_request', '--port must be a TCP port (1-65535), or pass --upstream');
  }
  const scheme = carriesTcp(options.type) ? 'tcp' : options.type === 'https' ? 'https' : 'http';
  return `${scheme}://${options.host}:${port}`;
}
