// The user portal's API, for any signed-in person: the sockets they may reach now (decided by
// the same policy engine and compiled set the edge uses, for this person, from where they ask,
// at this moment) with how to reach each, and their own sign-ins, which they may end.
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { SessionRecord, SocketRecord, Store, UserRecord } from '../store/index.js';
import type { RouteTable } from './routes.js';
import { parseWith } from './routes.js';
import { PosternError } from '../errors.js';
import { clearSessionCookie } from '../identity/index.js';
import { allowedSshLogins, compileWithSocketPolicies, evaluate, explain, requestContext } from '../policy/index.js';
import type { Action, PolicySet, RequestContext } from '../policy/index.js';
import { canonicalIp } from '../reporting/index.js';
import type { GeoLookup, NewAuditEvent } from '../reporting/index.js';
import { principalOf } from './principal.js';
import type { PersonPrincipal } from './principal.js';
import { appList, mySessionList } from './portal-types.js';
import type { AppCommand, AppView, MySessionView } from './portal-types.js';

export interface PortalApiOptions {
  store: Store;
  /** Public URL of a socket, e.g. https://grafana.localhost:8443/ */
  socketUrl: (name: string) => string;
  audit: (event: NewAuditEvent) => void;
  geo?: GeoLookup;
  now?: () => Date;
  onSessionRevoked?: (sessionId: string) => void;
}

const appsQuery = z.object({
  after: z.string().max(63).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
}).strict();
const sessionsQuery = z.object({
  before: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(200).optional(),
}).strict();
const idParams = z.object({ id: z.string().min(1).max(100) });

/** The connection-level action the edge decides first on a socket of this type. */
function firstAction(type: SocketRecord['type']): Action {
  if (type === 'ssh') return { protocol: 'ssh' };
  if (type === 'tls') return { protocol: 'tls' };
  if (type === 'postgres') return { protocol: 'database' };
  return { protocol: 'http', method: 'GET', path: '/' };
}

/**
 * Whether the edge would let this person in: the decision for the socket's first action; on an
 * HTTP socket, also an allow rule that matches who, where and when but not `/` (its paths are elsewhere).
 */
export function mayReach(context: RequestContext, policies: PolicySet): boolean {
  const decision = evaluate(context, policies);
  if (decision.effect === 'allow') return true;
  if (context.action.protocol !== 'http' || decision.reason !== 'no-rule-allowed') return false;
  return explain(context, policies).rules.some((r) => r.effect === 'allow' && (r.outcome === 'what-http-path' || r.outcome === 'what-http-method'));
}

/** What to run for a tls, ssh or postgres socket, the same lines the README shows. */
export function commandsFor(type: SocketRecord['type'], host: string, logins: readonly string[], database: string | null = null): AppCommand[] {
  if (type === 'postgres') {
    const label = `psql or any PostgreSQL client: a local port, no password${database ? ` (database ${database} unless you name another)` : ''}`;
    return [{ label, command: `postern client db --host ${host} --listen 127.0.0.1:5433` }];
  }
  if (type !== 'tls' && type !== 'ssh') return [];
  const config: AppCommand = { label: 'Once: let ssh reach Postern sockets', command: 'postern client ssh-config >> ~/.ssh/config' };
  const ssh = (logins.length > 0 ? logins : ['$USER']).map((login) => ({ label: `SSH as ${login}`, command: `ssh ${login}@${host}` }));
  if (type === 'ssh') return [config, ...ssh];
  // A tls socket carries any TCP; SSH through it is offered only where the policy names logins.
  const tcp: AppCommand = { label: 'Any TCP client (psql, mysql, RDP): a local port', command: `postern client tls --host ${host} --listen 127.0.0.1:5433` };
  return logins.length > 0 ? [tcp, config, ...ssh] : [tcp];
}

function signedInPerson(request: FastifyRequest): PersonPrincipal {
  const principal = principalOf(request);
  if (principal.kind === 'token') throw new PosternError('forbidden', 'the portal shows a person\'s own apps and sign-ins: an API token is no one (sign in with `postern login` or the dashboard)');
  return principal;
}

function sessionView(session: SessionRecord, currentId: string): MySessionView {
  const { secretHash: _hidden, userId: _user, revokedAt: _revoked, ...rest } = session;
  return { ...rest, current: session.id === currentId };
}

