// Who is calling the API: an API token (admin or service), a person's CLI session token
// (`pst1_…`, from `postern login`) or a person's browser on the control host (its session
// cookie, for the dashboard). Session secrets are looked up by their hash; each must be a live
// session of its kind of an enabled user, whose scopes follow from their groups
// (src/control/roles.ts) on this very request. The principal rides along with the request.
import type { FastifyRequest } from 'fastify';
import type { ApiTokenRecord, ApiTokenScope, SessionRecord, Store, UserRecord } from '../store/index.js';
import type { SessionService } from './sessions.js';
import { PosternError } from '../errors.js';
import { generateSecret, hashToken } from '../identity/index.js';
import { personScopes } from './roles.js';

export type Principal =
  | { readonly kind: 'token'; readonly token: ApiTokenRecord }
  | { readonly kind: 'cli' | 'browser'; readonly session: SessionRecord; readonly user: UserRecord; readonly scopes: readonly ApiTokenScope[] };

/** A principal that is a signed-in person (CLI or browser), not an API token. */
export type PersonPrincipal = Principal & { kind: 'cli' | 'browser' };

export const CLI_TOKEN_PREFIX = 'pst1_';
const CLI_TOKEN_SHAPE = /^pst1_[A-Za-z0-9_-]{43}$/;
/** last_seen_at is written at most this often per session. */
const TOUCH_EVERY_MS = 60_000;

const principals = new WeakMap<FastifyRequest, Principal>();

export function setPrincipal(request: FastifyRequest, principal: Principal): void {
  principals.set(request, principal);
}

/** The authenticated caller; throws when the route did not authenticate (a programming error). */
export function principalOf(request: FastifyRequest): Principal {
  const principal = principals.get(request);
  if (!principal) throw new PosternError('unauthenticated', 'this request carries no credentials');
  return principal;
}

/** Whether `scopes` allow `needed`: `admin` allows everything, `noun:write` allows `noun:read`. */
export function scopesAllow(scopes: readonly ApiTokenScope[], needed: ApiTokenScope): boolean {
  if (scopes.includes('admin') || scopes.includes(needed)) return true;
  return needed.endsWith(':read') && scopes.includes(needed.replace(/:read$/, ':write') as ApiTokenScope);
}

/** PosternError('forbidden') naming the scope an API token lacks for a route. */
export function requireScope(token: ApiTokenRecord, needed: ApiTokenScope): void {
  if (scopesAllow(token.scopes, needed)) return;
  throw new PosternError('forbidden', `the token "${token.name}" lacks the scope "${needed}" (it has ${token.scopes.join(', ') || 'none'}); create one with \`postern token create --scope ${needed}\``);
}

export function isCliToken(token: string): boolean {
  return token.startsWith(CLI_TOKEN_PREFIX);
}

/** A new CLI session token: shown to the CLI once; the store keeps only `hash`. */
export function createCliToken(): { token: string; hash: string } {
  const token = `${CLI_TOKEN_PREFIX}${generateSecret()}`;
  return { token, hash: hashToken(token) };
}

/** The live CLI session (of an enabled user) behind a `pst1_` bearer token; PosternError('unauthenticated') otherwise. */
export async function cliPrincipal(sessions: SessionService, store: Store, token: string, now: Date, adminGroup: string): Promise<Principal & { kind: 'cli' }> {
  const refused = () => new PosternError('unauthenticated', 'your sign-in has ended (revoked, expired or unknown): run `postern login` again');
  const found = CLI_TOKEN_SHAPE.test(token) ? await sessions.fromSecret(token) : undefined;
  if (!found || found.session.kind !== 'cli') throw refused();
  await touch(store, found.session, now);
  return { kind: 'cli', session: found.session, user: found.user, scopes: personScopes(found.user, adminGroup) };
}

/** The live browser session (of an enabled user) behind the control host's session cookie; PosternError('unauthenticated') otherwise. */
export async function browserPrincipal(sessions: SessionService, store: Store, secret: string, now: Date, adminGroup: string): Promise<Principal & { kind: 'browser' }> {
  const found = await sessions.fromSecret(secret);
  if (!found || found.session.kind !== 'browser') throw new PosternError('unauthenticated', 'your sign-in has ended (revoked, expired or unknown): sign in again at /auth/login');
  await touch(store, found.session, now);
  return { kind: 'browser', session: found.session, user: found.user, scopes: personScopes(found.user, adminGroup) };
}

async function touch(store: Store, session: SessionRecord, now: Date): Promise<void> {
  if (now.getTime() - Date.parse(session.lastSeenAt) <= TOUCH_EVERY_MS) return;
  await store.sessions.touch(session.id, now.toISOString()).catch(() => undefined);
}
