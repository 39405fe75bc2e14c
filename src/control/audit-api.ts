// The audit trail and live connections over the API: search (keyset pages both ways, free text),
// an export of everything a filter selects, a tail that resumes from an event id — as JSONL (for
// `postern audit tail -f` and SIEMs) or as server-sent events (the dashboard) — the connections
// every edge reports, and kills, which travel as changes to whichever edge holds the connection.

import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AuditFilter, AuditRecord, Store } from '../store/index.js';
import type { RouteTable } from './routes.js';
import { parseWith } from './routes.js';
import { PosternError } from '../errors.js';
import { AUDIT_EVENT_TYPES } from '../reporting/index.js';
import type { NewAuditEvent } from '../reporting/index.js';
import { actorOf } from './policy-api.js';
import { auditFilterQuery, auditPage, auditTypesView } from './audit-types.js';
import type { AuditExportFormat } from './audit-types.js';

export interface AuditApiOptions {
  store: Store;
  audit: (event: NewAuditEvent) => void;
  /** Resolves once queued events are in the store (a stream then sees what was just recorded). */
  flushAudit: () => Promise<void>;
  now?: () => Date;
  /** How often the stream looks for new events (default 500 ms). */
  streamPollMs?: number;
  /** How long one server-sent-events tail lasts before the browser reconnects from its last id (default 15 min). */
  eventStreamMs?: number;
}

/** Rows an edge has not refreshed for this long are from an edge that died. */
export const LIVE_FRESH_MS = 30_000;

