// Types the pieces of the edge share: the in-memory view they read and the sign-in they use.
// Kept apart from server.ts so that the handlers EdgeServer composes never import it back.
import type { SocketRecord, ConnectorRecord, UserRecord } from '../store/index.js';
import type { PolicySet } from '../policy/index.js';
import type { Identity, IdentityGate } from './identity-gate.js';

/** What the edge reads per request: an in-memory view, never the database. */
export interface EdgeView {
  socket(name: string): SocketRecord | undefined;
  connector(id: string): ConnectorRecord | undefined;
  userByEmail(email: string): UserRecord | undefined;
  /** Whether a sign-in session is still valid (not revoked, not expired). */
  sessionLive(id: string): boolean;
  /** The policy set of this snapshot, compiled once. */
  policies(): PolicySet;
}

export interface EdgeIdentity {
  gate: IdentityGate;
  /** The signed assertion for this user and socket (cached per session and socket). */
  assertion: (identity: Identity, socket: SocketRecord) => Promise<string>;
}
