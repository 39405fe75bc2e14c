// One edge to attack: a real server and connector, a plain Node upstream that records every
// request it parses (it answers upgrades like any request and keeps reading, as most servers
// do), a Python wsgiref upstream, sign-in and public sockets, a deny rule for /admin, and a
// raw TLS client that writes exactly the bytes a test gives.
import assert from 'node:assert/strict';
import http from 'node:http';
import tls from 'node:tls';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { api } from '../helpers/https.js';
import { SignInBrowser } from '../helpers/browser.js';
import { cleanupAll, startConnector, startServer, writeConnectorConfig } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { startWsgiUpstream } from '../helpers/wsgi.js';
import type { WsgiUpstream } from '../helpers/wsgi.js';
import { tempDir, withTimeout } from '../helpers/util.js';

export const PASSWORD = 'correct horse battery staple';
export const USER = 'ana@corp.example';

/** One request as the Node upstream parsed it; `complete` once its whole body arrived. */
export interface Parsed {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  complete: boolean;
  aborted: boolean;
  bytes: number;
}

export interface RecordingUpstream {
  readonly url: string;
  readonly seen: Parsed[];
  close(): Promise<void>;
}

/** `/sink…` reads the body and answers when it is complete; everything else answers at once with the head it saw. */
export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const seen: Parsed[] = [];
  const server = http.createServer((req, res) => {
    const entry: Parsed = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, complete: false, aborted: false, bytes: 0 };
    seen.push(entry);
    req.on('data', (chunk: Buffer) => (entry.bytes += chunk.length));
    req.on('end', () => {
      entry.complete = true;
      if (entry.url.startsWith('/sink')) res.end(`got ${entry.bytes} bytes\n`);
    });
    req.on('close', () => {
      if (!entry.complete) entry.aborted = true;
    });
    if (entry.url.startsWith('/sink')) return;
    res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['__Host-postern_session=planted; Path=/; Secure', 'app=1'] });
    res.end(JSON.stringify({ method: entry.method, url: entry.url, headers: entry.headers }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export interface RawResult {
  /** Everything the edge sent back, as latin1 text. */
  text: string;
  /** Whether the edge closed the connection within the wait. */
  closed: boolean;
}

export interface EdgeFixture {
  server: ServerHandle;
  node: RecordingUpstream;
  wsgi: WsgiUpstream;
  /** The signed-in user's Cookie header for a socket host. */
  cookieFor(socket: string): Promise<string>;
  /** Writes `parts` (each after `gapMs`) on a fresh TLS connection to `<socket>.localhost`, then reads until close or `waitMs`. */
  raw(socket: string, parts: readonly (string | Buffer)[], options?: { gapMs?: number; waitMs?: number }): Promise<RawResult>;
  close(): Promise<void>;
}

export interface FixtureOptions {
  /** Extra `postern server` flags. */
  serverArgs?: readonly string[];
}

/**
 * Sockets: `app` (sign-in, Node upstream), `wsgi` (sign-in, wsgiref), `pub` (public, Node
 * upstream), `rawapp` (sign-in, Node upstream, raw paths). A policy denies every /admin path on
 * app, wsgi and pub.
 */
export async function startEdgeFixture(options: FixtureOptions = {}): Promise<EdgeFixture> {
  const dir = (await tempDir()).path;
  const [node, wsgi] = await Promise.all([startRecordingUpstream(), startWsgiUpstream()]);
  const server = await startServer({ extraArgs: options.serverArgs ?? [] });
  const cli = async (args: string[]) => {
    const result = await server.cli(args);
    assert.equal(result.code, 0, `postern ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  assert.equal((await api(server, '/api/v1/users', { method: 'POST', body: { email: USER, password: PASSWORD } })).status, 201);
  await cli(['socket', 'create', '--name', 'app', '--cloudauth']);
  await cli(['socket', 'create', '--name', 'wsgi', '--cloudauth']);
  await cli(['socket', 'create', '--name', 'pub']);
  await cli(['socket', 'create', '--name', 'rawapp', '--cloudauth', '--raw-paths']);
  const policy = join(dir, 'no-admin.yaml');
  await writeFile(policy, 'name: no-admin\nsockets: [app, wsgi, pub]\nrules:\n  - effect: deny\n    what: { http: { paths: ["/admin/*"] } }\n');
  await cli(['policy', 'apply', '-f', policy]);
  const token = (await cli(['connector', 'token', 'create', '--name', 'attacked', '--socket', 'app', '--socket', 'wsgi', '--socket', 'pub', '--socket', 'rawapp'])).trim();
  const config = await writeConnectorConfig(dir, 'c.yaml', {
    server: server.url, token,
    sockets: [
      { name: 'app', type: 'http', upstream: node.url },
      { name: 'wsgi', type: 'http', upstream: wsgi.url },
      { name: 'pub', type: 'http', upstream: node.url },
      { name: 'rawapp', type: 'http', upstream: node.url },
    ],
  });
  await startConnector(['connector', 'start', '--config', config], server.env);

  const cookies = new Map<string, string>();
  const cookieFor = async (socket: string) => {
    let cookie = cookies.get(socket);
    if (cookie === undefined) {
      const browser = new SignInBrowser(server, PASSWORD);
      const landed = await browser.signIn(`https://${socket}.localhost:${server.port}/`, USER);
      assert.equal(landed.status, 200, landed.text);
      cookie = [...browser.cookies(`${socket}.localhost`)].map(([k, v]) => `${k}=${v}`).join('; ');
      cookies.set(socket, cookie);
    }
    return cookie;
  };

  const raw = (socket: string, parts: readonly (string | Buffer)[], { gapMs = 0, waitMs = 5_000 } = {}) => withTimeout(new Promise<RawResult>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const conn = tls.connect({ host: '127.0.0.1', port: server.port, servername: `${socket}.localhost`, ca: server.caPem });
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      conn.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    conn.on('data', (chunk: Buffer) => chunks.push(chunk));
    conn.once('close', () => finish(true));
    conn.once('error', (err) => (chunks.length ? finish(true) : reject(err)));
    conn.once('secureConnect', async () => {
      for (const [i, part] of parts.entries()) {
        if (i > 0 && gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
        if (!conn.destroyed) conn.write(part);
      }
    });
  }), waitMs + 5_000, `raw exchange with ${socket}`);

  return {
    server, node, wsgi, cookieFor, raw,
    close: async () => {
      await cleanupAll();
      await Promise.all([node.close(), wsgi.close()]);
    },
  };
}

/** A request head for `<socket>.localhost` (CRLF line ends, blank line included). */
export function head(fixture: EdgeFixture, socket: string, requestLine: string, headers: readonly string[] = []): string {
  return [requestLine, `Host: ${socket}.localhost:${fixture.server.port}`, ...headers, '', ''].join('\r\n');
}

/** The status codes of every response head in a raw exchange, in order. */
export function statuses(text: string): number[] {
  return [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
}
