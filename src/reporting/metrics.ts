// Prometheus metrics at /metrics, derived from the audit events the process records (so every
// counted thing is also in the trail) plus gauges read when scraped. Text exposition format 0.0.4.

import type { NewAuditEvent } from './events.js';

type Labels = Readonly<Record<string, string>>;

interface Family {
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly values: Map<string, number>;
}

const escapeLabel = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function labelKey(labels: Labels): string {
  return Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
}

export class Metrics {
  readonly #families = new Map<string, Family>();
  readonly #gauges = new Map<string, { help: string; read: () => number }>();

  constructor() {
    this.#define('postern_http_requests_total', 'HTTP requests through sign-in sockets, by socket, status class and decision');
    this.#define('postern_decisions_total', 'Access decisions, by protocol and result');
    this.#define('postern_connections_total', 'Long-lived connections opened, by protocol');
    this.#define('postern_bytes_total', 'Bytes through closed connections and HTTP responses, by direction');
  }

  /** A gauge read at scrape time (live connections, tunnels). */
  gauge(name: string, help: string, read: () => number): void {
    this.#gauges.set(name, { help, read });
  }

  /** Counts what one audit event stands for. */
  observe(event: NewAuditEvent): void {
    const details = (event.details ?? {}) as Record<string, unknown>;
    const protocol = typeof details.protocol === 'string' ? details.protocol : event.type === 'http.request' ? 'http' : 'other';
    switch (event.type) {
      case 'http.request': {
        const status = Number(details.status);
        this.#add('postern_http_requests_total', { socket: event.socket ?? '', code: Number.isFinite(status) ? `${Math.floor(status / 100)}xx` : 'unknown', decision: event.decision ?? '' });
        this.#add('postern_decisions_total', { protocol: 'http', decision: event.decision ?? '' });
        this.#add('postern_bytes_total', { direction: 'down' }, Number(details.bytes) || 0);
        break;
      }
      case 'access.denied':
        if (!details.live) this.#add('postern_decisions_total', { protocol, decision: 'deny' });
        break;
      case 'connection.open':
        this.#add('postern_decisions_total', { protocol, decision: 'allow' });
        this.#add('postern_connections_total', { protocol });
        break;
      case 'connection.close':
        this.#add('postern_bytes_total', { direction: 'up' }, Number(details.bytesUp) || 0);
        this.#add('postern_bytes_total', { direction: 'down' }, Number(details.bytesDown) || 0);
        break;
      default:
        break;
    }
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, family] of this.#families) {
      lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`);
      for (const [key, value] of family.values) lines.push(`${name}${key ? `{${key}}` : ''} ${value}`);
    }
    for (const [name, gauge] of this.#gauges) lines.push(`# HELP ${name} ${gauge.help}`, `# TYPE ${name} gauge`, `${name} ${gauge.read()}`);
    return `${lines.join('\n')}\n`;
  }

  #define(name: string, help: string): void {
    this.#families.set(name, { help, type: 'counter', values: new Map() });
  }

  #add(name: string, labels: Labels, by = 1): void {
    const values = this.#families.get(name)!.values;
    const key = labelKey(labels);
    values.set(key, (values.get(key) ?? 0) + by);
  }
}
