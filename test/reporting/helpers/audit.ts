// In-memory audit parts for exporter tests: an append-only event list, a cursor map, a
// recording logger, and an event factory.
import type { AuditEvent, AuditQuery } from '../../../src/reporting/events.js';
import type { AuditSource, CursorStore, ExporterLogger } from '../../../src/reporting/exporter.js';

export function auditEvent(id: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id,
    type: 'access.denied',
    at: new Date(Date.UTC(2026, 0, 2, 3, 4, 5) + id * 1000).toISOString(),
    actor: 'joe@corp.example',
    socket: 'grafana',
    clientIp: '77.88.8.8',
    country: 'RU',
    decision: 'deny',
    rule: 'corp/support#1',
    reason: 'country RU is not allowed',
    connectionId: '',
    sessionId: `s-${id}`,
    details: { method: 'POST', path: '/admin' },
    ...overrides,
  };
}

export class MemorySource implements AuditSource {
  readonly events: AuditEvent[] = [];
  queries = 0;
  failNext = 0;

  append(count: number): AuditEvent[] {
    const added = Array.from({ length: count }, (_, i) => auditEvent(this.events.length + i + 1));
    this.events.push(...added);
    return added;
  }

  async list(query: AuditQuery): Promise<readonly AuditEvent[]> {
    this.queries++;
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('store unavailable');
    }
    const after = query.afterId ?? 0;
    return this.events.filter((e) => e.id > after).slice(0, query.limit ?? 100);
  }
}

export class MemoryCursors implements CursorStore {
  readonly values = new Map<string, number>();
  readonly writes: number[] = [];

  async get(name: string): Promise<number> {
    return this.values.get(name) ?? 0;
  }

  async set(name: string, id: number): Promise<void> {
    this.writes.push(id);
    this.values.set(name, id);
  }
}

export interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly obj: object;
  readonly msg: string | undefined;
}

export function recordingLogger(): ExporterLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}
