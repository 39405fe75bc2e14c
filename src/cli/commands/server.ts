// `postern server`: control plane and edge in one process (or one role), until Ctrl-C.
import type { Command } from 'commander';
import { resolveServerSettings } from '../server-config.js';
import type { ServerFlags } from '../server-config.js';
import { startServer } from '../server-runtime.js';
import { createLogger } from '../logger.js';
import { onShutdownSignal } from '../signals.js';

export function registerServer(program: Command): void {
  program.command('server')
    .description('run the control plane and the edge (one TLS port for API, sockets and tunnels)')
    .option('--config <file>', 'YAML settings file (POSTERN_CONFIG)')
    .option('--listen <host:port>', 'address of the TLS port (POSTERN_LISTEN, default 127.0.0.1:8443)')
    .option('--domain <name>', 'sockets are <name>.<domain> (POSTERN_DOMAIN, default localhost)')
    .option('--data-dir <dir>', 'CA, admin token and SQLite file (POSTERN_DATA_DIR)')
    .option('--db <sqlite-path|postgres-url>', 'store (POSTERN_DB, default <data-dir>/postern.db)')
    .option('--role <all|control|edge>', 'which parts to run (POSTERN_ROLE, default all)')
    .option('--public-port <port>', 'port users see, when a load balancer maps it (POSTERN_PUBLIC_PORT)')
    .option('--connector-cert-ttl <duration>', 'lifetime of connector certificates (default 24h)')
    .option('--agent-cert-ttl <duration>', 'lifetime of agent identities (default 1h)')
    .option('--agent-trust-domain <name>', 'SPIFFE trust domain of agent identities (default: the domain)')
    .option('--session-ttl <duration>', 'absolute lifetime of a browser sign-in (POSTERN_SESSION_TTL, default 12h)')
    .option('--session-idle <duration>', 'sign in again after this long without a request (POSTERN_SESSION_IDLE, default 2h)')
    .option('--trusted-proxies <cidr,cidr>', 'believe X-Forwarded-For and PROXY protocol from these only (POSTERN_TRUSTED_PROXIES)')
    .option('--geoip-file <file.mmdb>', 'MaxMind country database instead of the bundled one (POSTERN_GEOIP_FILE)')
    .option('--header-timeout <duration>', 'time a client has to send a request head (POSTERN_HEADER_TIMEOUT, default 30s)')
    .option('--body-idle-timeout <duration>', 'a request body that sends nothing for this long is cut (POSTERN_BODY_IDLE_TIMEOUT, default 30s)')
    .option('--keep-alive-timeout <duration>', 'idle keep-alive connections close after this (POSTERN_KEEP_ALIVE_TIMEOUT, default 65s)')
    .option('--max-streams-per-client <n>', 'open requests one address may hold on public sockets (POSTERN_MAX_STREAMS_PER_CLIENT, default 256)')
    .option('--recording-max-bytes <size>', 'terminal bytes one recorded session may hold, e.g. 64MiB (POSTERN_RECORDING_MAX_BYTES, default 64MiB)')
    .option('--admin-group <group>', 'members of this group are admins with their own sign-in (POSTERN_ADMIN_GROUP, default admins)')
    .option('--web-root <dir>', 'serve the dashboard built in this folder (POSTERN_WEB_ROOT, default the one built with Postern)')
    .action(async (_flags: ServerFlags, command: Command) => {
      // --data-dir is also a global option; whichever position it was given in counts.
      const settings = resolveServerSettings(command.optsWithGlobals<ServerFlags>());
      const logger = createLogger('info');
      const server = await startServer(settings, logger);
      const lines = [
        '',
        `Postern is running at ${server.url}  (role: ${settings.role}, store: ${settings.db.startsWith('postgres') ? 'PostgreSQL' : settings.db})`,
        '',
        `  CA certificate   ${server.caFile}   (clients trust this: curl --cacert …)`,
        `  Admin token      ${server.adminTokenFile}${server.adminTokenCreated ? '   (new: this is the first admin login)' : ''}`,
        ...(server.setupUrl ? [`  First admin      ${server.setupUrl}   (one-time link: set the first admin's email and password)`] : []),
        '',
        'Try it (in another terminal, from this directory):',
        '  npx postern connect --port 3000 --name myapp --type http     # publish http://127.0.0.1:3000',
        `  curl --cacert ${server.caFile} https://myapp.${settings.domain}${server.url.replace(/^https:\/\/[^:/]+/, '')}/`,
        '  npx postern socket ls',
        '',
      ];
      process.stdout.write(lines.join('\n') + '\n');
      onShutdownSignal(async () => {
        logger.info('shutting down');
        await server.close();
      });
    });
}
