// The audit trail and live connections over the API: search, a JSONL stream that resumes from
// an event id (for `postern audit tail -f` and SIEMs), the connections every edge reports, and
// kills, which travel as changes to whichever edge holds the connection.

import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Store } from '../store/index.js';
import type { RouteTable } from './routes.js';
import { parseWith } from './routes.js';
import { PosternError } from '../errors.js';
import { AUDIT_EVENT_TYPES } from '../reporting/index.js';
import type { NewAuditEvent } from '../reporting/index.js';
import { actorOf } from './policy-api.js';

export interface AuditApiOptions {
  store: Store;
  audit: (event: NewAuditEvent) => void;
  /** Resolves once queued events are in the store (a stream then sees what was just recorded). */
  flushAudit: () => Promise<void>;
  now?: () => Date;
  /** How often the stream looks for new events (default 500 ms). */
  streamPollMs?: number;
}

/** Rows an edge has not refreshed for this long are from an edge that died. */
export const LIVE_FRESH_MS = 30_000;

const searchQuery = z.object({
  user: z.string().max(254).optional(),
  socket: z.string().max(63).optional(),
  type: z.enum(AUDIT_EVENT_TYPES).optional(),
  decision: z.enum(['allow', 'deny']).optional(),
  since: z.string().max(40).optional(),
  until: z.string().max(40).optional(),
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  /** The newest `limit` events (still printed oldest first). */
  last: z.enum(['true', 'false']).optional(),
}).strict();
const connectionQuery = z.object({ socket: z.string().max(63).optional(), user: z.string().max(254).optional() }).strict();
const killBody = z.object({ user: z.string().min(1).max(254) }).strict();
const idParams = z.object({ id: z.string().min(1).max(100) });

function filterOf(query: z.infer<typeof searchQuery>) {
  return {
    ...(query.user !== undefined ? { actor: query.user.toLowerCase() } : {}),
    ...(query.socket !== undefined ? { socket: query.socket } : {}),
    ...(query.type !== undefined ? { type: query.type } : {}),
    ...(query.decision !== undefined ? { decision: query.decision } : {}),
    ...(query.since !== undefined ? { since: query.since } : {}),
    ...(query.until !== undefined ? { until: query.until } : {}),
    ...(query.after !== undefined ? { afterId: query.after } : {}),
  };
}

export function registerAuditApi(routes: RouteTable, options: AuditApiOptions): void {
  const { store } = options;
  const now = options.now ?? (() => new Date());
  /** Rows refreshed since then are from edges that are alive. */
  const freshSince = () => new Date(now().getTime() - LIVE_FRESH_MS).toISOString();

  routes.add({ method: 'GET', url: '/api/v1/audit', summary: 'Search audit events (?user, socket, type, decision, since, until, after, limit, last)', auth: 'audit:read',
    handler: async ({ request }) => {
      const query = parseWith(searchQuery, request.query, 'query');
      await options.flushAudit();
      const events = await store.audit.list({ ...filterOf(query), limit: query.limit ?? 100, newestFirst: query.last === 'true' });
      return { events: query.last === 'true' ? events.reverse() : events };
    } });
  routes.add({ method: 'GET', url: '/api/v1/audit/stream', summary: 'Audit events as a JSONL stream, from ?after=<id> on, until the client goes away', auth: 'audit:read',
    handler: async ({ request, reply }) => streamAudit(request, reply, options) });

  routes.add({ method: 'GET', url: '/api/v1/connections', summary: 'Live connections on every edge (?socket, ?user)', auth: 'sessions:read',
    handler: async ({ request }) => {
      const query = parseWith(connectionQuery, request.query, 'query');
      const user = query.user === undefined ? undefined : await store.users.findByEmail(query.user);
      if (query.user !== undefined && !user) return { connections: [] };
      const connections = await store.liveConnections.list({
        freshSince: freshSince(),
        ...(query.socket !== undefined ? { socket: query.socket } : {}),
        ...(user ? { userId: user.id } : {}),
      });
      return { connections };
    } });
  routes.add({ method: 'DELETE', url: '/api/v1/connections/:id', summary: 'Kill a live connection on whichever edge holds it', auth: 'sessions:write', params: idParams,
    handler: async ({ params, request }) => {
      const actor = actorOf(request);
      const held = (await store.liveConnections.list({ freshSince: freshSince() })).find((c) => c.id === params.id);
      if (!held) throw new PosternError('not_found', `connection "${params.id}" is not live`);
      await store.liveConnections.requestKill(params.id);
      options.audit({ type: 'connection.killed', actor, clientIp: request.ip, socket: held.socket, connectionId: held.id, sessionId: held.sessionId, reason: `killed by ${actor}`, details: { user: held.email, clientIp: held.clientIp } });
      return undefined;
    } });
  routes.add({ method: 'POST', url: '/api/v1/connections/kill', summary: 'Kill every live connection of a user', auth: 'sessions:write', body: killBody,
    handler: async ({ body, request }) => {
      const actor = actorOf(request);
      const user = await store.users.findByEmail(body.user);
      if (!user) throw new PosternError('not_found', `user "${body.user}" does not exist`);
      const live = await store.liveConnections.list({ freshSince: freshSince(), userId: user.id });
      await store.liveConnections.requestKill(`user:${user.id}`);
      options.audit({ type: 'connection.killed', actor, clientIp: request.ip, reason: `every connection of ${user.email} killed by ${actor}`, details: { user: user.email, connections: live.map((c) => c.id) } });
      return { killed: live.length };
    } });
}

/** Writes every event after the cursor as one JSON line, then follows new ones; a blank line every 15 s keeps proxies from timing out. */
async function streamAudit(request: FastifyRequest, reply: FastifyReply, options: AuditApiOptions): Promise<void> {
  const query = parseWith(searchQuery, request.query, 'query');
  const filter = filterOf(query);
  let cursor = query.after ?? 0;
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  let open = true;
  request.raw.socket.once('close', () => (open = false));
  out.once('close', () => (open = false));
  let lastWrite = Date.now();
  while (open) {
    await options.flushAudit();
    const events = await options.store.audit.list({ ...filter, afterId: cursor, limit: 500 }).catch(() => []);
    for (const event of events) {
      out.write(`${JSON.stringify(event)}\n`);
      cursor = event.id;
    }
    if (events.length > 0) lastWrite = Date.now();
    else if (Date.now() - lastWrite > 15_000) {
      out.write('\n');
      lastWrite = Date.now();
    }
    if (events.length < 500) await new Promise((resolve) => setTimeout(resolve, options.streamPollMs ?? 500));
  }
  out.end();
}
