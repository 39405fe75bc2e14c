// Connectors of the earlier protocol (postern/1, HTTP/2 with the connector as server) still
// reach edges that speak postern/2. They are not left to hang: the edge plays the old edge's
// part just long enough to answer their hello with every socket refused and the reason, which
// such a connector logs, and then hangs up.
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { CONTROL_PATH, MAX_CONTROL_LINE, connectorMessage, legacyRefusal } from './protocol.js';
import type { EdgeMessage } from './protocol.js';
import { readMessages, writeMessage } from './ndjson.js';

const LINGER_MS = 1_000;
const HELLO_TIMEOUT_MS = 10_000;

export function refuseLegacyTunnel(transport: Duplex, edgeId: string, logger: Logger): void {
  const reason = legacyRefusal(edgeId);
  const session = http2.connect('http://connector.postern', { createConnection: () => transport });
  session.on('error', (err) => logger.debug({ err }, 'legacy tunnel session error'));
  const hangUp = () => session.destroy();
  const timer = setTimeout(hangUp, HELLO_TIMEOUT_MS).unref();
  const control = session.request({ ':method': 'POST', ':path': CONTROL_PATH }, { endStream: false });
  control.on('error', () => undefined);
  readMessages(control, connectorMessage, MAX_CONTROL_LINE, (message) => {
    if (message.type !== 'hello') return;
    logger.warn({ connectorId: message.connectorId, version: message.version }, 'refused a connector that speaks the earlier tunnel protocol');
    const welcome: EdgeMessage = { type: 'welcome', edgeId, accepted: [], rejected: message.sockets.map(({ name }) => ({ name, reason })) };
    writeMessage(control, welcome);
    clearTimeout(timer);
    setTimeout(hangUp, LINGER_MS).unref();
  }, hangUp);
  session.once('close', () => clearTimeout(timer));
}
