// One line a person reads for one audit event — "joe@corp.com POST /admin on grafana from
// 203.0.113.7 (RU) → 403, 61 bytes: denied (…)" — the same in `postern audit` and in syslog.
import type { AuditEvent } from './events.js';

/** One line a person reads for one event. */
export function describeEvent(event: AuditEvent): string {
  const details = event.details as Record<string, unknown>;
  const who = event.actor || 'someone';
  const from = event.clientIp ? ` from ${event.clientIp}${event.country ? ` (${event.country})` : ''}` : '';
  const on = event.socket ? ` on ${event.socket}` : '';
  const verdict = event.decision === 'deny' ? `: denied${event.reason ? ` (${event.reason})` : ''}` : event.decision === 'allow' && event.rule ? `: allowed by ${event.rule}` : '';
  switch (event.type) {
    case 'http.request':
      return `${who} ${String(details.method)} ${String(details.path)}${on}${from} → ${String(details.status)}, ${String(details.bytes)} bytes${verdict}`;
    case 'connection.close':
      return `${who} closed ${String(details.protocol ?? 'a')} connection ${event.connectionId}${on}${from}: ${event.reason}, ${String(details.bytesUp ?? 0)} bytes up, ${String(details.bytesDown ?? 0)} down, ${Math.round(Number(details.durationMs ?? 0) / 1000)} s`;
    case 'connection.open':
      return `${who} opened ${String(details.protocol ?? 'a')} connection ${event.connectionId}${on}${from}${verdict}`;
    case 'connection.killed':
      return event.connectionId
        ? `connection.killed ${event.connectionId}${on} (${String(details.user ?? 'someone')}) by ${who}${from}`
        : `connection.killed ${Array.isArray(details.connections) ? details.connections.length : 0} connections of ${String(details.user ?? 'someone')} by ${who}${from}`;
    case 'access.denied':
      return `${who} was refused${on}${from}${event.reason ? `: ${event.reason}` : ''}${event.rule ? ` [${event.rule}]` : ''}`;
    default:
      return `${who} ${event.type}${on}${from}${event.reason ? `: ${event.reason}` : ''}${event.decision === 'deny' ? '' : verdict}`;
  }
}
