// The control plane's public face, what the server runtime builds it from: the API, the session
// service, the server's keys in the store, providers from the config file, and the admin role.
export { createApi } from './api.js';
export type { ApiOptions } from './api.js';
export { SessionService } from './sessions.js';
export type { SessionServiceOptions } from './sessions.js';
export { loadOrCreateInviteKey, loadOrCreateSigningKeys, loadOrCreateSshCa, loadOrCreateSshHostCa, loadOrCreateSshHostKeySeed } from './server-keys.js';
export { applyConfiguredProviders } from './idp-api.js';
export type { ConfiguredProvider } from './idp-api.js';
export { DEFAULT_ADMIN_GROUP } from './roles.js';
export { firstAdminSetupUrl } from './setup-routes.js';
export { loadOrCreateJwtSvidSigner } from './svid.js';
export { createTerminalUpgrade } from './terminal.js';
export type { MeView, CsrfHeaderName } from './dashboard-types.js';
export type { PolicyTestAnswer } from './policy-types.js';
export type { AppList, AppView } from './portal-types.js';
