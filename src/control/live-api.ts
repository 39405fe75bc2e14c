// The admins' live view over the API: the overview's figures (sockets online, connectors and
// their tunnels, live connections, denies, allowed-and-denied counts over time), a stream of
// live connections as server-sent events (a snapshot, then what opens, moves, is killed and
// closes), and the kill of one sign-in session with all of its connections.

import type { Writable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AuditRecord, LiveConnectionRecord, SessionRecord, Store } from '../store/index.js';
import type { TunnelHub } from '../tunnel/index.js';
import type { NewAuditEvent } from '../reporting/index.js';
import { PosternError } from '../errors.js';
import type { RouteTable } from './routes.js';
import { LIVE_FRESH_MS } from './audit-api.js';
import { actorOf } from './policy-api.js';
import { CONNECTORS_SHOWN, killResult, overviewView } from './live-types.js';
import type { LiveConnectionView, LiveEvent, OverviewView, SessionSummary } from './live-types.js';

export interface LiveApiOptions {
  store: Store;
  /** This node's tunnels (absent on a control-only node: every socket then reads offline). */
  hub?: TunnelHub;
  audit: (event: NewAuditEvent) => void;
  flushAudit: () => Promise<void>;
  onSessionRevoked?: (sessionId: string) => void;
  logger: { warn(obj: object, msg: string): void };
  now?: () => Date;
  /** How often the stream reads the store for changes (default 250 ms). */
  pollMs?: number;
  /** Comment lines that keep proxies from closing an idle stream (default 15 s). */
  heartbeatMs?: number;
}

/** A client that has this much unsent is too slow to follow: it is dropped, not buffered for. */
const MAX_UNSENT_BYTES = 1024 * 1024;
const SERIES_BUCKETS = 24;
const SERIES_BUCKET_MINUTES = 5;
/** What the chart counts as traffic let in or refused: requests and connections, not sign-ins or admin changes. */
const TRAFFIC_TYPES = ['http.request', 'connection.open', 'access.allowed', 'access.denied', 'ssh.session.start'] as const;
const idParams = z.object({ id: z.string().min(1).max(100) });

/** Floors to a whole number of minutes (the store counts by minute). */
function floorMinutes(ms: number, minutes: number): number {
  const step = minutes * 60_000;
  return Math.floor(ms / step) * step;
}

function summaryOf(session: SessionRecord | undefined): SessionSummary | null {
  if (!session) return null;
  const { id, kind, provider, clientIp, userAgent, createdAt, expiresAt, revokedAt } = session;
  return { id, kind, provider, clientIp, userAgent, createdAt, expiresAt, revokedAt };
}

/** The ids a `connection.killed` event names: one connection, or the list a user's or session's kill cut. */
export function killedIds(event: Pick<AuditRecord, 'connectionId' | 'details'>): string[] {
  if (event.connectionId) return [event.connectionId];
  const listed = event.details.connections;
  return Array.isArray(listed) ? listed.filter((id): id is string => typeof id === 'string') : [];
}

/** What changed between two reads of the live connections: new rows, rows gone, counters or activity moved. */
export function diffLive(before: ReadonlyMap<string, LiveConnectionRecord>, after: readonly LiveConnectionRecord[]): { opened: LiveConnectionRecord[]; closed: string[]; updated: LiveConnectionRecord[] } {
  const seen = new Set<string>();
  const opened: LiveConnectionRecord[] = [];
  const updated: LiveConnectionRecord[] = [];
  for (const row of after) {
    seen.add(row.id);
    const old = before.get(row.id);
    if (!old) opened.push(row);
    else if (old.bytesUp !== row.bytesUp || old.bytesDown !== row.bytesDown || old.activity !== row.activity || old.activitySince !== row.activitySince) updated.push(row);
  }
  return { opened, updated, closed: [...before.keys()].filter((id) => !seen.has(id)) };
}

type Send = (event: LiveEvent) => void;

/**
 * Follows the live connections for every open stream of this process. It reads only the store,
 * never this process's own edge: every edge reports its connections to `live_connections`
 * (within 200 ms of a change, and on each heartbeat), and every kill is an audit event, so a
 * control node sharing a PostgreSQL store with other edges sees theirs too. Polling every
 * 250 ms costs one read of the live rows (an index on updated_at) and one read of new
 * `connection.killed` events (a primary-key range from the last id seen) per process, however
 * many dashboards are open — the diff is done once and fanned out — and it stops when the last
 * stream ends. Hooking the audit flush or the local registry would only see this node's edge.
 */
class LiveFeed {
  readonly #subscribers = new Set<Send>();
  readonly #sessions = new Map<string, SessionSummary | null>();
  #rows = new Map<string, LiveConnectionRecord>();
  #auditCursor = 0;
  #timer: NodeJS.Timeout | undefined;
  #polling = false;
  #serial: Promise<void> = Promise.resolve();

  constructor(private readonly options: LiveApiOptions & { now: () => Date }) {}