export function registerPortalApi(routes: RouteTable, options: PortalApiOptions): void {
  const { store } = options;
  const now = options.now ?? (() => new Date());

  const appOf = (socket: SocketRecord, user: UserRecord, clientIp: string, policies: PolicySet): AppView | undefined => {
    const base = { name: socket.name, type: socket.type, description: socket.description };
    const url = options.socketUrl(socket.name);
    // A public HTTP socket is decided by no one: anyone reaches it.
    if ((socket.type === 'http' || socket.type === 'https') && !socket.auth.cloudauth) return { ...base, access: 'public', url, commands: [] };
    const context = requestContext({ socket, user, clientIp, country: options.geo?.country(clientIp), at: now(), action: firstAction(socket.type) });
    if (!mayReach(context, policies)) return undefined;
    if (socket.type === 'http' || socket.type === 'https') return { ...base, access: 'policy', url, commands: [] };
    const host = new URL(url).hostname;
    const logins = allowedSshLogins(context, policies);
    return {
      ...base, access: 'policy', commands: commandsFor(socket.type, host, logins, socket.database),
      ...(socket.type === 'ssh' ? { logins, terminal: `/terminal/${encodeURIComponent(socket.name)}` } : {}),
      ...(socket.type === 'postgres' && socket.database ? { database: socket.database } : {}),
    };
  };

  routes.add({ method: 'GET', url: '/api/v1/me/apps', summary: 'The sockets the signed-in person may reach now, by name, with how to reach each (?after, limit)', auth: 'user', response: appList,
    handler: async ({ request }) => {
      const query = parseWith(appsQuery, request.query, 'query');
      const { user } = signedInPerson(request);
      const [policies, sockets] = await Promise.all([store.policies.list(), store.sockets.list()]);
      const compiled = compileWithSocketPolicies(policies, sockets);
      const clientIp = canonicalIp(request.ip);
      const limit = query.limit ?? 100;
      const apps: AppView[] = [];
      let more = false;
      for (const socket of [...sockets].sort((a, b) => (a.name < b.name ? -1 : 1))) {
        if (query.after !== undefined && socket.name <= query.after) continue;
        const app = appOf(socket, user, clientIp, compiled);
        if (!app) continue;
        if (apps.length === limit) {
          more = true;
          break;
        }
        apps.push(app);
      }
      return { apps, ...(more ? { next: apps.at(-1)!.name } : {}) };
    } });

  routes.add({ method: 'GET', url: '/api/v1/me/sessions', summary: 'The signed-in person\'s own live sign-ins, newest first, the current one marked (?before, limit)', auth: 'user', response: mySessionList,
    handler: async ({ request }) => {
      const query = parseWith(sessionsQuery, request.query, 'query');
      const { user, session: current } = signedInPerson(request);
      const at = now().getTime();
      const live = (await store.sessions.list({ userId: user.id }))
        .filter((s) => s.revokedAt === null && Date.parse(s.expiresAt) > at)
        .sort((a, b) => (a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1));
      const from = query.before === undefined ? 0 : live.findIndex((s) => s.id === query.before) + 1;
      const limit = query.limit ?? 50;
      const page = live.slice(from, from + limit);
      return { sessions: page.map((s) => sessionView(s, current.id)), ...(from + limit < live.length ? { next: page.at(-1)!.id } : {}) };
    } });

  routes.add({ method: 'DELETE', url: '/api/v1/me/sessions/:id', summary: 'End one of the signed-in person\'s own sign-ins (the current one signs this browser out)', auth: 'user', params: idParams,
    handler: async ({ params, request, reply }) => {
      const { user, session: current, kind } = signedInPerson(request);
      const session = await store.sessions.get(params.id);
      // Someone else's session reads as absent: the answer tells nothing about it.
      if (!session || session.userId !== user.id) throw new PosternError('not_found', `you have no sign-in "${params.id}"`);
      await store.sessions.revoke(session.id, now().toISOString());
      options.onSessionRevoked?.(session.id);
      options.audit({ type: 'session.end', actor: user.email, clientIp: canonicalIp(request.ip), sessionId: session.id, reason: `signed out by ${user.email} from the portal` });
      if (session.id === current.id && kind === 'browser') void reply.header('set-cookie', clearSessionCookie());
      return undefined;
    } });
}
