// Audit events POSTed to an HTTP receiver (a SIEM collector, a chat bridge): one request per
// batch, JSON `{ "events": [...] }` or JSON lines, optionally signed with HMAC-SHA256 so the
// receiver can check the body came from us. Anything but a 2xx answer is a failure to retry.
import { createHmac } from 'node:crypto';
import { errorMessage, PosternError } from '../errors.js';
import type { AuditEvent } from './events.js';

export interface WebhookSinkOptions {
  readonly url: string;
  /** `json` (default): `{ "events": [...] }`; `jsonl`: one event per line. */
  readonly format?: 'json' | 'jsonl';
  /** Sent verbatim as the Authorization header (e.g. `Bearer …`). */
  readonly authorization?: string;
  /** When set, `x-postern-signature: sha256=<hex HMAC of the body>`. */
  readonly secret?: string;
  /** Per request, default 10 s. */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

export interface WebhookSink {
  send(events: readonly AuditEvent[]): Promise<void>;
}

export const SIGNATURE_HEADER = 'x-postern-signature';

export function webhookSignature(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function webhookBody(events: readonly AuditEvent[], format: 'json' | 'jsonl'): string {
  if (format === 'json') return JSON.stringify({ events });
  return events.map((event) => `${JSON.stringify(event)}\n`).join('');
}

/** Origin and path only: query strings often carry tokens, and errors end up in logs. */
function displayUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function parseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new PosternError('config_invalid', 'webhook url is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PosternError('config_invalid', `webhook url must be http:// or https://, not ${url.protocol}//`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new PosternError('config_invalid', 'webhook url must not carry credentials; use the authorization option');
  }
  return url;
}

export function createWebhookSink(options: WebhookSinkOptions): WebhookSink {
  const url = parseUrl(options.url);
  const format = options.format ?? 'json';
  const timeoutMs = options.timeoutMs ?? 10_000;
  const fetchImpl = options.fetch ?? fetch;
  if (!(timeoutMs > 0)) throw new PosternError('config_invalid', 'webhook timeoutMs must be positive');
  if (options.secret === '') throw new PosternError('config_invalid', 'webhook secret must not be empty');
  const target = displayUrl(url);
  return {
    async send(events) {
      const body = webhookBody(events, format);
      const headers: Record<string, string> = {
        'content-type': format === 'json' ? 'application/json' : 'application/x-ndjson',
      };
      if (options.authorization !== undefined) headers.authorization = options.authorization;
      if (options.secret !== undefined) headers[SIGNATURE_HEADER] = webhookSignature(body, options.secret);
      let response: Response;
      try {
        // Redirects are not followed: a signed audit batch goes to the configured URL or nowhere.
        const init = { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) } as const;
        response = await fetchImpl(url, init);
        // Read the answer so the connection can be reused, and so a slow body counts against the timeout.
        await response.arrayBuffer();
      } catch (err) {
        const timedOut = err instanceof Error && err.name === 'TimeoutError';
        // fetch says only "fetch failed"; the reason (ECONNREFUSED …) is in its cause.
        const detail = err instanceof Error && err.cause !== undefined ? errorMessage(err.cause) : errorMessage(err);
        throw new PosternError(
          timedOut ? 'upstream_timeout' : 'upstream_unreachable',
          timedOut ? `webhook ${target}: no answer within ${timeoutMs} ms` : `webhook ${target}: ${detail}`,
          { cause: err, retryable: true },
        );
      }
      if (response.status < 200 || response.status > 299) {
        throw new PosternError('upstream_unreachable', `webhook ${target} answered ${response.status}`, { retryable: true });
      }
    },
  };
}
