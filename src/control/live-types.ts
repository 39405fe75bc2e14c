// What the overview and the live-sessions stream send, as zod schemas (the routes validate
// against them, the OpenAPI document shows them) and their types, which the web app imports
// with `import type`. No server imports here: the web build reads this file.
import { z } from 'zod';
import { signInView } from './dashboard-types.js';

export const seriesBucket = z.object({
  /** ISO 8601 start of the bucket. */
  start: z.string(),
  /** Requests and connections let in (http.request, connection.open, ssh.session.start decided allow). */
  allow: z.number().int(),
  deny: z.number().int(),
});
export type SeriesBucket = z.infer<typeof seriesBucket>;

export const overviewView = z.object({
  /** When the figures were taken. */
  at: z.string(),
  sockets: z.object({ total: z.number().int(), online: z.number().int(), offline: z.number().int() }),
  /** The connectors with the most tunnels first (at most `CONNECTORS_SHOWN`); `total` counts all that are not revoked. */
  connectors: z.object({
    total: z.number().int(),
    connected: z.number().int(),
    tunnels: z.number().int(),
    top: z.array(z.object({ id: z.string(), name: z.string(), tunnels: z.number().int() })),
  }),
  liveConnections: z.number().int(),
  deniesLastHour: z.number().int(),
  series: z.object({ bucketMinutes: z.number().int(), buckets: z.array(seriesBucket) }),
});
export type OverviewView = z.infer<typeof overviewView>;

export const CONNECTORS_SHOWN = 20;

/** The sign-in a live connection belongs to, where it has one (a certificate issued outside a sign-in has none). */
export const sessionSummary = signInView.extend({
  revokedAt: z.string().nullable(),
});
export type SessionSummary = z.infer<typeof sessionSummary>;

/** One live connection as `GET /api/v1/connections` reports it, joined with its sign-in. */
export const liveConnectionView = z.object({
  id: z.string(),
  edgeId: z.string(),
  protocol: z.string(),
  socket: z.string(),
  userId: z.string(),
  email: z.string(),
  sessionId: z.string(),
  clientIp: z.string(),
  country: z.string(),
  startedAt: z.string(),
  bytesUp: z.number(),
  bytesDown: z.number(),
  /** What it is doing now (a database session's current statement); '' when idle. */
  activity: z.string(),
  /** Since when `activity` holds; null for protocols that report none. */
  activitySince: z.string().nullable(),
  updatedAt: z.string(),
  session: sessionSummary.nullable(),
});
export type LiveConnectionView = z.infer<typeof liveConnectionView>;

/** Events of `GET /api/v1/connections/events` (the `data:` of each server-sent event, `event:` = `type`). */
export const liveEvent = z.discriminatedUnion('type', [
  /** Always first: every live connection now. */
  z.object({ type: z.literal('snapshot'), connections: z.array(liveConnectionView) }),
  z.object({ type: z.literal('opened'), connection: liveConnectionView }),
  /** Byte counters moved (edges report them every few seconds) or the activity changed (a statement started or finished). */
  z.object({ type: z.literal('updated'), id: z.string(), bytesUp: z.number(), bytesDown: z.number(), activity: z.string(), activitySince: z.string().nullable(), updatedAt: z.string() }),
  z.object({ type: z.literal('closed'), id: z.string() }),
  /** An admin asked for these to be cut; `closed` follows once the edge has cut them. */
  z.object({ type: z.literal('killed'), ids: z.array(z.string()), actor: z.string(), reason: z.string(), at: z.string() }),
]);
export type LiveEvent = z.infer<typeof liveEvent>;

export const killResult = z.object({ killed: z.number().int() });
export type KillResult = z.infer<typeof killResult>;
