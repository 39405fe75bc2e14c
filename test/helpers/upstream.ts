// The private service behind a connector: echoes request heads as JSON, streams on demand,
// serves and hashes large bodies, and echoes WebSocket messages on /ws.
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { IncomingHttpHeaders } from 'node:http';

/** An odd-sized random block, so repeats never line up with transport chunk sizes. */
const PATTERN = randomBytes(1024 * 1024 + 7);

/** `n` deterministic bytes (the pattern repeated), as a stream of ~1 MiB chunks. */
export function patternStream(n: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= n) return void this.push(null);
      const size = Math.min(PATTERN.length, n - sent);
      sent += size;
      this.push(size === PATTERN.length ? PATTERN : PATTERN.subarray(0, size));
    },
  });
}

const hashes = new Map<number, string>();

/** SHA-256 hex of `patternStream(n)`. */
export function patternSha256(n: number): string {
  let hex = hashes.get(n);
  if (!hex) {
    const hash = createHash('sha256');
    for (let done = 0; done < n; done += PATTERN.length) hash.update(PATTERN.subarray(0, Math.min(PATTERN.length, n - done)));
    hex = hash.digest('hex');
    hashes.set(n, hex);
  }
  return hex;
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

export interface Upstream {
  readonly port: number;
  readonly url: string;
  /** Heads of every HTTP request and WebSocket upgrade, in order. */
  readonly seen: SeenRequest[];
  /** How many /stream responses have sent their last chunk. */
  readonly streamsFinished: number;
  /** Lets every waiting /stream response send its last chunk. */
  releaseStreams(): void;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  let gates: (() => void)[] = [];
  let streamsFinished = 0;
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname === '/stream') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first\n');
      // The last chunk waits for the test (bounded, so a failed test cannot hang the upstream).
      const timer = setTimeout(() => finish(), 30_000);
      const finish = () => {
        clearTimeout(timer);
        streamsFinished++;
        res.end('last\n');
      };
      gates.push(finish);
      return;
    }
    if (url.pathname === '/bytes') {
      const n = Number(url.searchParams.get('n') ?? '0');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      return void patternStream(n).pipe(res);
    }
    if (url.pathname === '/sha256' && req.method === 'POST') {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => ((bytes += chunk.length), hash.update(chunk)));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ sha256: hash.digest('hex'), bytes }));
      });
      return;
    }
    // Drain any body, then echo the head.
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'e2e' });
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
    });
  });
  server.keepAliveTimeout = 5_000;
  const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });
  wss.on('headers', (_headers, req) => seen.push({ method: 'UPGRADE', url: req.url ?? '', headers: req.headers }));
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    get streamsFinished() {
      return streamsFinished;
    },
    releaseStreams: () => {
      const waiting = gates;
      gates = [];
      for (const finish of waiting) finish();
    },
    close: async () => {
      for (const finish of gates) finish();
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