  /** Sends the snapshot first, then every delta; returns the unsubscribe. */
  async subscribe(send: Send): Promise<() => void> {
    await this.#inOrder(async () => {
      if (this.#subscribers.size === 0) await this.#load();
      this.#subscribers.add(send);
      send({ type: 'snapshot', connections: await Promise.all([...this.#rows.values()].map((row) => this.#view(row))) });
    });
    this.#timer ??= setInterval(() => {
      // A slow store skips ticks rather than queueing them.
      if (this.#polling) return;
      this.#polling = true;
      this.#inOrder(() => this.#poll())
        .catch((err: unknown) => this.options.logger.warn({ err }, 'live connections stream: the store could not be read; retrying'))
        .finally(() => (this.#polling = false));
    }, this.options.pollMs ?? 250);
    // Open streams never keep a stopping server alive.
    this.#timer.unref();
    return () => {
      this.#subscribers.delete(send);
      if (this.#subscribers.size > 0) return;
      clearInterval(this.#timer);
      this.#timer = undefined;
    };
  }

  /** Reads and the fan-out run one at a time, so a snapshot and the deltas after it never interleave; a failed step fails its caller only. */
  #inOrder(step: () => Promise<void>): Promise<void> {
    const run = this.#serial.then(step);
    this.#serial = run.catch(() => undefined);
    return run;
  }

  async #load(): Promise<void> {
    this.#rows = new Map((await this.#read()).map((row) => [row.id, row]));
    this.#auditCursor = (await this.options.store.audit.list({ newestFirst: true, limit: 1 }))[0]?.id ?? 0;
    this.#sessions.clear();
  }

  #read(): Promise<LiveConnectionRecord[]> {
    return this.options.store.liveConnections.list({ freshSince: new Date(this.options.now().getTime() - LIVE_FRESH_MS).toISOString() });
  }

  async #poll(): Promise<void> {
    if (this.#subscribers.size === 0) return;
    await this.options.flushAudit();
    const kills = await this.options.store.audit.list({ afterId: this.#auditCursor, type: 'connection.killed', limit: 500 });
    for (const kill of kills) {
      this.#auditCursor = Math.max(this.#auditCursor, kill.id);
      this.#fanOut({ type: 'killed', ids: killedIds(kill), actor: kill.actor, reason: kill.reason, at: kill.at });
    }
    const rows = await this.#read();
    const { opened, closed, updated } = diffLive(this.#rows, rows);
    this.#rows = new Map(rows.map((row) => [row.id, row]));
    for (const id of closed) this.#fanOut({ type: 'closed', id });
    for (const row of updated) this.#fanOut({ type: 'updated', id: row.id, bytesUp: row.bytesUp, bytesDown: row.bytesDown, activity: row.activity, activitySince: row.activitySince, updatedAt: row.updatedAt });
    for (const row of opened) this.#fanOut({ type: 'opened', connection: await this.#view(row) });
    // Sessions are remembered only while a connection of theirs is live.
    const live = new Set(rows.map((row) => row.sessionId));
    for (const id of this.#sessions.keys()) if (!live.has(id)) this.#sessions.delete(id);
  }

  async #view(row: LiveConnectionRecord): Promise<LiveConnectionView> {
    if (!row.sessionId) return { ...row, session: null };
    if (!this.#sessions.has(row.sessionId)) this.#sessions.set(row.sessionId, summaryOf(await this.options.store.sessions.get(row.sessionId)));
    return { ...row, session: this.#sessions.get(row.sessionId) ?? null };
  }

  #fanOut(event: LiveEvent): void {
    for (const send of this.#subscribers) send(event);
  }
}

export function registerLiveApi(routes: RouteTable, input: LiveApiOptions): void {
  const options = { ...input, now: input.now ?? (() => new Date()) };
  const { store, now } = options;
  const feed = new LiveFeed(options);
  const freshSince = () => new Date(now().getTime() - LIVE_FRESH_MS).toISOString();

  routes.add({ method: 'GET', url: '/api/v1/overview', summary: 'The admins\' overview: sockets online, connectors and tunnels, live connections, denies, traffic over the last two hours', auth: 'sessions:read', response: overviewView,
    handler: async () => overview(options) });

  routes.add({ method: 'GET', url: '/api/v1/connections/events', summary: 'Live connections as server-sent events: a snapshot, then opened/updated/killed/closed, until the client goes away', auth: 'sessions:read',
    handler: async ({ request, reply }) => streamLive(request, reply, feed, options.heartbeatMs ?? 15_000) });

  routes.add({ method: 'POST', url: '/api/v1/sessions/:id/kill', summary: 'Kill every live connection of a sign-in session and revoke it', auth: 'sessions:write', change: { entity: 'session', current: (p) => store.sessions.get(p.id) }, params: idParams, response: killResult,
    handler: async ({ params, request }) => {
      const actor = actorOf(request);
      const session = await store.sessions.get(params.id);
      if (!session) throw new PosternError('not_found', `session "${params.id}" does not exist`);
      const [user, all] = await Promise.all([store.users.get(session.userId), store.liveConnections.list({ freshSince: freshSince() })]);
      const live = all.filter((c) => c.sessionId === session.id);
      // Each connection is cut by id at once; the revocation then refuses whatever the session opens next.
      for (const connection of live) await store.liveConnections.requestKill(connection.id);
      await store.sessions.revoke(session.id, now().toISOString());
      options.onSessionRevoked?.(session.id);
      options.audit({
        type: 'connection.killed', actor, clientIp: request.ip, sessionId: session.id, reason: `session ${session.id} revoked and its connections killed by ${actor}`,
        details: { user: user?.email ?? session.userId, connections: live.map((c) => c.id) },
      });
      return { killed: live.length };
    } });
}

async function overview(options: LiveApiOptions & { now: () => Date }): Promise<OverviewView> {
  const { store, hub } = options;
  const at = options.now();
  const [sockets, connectors, live] = await Promise.all([
    store.sockets.list(), store.connectors.list(), store.liveConnections.list({ freshSince: new Date(at.getTime() - LIVE_FRESH_MS).toISOString() }),
  ]);
  const tunnels = hub?.list() ?? [];
  const perConnector = new Map<string, number>();
  for (const tunnel of tunnels) perConnector.set(tunnel.connectorId, (perConnector.get(tunnel.connectorId) ?? 0) + 1);
  const active = connectors.filter((c) => !c.revokedAt);
  const online = sockets.filter((s) => hub?.isOnline(s.name) ?? false).length;
  // The last bucket is the one in progress, so the chart ends now.
  const seriesUntil = floorMinutes(at.getTime(), SERIES_BUCKET_MINUTES) + SERIES_BUCKET_MINUTES * 60_000;
  const seriesSince = seriesUntil - SERIES_BUCKETS * SERIES_BUCKET_MINUTES * 60_000;
  await options.flushAudit();
  const [buckets, lastHour] = await Promise.all([
    store.audit.countByTime({ since: new Date(seriesSince).toISOString(), until: new Date(seriesUntil).toISOString(), bucketMinutes: SERIES_BUCKET_MINUTES, types: TRAFFIC_TYPES }),
    store.audit.countByTime({ since: new Date(at.getTime() - 3600_000).toISOString(), until: at.toISOString(), bucketMinutes: 60, types: TRAFFIC_TYPES }),
  ]);
  return {
    at: at.toISOString(),
    sockets: { total: sockets.length, online, offline: sockets.length - online },
    connectors: {
      total: active.length,
      connected: active.filter((c) => perConnector.has(c.id)).length,
      tunnels: tunnels.length,
      top: active.map((c) => ({ id: c.id, name: c.name, tunnels: perConnector.get(c.id) ?? 0 }))
        .sort((a, b) => b.tunnels - a.tunnels || a.name.localeCompare(b.name)).slice(0, CONNECTORS_SHOWN),
    },
    liveConnections: live.length,
    deniesLastHour: lastHour.reduce((sum, bucket) => sum + bucket.deny, 0),
    series: { bucketMinutes: SERIES_BUCKET_MINUTES, buckets },
  };
}

/** A server-sent-events writer over one response: events and heartbeats while the client keeps up; past `maxUnsentBytes` unsent it is cut, never buffered for. */
export interface EventStream {
  send(event: LiveEvent): void;
  /** Idempotent; also runs when the client goes away. */
  end(): void;
  onEnd(listener: () => void): void;
}

export function eventStream(out: Writable, options: { heartbeatMs: number; maxUnsentBytes: number }): EventStream {
  const listeners: (() => void)[] = [];
  let done = false;
  const end = () => {
    if (done) return;
    done = true;
    clearInterval(heartbeat);
    out.destroy();
    for (const listener of listeners) listener();
  };
  const write = (text: string) => {
    if (done) return;
    if (out.writableLength > options.maxUnsentBytes) return end();
    out.write(text);
  };
  const heartbeat = setInterval(() => write(': heartbeat\n\n'), options.heartbeatMs);
  heartbeat.unref();
  out.once('close', end);
  return {
    send: (event) => write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`),
    end,
    onEnd: (listener) => (done ? listener() : void listeners.push(listener)),
  };
}

/** One `text/event-stream` per client, fed by the shared feed until the client goes away. */
async function streamLive(request: FastifyRequest, reply: FastifyReply, feed: LiveFeed, heartbeatMs: number): Promise<void> {
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'keep-alive' });
  out.flushHeaders();
  const stream = eventStream(out, { heartbeatMs, maxUnsentBytes: MAX_UNSENT_BYTES });
  request.raw.socket.once('close', stream.end);
  try {
    stream.onEnd(await feed.subscribe(stream.send));
  } catch (err) {
    // No snapshot, no stream: the client's EventSource reconnects and gets a whole one.
    request.log.warn({ err }, 'live connections stream: no snapshot; closing the stream');
    stream.end();
  }
}
