// The edge's public face: the server that owns the public port, and what the runtime builds it from.
export { EdgeServer } from './server.js';
export type { EdgeServerOptions, EdgeView, EdgeIdentity } from './server.js';
export { IdentityGate } from './identity-gate.js';
export { LiveRegistry } from './live-registry.js';
export { SshHostKeys } from './ssh/index.js';
