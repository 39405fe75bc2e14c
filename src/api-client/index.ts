// The public face of src/api-client: the typed client of the control API and CA pinning, used
// by the CLI and the connector (and so below both of them).
export { ApiClient, fetchPinnedCa } from './client.js';
export type { ApiClientOptions } from './client.js';
export * from './agent-types.js';
