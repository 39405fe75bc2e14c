// Public face of the connector.
export { Connector, CONNECTOR_VERSION } from './connector.js';
export type { ConnectorOptions } from './connector.js';
export { loadConnectorConfig, parseConnectorConfig, connectorConfigSchema } from './config.js';
export type { ConnectorConfig, ConnectorSocket } from './config.js';
export { enroll, parseJoinToken, readCredentials, writeCredentials, renewalTime } from './credentials.js';
export type { ConnectorCredentials } from './credentials.js';
