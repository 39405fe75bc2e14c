// The live-sessions page's logic, pure: applying the stream's events to the list of live
// connections, grouping them by user and sign-in, and turning the overview's buckets into an
// SVG chart's paths. No DOM, no preact: tested under node:test.
import type { LiveConnectionView, LiveEvent, SeriesBucket, SessionSummary } from '../../../src/control/live-types.js';

export interface LiveState {
  /** Oldest first, as the server lists them. */
  readonly connections: readonly LiveConnectionView[];
  /** Connections an admin has asked to cut whose close has not arrived yet. */
  readonly killing: ReadonlySet<string>;
}

export const emptyLive: LiveState = { connections: [], killing: new Set() };

const EVENT_TYPES: ReadonlySet<string> = new Set(['snapshot', 'opened', 'updated', 'closed', 'killed']);

/** One `data:` payload of the stream, or undefined when it is not an event this page knows. */
export function parseLiveEvent(data: string): LiveEvent | undefined {
  try {
    const value: unknown = JSON.parse(data);
    if (typeof value !== 'object' || value === null) return undefined;
    const type = (value as { type?: unknown }).type;
    return typeof type === 'string' && EVENT_TYPES.has(type) ? (value as LiveEvent) : undefined;
  } catch {
    return undefined;
  }
}

/** The state after one event: a snapshot replaces everything, the others change one connection or a few. */
export function applyLiveEvent(state: LiveState, event: LiveEvent): LiveState {
  switch (event.type) {
    case 'snapshot':
      return { connections: event.connections, killing: new Set([...state.killing].filter((id) => event.connections.some((c) => c.id === id))) };
    case 'opened':
      return state.connections.some((c) => c.id === event.connection.id) ? state : { ...state, connections: [...state.connections, event.connection] };
    case 'updated':
      return {
        ...state,
        connections: state.connections.map((c) => (c.id === event.id ? { ...c, bytesUp: event.bytesUp, bytesDown: event.bytesDown, activity: event.activity, activitySince: event.activitySince, updatedAt: event.updatedAt } : c)),
      };
    case 'closed': {
      if (!state.connections.some((c) => c.id === event.id) && !state.killing.has(event.id)) return state;
      const killing = new Set(state.killing);
      killing.delete(event.id);
      return { connections: state.connections.filter((c) => c.id !== event.id), killing };
    }
    case 'killed':
      return markKilling(state, event.ids);
  }
}

/** Marks connections as being cut (at the click, before the server's `killed` arrives). */
export function markKilling(state: LiveState, ids: readonly string[]): LiveState {
  const live = ids.filter((id) => state.connections.some((c) => c.id === id));
  if (live.length === 0) return state;
  return { ...state, killing: new Set([...state.killing, ...live]) };
}

export interface SessionGroup {
  /** '' for connections that belong to no sign-in (a certificate an admin issued). */
  readonly sessionId: string;
  readonly session: SessionSummary | null;
  readonly connections: readonly LiveConnectionView[];
}

export interface UserGroup {
  readonly userId: string;
  readonly email: string;
  readonly sessions: readonly SessionGroup[];
  readonly connectionCount: number;
}

/** Users by email, each with their sign-ins (oldest first; connections without one last), each with its connections. */
export function groupLive(connections: readonly LiveConnectionView[]): UserGroup[] {
  const users = new Map<string, { userId: string; email: string; sessions: Map<string, { session: SessionSummary | null; connections: LiveConnectionView[] }> }>();
  for (const connection of connections) {
    let user = users.get(connection.userId);
    if (!user) users.set(connection.userId, (user = { userId: connection.userId, email: connection.email, sessions: new Map() }));
    let group = user.sessions.get(connection.sessionId);
    if (!group) user.sessions.set(connection.sessionId, (group = { session: connection.session, connections: [] }));
    group.connections.push(connection);
  }
  const started = (g: SessionGroup) => g.session?.createdAt ?? '\uffff';
  return [...users.values()]
    .map((user) => {
      const sessions = [...user.sessions].map(([sessionId, g]) => ({ sessionId, session: g.session, connections: g.connections }))
        .sort((a, b) => started(a).localeCompare(started(b)) || a.sessionId.localeCompare(b.sessionId));
      return { userId: user.userId, email: user.email, sessions, connectionCount: sessions.reduce((n, s) => n + s.connections.length, 0) };
    })
    .sort((a, b) => a.email.localeCompare(b.email) || a.userId.localeCompare(b.userId));
}

export interface ChartGeometry {
  /** `points` of an SVG polyline per series, left to right. */
  readonly allow: string;
  readonly deny: string;
  /** The value at the top of the chart (a round number ≥ every bucket). */
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

/** The smallest of 1, 2, 5 × 10ⁿ that is at least `n` (and at least 1), so the axis reads well. */
export function niceCeiling(n: number): number {
  if (!(n > 1)) return 1;
  const power = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 5, 10]) if (step * power >= n) return step * power;
  return 10 * power;
}

/** Polylines for the allow and deny counts of `buckets` in a `width` × `height` box (y grows down, 0 at the bottom). */
export function chartGeometry(buckets: readonly SeriesBucket[], width: number, height: number): ChartGeometry {
  const top = niceCeiling(Math.max(0, ...buckets.map((b) => Math.max(b.allow, b.deny))));
  const step = buckets.length > 1 ? width / (buckets.length - 1) : 0;
  const line = (value: (b: SeriesBucket) => number) => buckets
    .map((b, i) => `${round(i * step)},${round(height - (value(b) / top) * height)}`)
    .join(' ');
  return { allow: line((b) => b.allow), deny: line((b) => b.deny), top, width, height };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
