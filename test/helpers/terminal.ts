// The web terminal's WebSocket from node's `ws`, as a browser would open it: a person signed in on
// the control host's form (session and CSRF cookies), then the upgrade with their cookie and Origin.
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import type { ServerHandle } from './processes.js';
import { httpsFetch, loopbackLookup } from './https.js';
import { DASHBOARD_PASSWORD } from './dashboard.js';
import { withTimeout } from './util.js';

/** The session and CSRF cookies of `email` signed in on the control host's form. */
export async function signIn(server: ServerHandle, email: string): Promise<string> {
  const cookies = new Map<string, string>();
  const take = (setCookie: string | string[] | undefined) => {
    for (const line of ([] as string[]).concat(setCookie ?? [])) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
  };
  const jar = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const form = await httpsFetch({ port: server.port, ca: server.caPem, path: '/auth/login', headers: { accept: 'text/html' } });
  take(form.headers['set-cookie']);
  const csrf = /name="csrf" value="([^"]*)"/.exec(form.text)?.[1];
  assert.ok(csrf, form.text);
  const posted = await httpsFetch({
    port: server.port, ca: server.caPem, path: '/auth/login', method: 'POST',
    headers: { cookie: jar(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf, email, password: DASHBOARD_PASSWORD }).toString(),
  });
  assert.equal(posted.status, 303, posted.text);
  take(posted.headers['set-cookie']);
  assert.ok(cookies.has('__Host-postern_session'), 'signed in');
  return jar();
}

export type TerminalOutcome = { kind: 'refused'; status: number; body: string } | { kind: 'closed'; code: number; reason: string; text: string };

export interface TerminalHeaders {
  readonly cookie?: string;
  readonly origin?: string;
  /** The browser's own address on the loopback (e.g. 127.0.0.2), so the edge can tell it from the control node's. */
  readonly localAddress?: string;
}

export interface OpenTerminal {
  readonly ws: WebSocket;
  /** Everything the terminal showed so far. */
  text(): string;
  /** How it ended (bounded). */
  readonly outcome: Promise<TerminalOutcome>;
}

/** Opens the terminal's WebSocket and keeps it open; `outcome` settles when it ends. */
export function connectTerminal(server: ServerHandle, path: string, headers: TerminalHeaders): OpenTerminal {
  const ws = new WebSocket(`wss://localhost:${server.port}${path}`, {
    ca: server.caPem, lookup: loopbackLookup, headers: headers.cookie ? { cookie: headers.cookie } : {}, ...(headers.origin ? { origin: headers.origin } : {}),
    ...(headers.localAddress ? { localAddress: headers.localAddress } : {}),
  });
  let text = '';
  const ended = new Promise<TerminalOutcome>((resolve, reject) => {
    ws.on('message', (data: Buffer) => (text += data.toString('utf8')));
    ws.on('close', (code, reason) => resolve({ kind: 'closed', code, reason: reason.toString('utf8'), text }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve({ kind: 'refused', status: res.statusCode ?? 0, body }));
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
  return { ws, text: () => text, outcome: withTimeout(ended, 20_000, `the terminal at ${path}`).finally(() => ws.terminate()) };
}

/** Opens the terminal's WebSocket and resolves with how it ended (bounded). */
export function openTerminal(server: ServerHandle, path: string, headers: TerminalHeaders): Promise<TerminalOutcome> {
  return connectTerminal(server, path, headers).outcome;
}
