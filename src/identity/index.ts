// Public face of identity: bearer tokens (more sign-in sources land here).
export { generateApiToken, generateSecret, hashToken, sameHash, bearerToken } from './tokens.js';
