// Public face of the reverse tunnel: protocol constants, both ends, dialers, the supervisor and the header hygiene both ends share.
export { TUNNEL_ALPN, LEGACY_TUNNEL_ALPN, TUNNEL_WEBSOCKET_PATH, LEGACY_TUNNEL_WEBSOCKET_PATH, CONTROL_PATH, header, legacyRefusal } from './protocol.js';
export { MuxSession, MuxStream } from './mux.js';
export { refuseLegacyTunnel } from './legacy.js';
export { ResetCode, resetCodeName } from './frame.js';
export type { MuxHeaders } from './frame.js';
export type { StreamKind } from './protocol.js';
export { TunnelHub } from './edge-side.js';
export type { TunnelPeer, TunnelInfo, SocketAuthorizer } from './edge-side.js';
export { ConnectorTunnel } from './connector-side.js';
export type { StreamHandler, Hello } from './connector-side.js';
export { dialTunnel, proxyConnect } from './dial.js';
export type { DialOptions, EdgeAddress, TunnelCredentials } from './dial.js';
export { TunnelSupervisor, defaultBackoff } from './supervisor.js';
export type { TunnelLink, SlotState } from './supervisor.js';
export { stripHopByHop } from './headers.js';
export type { SocketRefusal } from './edge-side.js';
export { bindingOf, decideAnnouncements } from './socket-binding.js';
