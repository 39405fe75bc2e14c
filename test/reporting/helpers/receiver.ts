// A real webhook receiver on 127.0.0.1: records each request, and takes the events in it only
// when it answers 2xx, so a test can see exactly what was delivered. It can answer with an
// error status for a while, or stop listening altogether and come back on the same port.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuditEvent } from '../../../src/reporting/events.js';

export interface ReceivedRequest {
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly status: number;
}

export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  readonly events: AuditEvent[] = [];
  /** Status for the next requests; 200 takes the events. */
  status = 200;
  /** When set, answers this many requests with `status`, then 200. */
  failuresLeft = Infinity;
  /** Never answer (for timeouts). */
  hang = false;
  private server: http.Server | undefined;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/audit?token=query-secret`;
  }

  async listen(port = 0): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (this.hang) return;
        const body = Buffer.concat(chunks).toString('utf8');
        let status = 200;
        if (this.status !== 200 && this.failuresLeft > 0) {
          status = this.status;
          this.failuresLeft--;
        }
        this.requests.push({ headers: req.headers, body, status });
        if (status >= 200 && status < 300) this.events.push(...parseEvents(req.headers['content-type'], body));
        // Redirect answers point elsewhere on this receiver, which a sink must not follow.
        res.writeHead(status, { 'content-type': 'text/plain', location: '/elsewhere' }).end(status === 200 ? 'ok' : 'not now');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Stops listening and cuts kept-alive connections, so the port refuses until listen() again. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function parseEvents(contentType: string | undefined, body: string): AuditEvent[] {
  if (contentType === 'application/x-ndjson') {
    return body.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as AuditEvent);
  }
  return (JSON.parse(body) as { events: AuditEvent[] }).events;
}