const tailFields = {
  type: z.enum(AUDIT_EVENT_TYPES).optional(),
  after: z.coerce.number().int().min(0).optional(),
};
const searchQuery = auditFilterQuery.extend({
  ...tailFields,
  /** Events older than this id, newest first: the page after `nextBefore`. */
  before: z.coerce.number().int().min(1).optional(),
  order: z.enum(['asc', 'desc']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  /** The newest `limit` events (still printed oldest first). */
  last: z.enum(['true', 'false']).optional(),
}).strict();
const tailQuery = auditFilterQuery.extend(tailFields).strict();
const exportQuery = auditFilterQuery.extend({ ...tailFields, format: z.enum(['jsonl', 'csv']).optional() }).strict();
const connectionQuery = z.object({ socket: z.string().max(63).optional(), user: z.string().max(254).optional() }).strict();
const killBody = z.object({ user: z.string().min(1).max(254) }).strict();
const idParams = z.object({ id: z.string().min(1).max(100) });

function filterOf(query: z.infer<typeof tailQuery>): AuditFilter {
  return {
    ...(query.q !== undefined ? { text: query.q } : {}),
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

  routes.add({ method: 'GET', url: '/api/v1/audit', summary: 'Search audit events (?user, socket, type, decision, since, until, q; after or before/order=desc pages, limit, last)', auth: 'audit:read', response: auditPage,
    handler: async ({ request }) => {
      const query = parseWith(searchQuery, request.query, 'query');
      await options.flushAudit();
      const limit = query.limit ?? 100;
      const last = query.last === 'true';
      const newestFirst = last || query.order === 'desc' || query.before !== undefined;
      const events = await store.audit.list({ ...filterOf(query), ...(query.before !== undefined ? { beforeId: query.before } : {}), limit, newestFirst });
      if (last) return { events: events.reverse() };
      if (!newestFirst) return { events };
      return { events, nextBefore: events.length === limit ? events.at(-1)!.id : null };
    } });
  routes.add({ method: 'GET', url: '/api/v1/audit/types', summary: 'The audit event types (the type filter\'s choices)', auth: 'audit:read', response: auditTypesView,
    handler: async () => ({ types: [...AUDIT_EVENT_TYPES] }) });
  routes.add({ method: 'GET', url: '/api/v1/audit/export', summary: 'Every event the filters select, oldest first, as a JSONL or CSV download (?format=jsonl|csv and the search filters)', auth: 'audit:read',
    handler: async ({ request, reply }) => {
      const query = parseWith(exportQuery, request.query, 'query');
      const format = query.format ?? 'jsonl';
      await options.flushAudit();
      // The export is of the trail as it stood when asked: events recorded during a long download are left for the next one.
      const filter = filterOf(query);
      await checkFilter(store, filter);
      const [newest] = await store.audit.list({ limit: 1, newestFirst: true });
      const stamp = now().toISOString().replace(/[:.]/g, '-');
      reply.header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8')
        .header('content-disposition', `attachment; filename="postern-audit-${stamp}.${format}"`)
        .header('cache-control', 'no-store');
      return Readable.from(exportChunks(store, filter, (newest?.id ?? 0) + 1, format));
    } });
  routes.add({ method: 'GET', url: '/api/v1/audit/stream', summary: 'Audit events as a JSONL stream, from ?after=<id> on (same filters as search), until the client goes away', auth: 'audit:read',
    handler: async ({ request, reply }) => tailAudit(request, reply, options, jsonlTail) });
  routes.add({ method: 'GET', url: '/api/v1/audit/events', summary: 'Audit events as server-sent events (id = event id), from ?after=<id> or Last-Event-ID on, same filters as search', auth: 'audit:read',
    handler: async ({ request, reply }) => tailAudit(request, reply, options, { ...sseTail, maxMs: options.eventStreamMs ?? 15 * 60_000 }) });

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

const EXPORT_BATCH = 1000;
const TAIL_BATCH = 500;
/** A tail whose client has not taken what was written for this long is cut (a slow reader holds no memory). */
const DRAIN_TIMEOUT_MS = 30_000;

export const CSV_COLUMNS = ['id', 'type', 'at', 'actor', 'socket', 'clientIp', 'country', 'decision', 'rule', 'reason', 'connectionId', 'sessionId', 'details'] as const satisfies readonly (keyof AuditRecord)[];

/**
 * One RFC 4180 field. A text starting with = + - @ or a control character gets a leading
 * apostrophe, so a spreadsheet shows an attacker-chosen reason or path instead of running it as a formula.
 */
export function csvField(value: string | number): string {
  if (typeof value === 'number') return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(event: AuditRecord): string {
  return `${CSV_COLUMNS.map((column) => csvField(column === 'details' ? JSON.stringify(event.details) : event[column])).join(',')}\r\n`;
}

/** Fails with bad_request (as problem+json) before a stream starts, rather than as a cut-off body. */
async function checkFilter(store: Store, filter: AuditFilter): Promise<void> {
  await store.audit.list({ ...filter, limit: 1 });
}

/** The export in keyset batches: one batch in memory at a time, pulled as the client reads. */
async function* exportChunks(store: Store, filter: AuditFilter, beforeId: number, format: AuditExportFormat): AsyncGenerator<string> {
  if (format === 'csv') yield `${CSV_COLUMNS.join(',')}\r\n`;
  let cursor = filter.afterId ?? 0;
  for (;;) {
    const batch = await store.audit.list({ ...filter, afterId: cursor, beforeId, limit: EXPORT_BATCH });
    if (batch.length > 0) yield batch.map((event) => (format === 'csv' ? csvLine(event) : `${JSON.stringify(event)}\n`)).join('');
    if (batch.length < EXPORT_BATCH) return;
    cursor = batch.at(-1)!.id;
  }
}

interface TailFormat {
  readonly contentType: string;
  readonly start: string;
  line(event: AuditRecord): string;
  readonly keepAlive: string;
  /** The stream ends after this long (server-sent events reconnect by themselves). */
  readonly maxMs?: number;
}

const jsonlTail: TailFormat = { contentType: 'application/x-ndjson', start: '', line: (event) => `${JSON.stringify(event)}\n`, keepAlive: '\n' };
/** JSON has no raw newline, so each event is one `data:` line; its id lets the browser resume with Last-Event-ID. */
const sseTail: TailFormat = { contentType: 'text/event-stream', start: 'retry: 2000\n\n', line: (event) => `id: ${event.id}\ndata: ${JSON.stringify(event)}\n\n`, keepAlive: ': keep-alive\n\n' };

function resumeId(request: FastifyRequest, after: number | undefined): number {
  const header = request.headers['last-event-id'];
  const id = typeof header === 'string' && /^\d{1,15}$/.test(header) ? Number(header) : undefined;
  return id ?? after ?? 0;
}

/** Writes every event after the cursor, then follows new ones; a keep-alive every 15 s keeps proxies from timing out. */
async function tailAudit(request: FastifyRequest, reply: FastifyReply, options: AuditApiOptions, format: TailFormat): Promise<void> {
  const query = parseWith(tailQuery, request.query, 'query');
  const filter = filterOf(query);
  let cursor = resumeId(request, query.after);
  await checkFilter(options.store, filter);
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, { 'content-type': format.contentType, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  let open = true;
  request.raw.socket.once('close', () => (open = false));
  out.once('close', () => (open = false));
  const write = async (text: string): Promise<void> => {
    if (out.write(text)) return;
    const drained = await new Promise<boolean>((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        out.off('drain', onDrain).off('close', onClose);
        resolve(ok);
      };
      const onDrain = (): void => done(true);
      const onClose = (): void => done(false);
      const timer = setTimeout(() => done(false), DRAIN_TIMEOUT_MS);
      out.once('drain', onDrain).once('close', onClose);
    });
    if (!drained) open = false;
  };
  const endAt = format.maxMs === undefined ? Infinity : Date.now() + format.maxMs;
  if (format.start !== '') await write(format.start);
  let lastWrite = Date.now();
  while (open && Date.now() < endAt) {
    await options.flushAudit();
    const events = await options.store.audit.list({ ...filter, afterId: cursor, limit: TAIL_BATCH }).catch(() => []);
    if (events.length > 0) {
      await write(events.map(format.line).join(''));
      cursor = events.at(-1)!.id;
      lastWrite = Date.now();
    } else if (Date.now() - lastWrite > 15_000) {
      await write(format.keepAlive);
      lastWrite = Date.now();
    }
    if (events.length < TAIL_BATCH) await new Promise((resolve) => setTimeout(resolve, options.streamPollMs ?? 500));
  }
  out.end();
}
