// Runs a connector in the foreground for `connector start` and `connect`: prints each socket's
// URL once the first tunnel is up, drains gracefully on Ctrl-C.
import { Connector } from '../connector/index.js';
import type { ConnectorConfig } from '../connector/index.js';
import { createLogger } from './logger.js';
import { onShutdownSignal } from './signals.js';

export interface RunConnectorOptions {
  proxy?: string;
  json?: boolean;
  /** Socket name → public URL, printed when ready. */
  urls?: Record<string, string>;
}

export async function runConnector(config: ConnectorConfig, options: RunConnectorOptions = {}): Promise<Connector> {
  const logger = createLogger('info');
  const connector = new Connector({ config, logger, ...(options.proxy ? { proxy: options.proxy } : {}) });
  let announced = false;
  connector.on('ready', (accepted: string[]) => {
    if (announced) return;
    announced = true;
    if (options.json) {
      process.stdout.write(JSON.stringify({ connector: connector.id, sockets: accepted, urls: options.urls ?? {} }) + '\n');
      return;
    }
    process.stdout.write(`connector ${connector.id} is connected; serving ${accepted.length ? accepted.join(', ') : 'no sockets'}\n`);
    for (const name of accepted) {
      const url = options.urls?.[name];
      if (url) process.stdout.write(`  ${name}: ${url}\n`);
    }
  });
  await connector.start();
  onShutdownSignal(async () => {
    logger.info('draining tunnels');
    await connector.drain(10_000);
  });
  return connector;
}
