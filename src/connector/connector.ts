// The connector process: enrolls once, then keeps ≥2 tunnels to the edge through the
// supervisor, serves the sockets its config names, and renews its certificate at half life.
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { ConnectorConfig } from './config.js';
import { createUpstreamHandler } from './upstream.js';
import { enroll, readCredentials, renew, writeCredentials } from './credentials.js';
import type { ConnectorCredentials } from './credentials.js';
import { RenewalScheduler } from './renewal.js';
import { ConnectorTunnel, TunnelSupervisor, dialTunnel } from '../tunnel/index.js';
import { systemClock } from '../clock.js';
import type { Clock } from '../clock.js';
import { PosternError, errorMessage } from '../errors.js';

export const CONNECTOR_VERSION = '0.1.0';

export interface ConnectorOptions {
  config: ConnectorConfig;
  logger: Logger;
  /** Overrides the config's proxy; `websocket: true` uses the WebSocket transport without one. */
  proxy?: string;
  websocket?: boolean;
  /** Times certificate renewal, tunnel redials and drains. */
  clock?: Clock;
}

interface WelcomeMessage {
  accepted: string[];
  rejected: { name: string; reason: string }[];
}

/** Events: `ready` (first tunnel welcomed, with the accepted sockets), `renewed`. */
export class Connector extends EventEmitter {
  private credentials!: ConnectorCredentials;
  private supervisor?: TunnelSupervisor;
  private readonly clock: Clock;
  private readonly renewal: RenewalScheduler;

  constructor(private readonly options: ConnectorOptions) {
    super();
    this.clock = options.clock ?? systemClock;
    this.renewal = new RenewalScheduler({
      clock: this.clock,
      certificatePem: () => this.credentials.certPem,
      renew: () => this.renew(),
      onFailure: (err) => options.logger.warn({ err: errorMessage(err) }, 'certificate renewal failed; retrying in a minute'),
    });
  }

  get id(): string {
    return this.credentials.connectorId;
  }

  get connectedTunnels(): number {
    return this.supervisor?.connectedCount ?? 0;
  }

  async start(): Promise<void> {
    const { config, logger } = this.options;
    this.credentials = await this.loadOrEnroll();
    // The file says where to go; the credentials only say who we are.
    const edges = (config.edges ?? [config.server]).map((url) => new URL(url));
    const proxy = this.proxyUrl;
    const handler = createUpstreamHandler(config.sockets, logger, this.credentials.name);
    const hello = {
      connectorId: this.credentials.connectorId,
      version: CONNECTOR_VERSION,
      sockets: config.sockets.map(({ name, type }) => ({ name, type })),
    };
    this.supervisor = new TunnelSupervisor({
      connections: config.connections,
      logger,
      clock: this.clock,
      connect: async (slot) => {
        const edge = edges[slot % edges.length]!;
        const transport = await dialTunnel({
          edge: { host: edge.hostname, port: Number(edge.port || 443) },
          credentials: this.credentials,
          ...(proxy ? { proxy } : {}),
          ...(this.options.websocket ? { websocket: true } : {}),
        });
        const link = new ConnectorTunnel(transport, { hello, onStream: handler, logger, clock: this.clock });
        let welcomed = false;
        link.once('close', () => {
          if (!welcomed) logger.warn({ edge: edge.host }, 'the edge closed the tunnel before accepting it: is this connector revoked or unknown there? (`postern connector ls`)');
        });
        // The edge welcomes again whenever what it routes to us changes (a socket bound or unbound).
        link.on('welcome', (welcome: WelcomeMessage) => {
          for (const { name, reason } of welcome.rejected) logger.warn({ socket: name, reason }, 'edge refused to route this socket to us');
          if (welcomed) logger.info({ edge: edge.host, sockets: welcome.accepted }, 'the edge changed which sockets it routes to us');
          else this.emit('ready', welcome.accepted);
          welcomed = true;
        });
        link.start();
        return link;
      },
    });
    this.supervisor.start();
    this.renewal.start();
  }

  private get proxyUrl(): URL | undefined {
    const proxy = this.options.proxy ?? this.options.config.proxy;
    return proxy ? new URL(proxy) : undefined;
  }

  private async loadOrEnroll(): Promise<ConnectorCredentials> {
    const { config, logger } = this.options;
    const existing = await readCredentials(config.credentials);
    if (existing) return existing;
    if (!config.token) {
      throw new PosternError('config_invalid', `no credentials at ${config.credentials} and no join token: create one with \`postern connector token create\``);
    }
    const credentials = await enroll(config.server, config.token, hostname(), this.proxyUrl);
    await writeCredentials(config.credentials, credentials);
    logger.info({ connector: credentials.connectorId, credentials: config.credentials }, 'enrolled');
    return credentials;
  }

  /** Renews the certificate now; new tunnel connections use it, running ones keep going. */
  renewNow(): Promise<void> {
    return this.renewal.renewNow();
  }

  private async renew(): Promise<void> {
    this.credentials = await renew(this.credentials, this.options.config.server, this.proxyUrl);
    await writeCredentials(this.options.config.credentials, this.credentials);
    this.options.logger.info('certificate renewed');
    this.emit('renewed');
  }

  /** Graceful stop: running streams get `graceMs` to finish. */
  async drain(graceMs = 10_000): Promise<void> {
    this.renewal.stop();
    await this.supervisor?.drain(graceMs);
  }

  stop(): void {
    this.renewal.stop();
    this.supervisor?.stop();
  }

  get certificatePem(): string {
    return this.credentials.certPem;
  }
}
