// Load generators run by the bench: timed bulk downloads, wrk runs (parsed) and a new-connection loop.
import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';
import https from 'node:https';
import { runAsync, which } from './proc.js';

export interface TlsTarget {
  servername: string;
  ca: string;
  /** A client certificate (PEM), for `tls` sockets, which require one from Postern's CA. */
  key?: string;
  cert?: string;
}

export interface Download {
  bytes: number;
  seconds: number;
  mbps: number;
}

const MB = 1e6;

// One SecureContext per target identity: passing PEMs to every tls.connect would parse them and build a new context per connection.
const contexts = new Map<string, tls.SecureContext>();
function secureContext(target: TlsTarget): tls.SecureContext {
  const key = `${target.ca}\0${target.cert ?? ''}`;
  let context = contexts.get(key);
  if (!context) contexts.set(key, (context = tls.createSecureContext({ ca: target.ca || undefined, key: target.key, cert: target.cert })));
  return context;
}

function timed(expected: number, timeoutMs: number, what: string, attach: (onData: (n: number) => void, onEnd: () => void, onError: (e: Error) => void) => () => void): Promise<Download> {
  return new Promise((resolve, reject) => {
    let bytes = 0;
    let first = 0n;
    let settled = false;
    let destroy = (): void => undefined;
    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - first) / 1e9;
      destroy();
      if (err) return reject(new Error(`${what}: ${err.message} after ${bytes} bytes`));
      if (bytes !== expected) return reject(new Error(`${what}: got ${bytes} bytes, expected ${expected}`));
      resolve({ bytes, seconds, mbps: bytes / MB / seconds });
    };
    const timer = setTimeout(() => settle(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    destroy = attach((n) => {
      if (bytes === 0) first = process.hrtime.bigint();
      bytes += n;
    }, () => settle(), (e) => settle(e));
  });
}

/** Connects (plain TCP or TLS), reads and discards until the peer closes; times first byte → last byte. */
export function downloadTcp(port: number, expected: number, target?: TlsTarget, timeoutMs = 90_000): Promise<Download> {
  return timed(expected, timeoutMs, `download from :${port}${target ? ` (${target.servername})` : ''}`, (onData, onEnd, onError) => {
    const socket = target
      ? tls.connect({ host: '127.0.0.1', port, servername: target.servername, secureContext: secureContext(target) })
      : net.connect(port, '127.0.0.1');
    socket.on('data', (chunk: Buffer) => onData(chunk.length));
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', () => onError(new Error('closed without end')));
    return () => socket.destroy();
  });
}

/** GET <path> over HTTP or HTTPS (SNI + Host = servername:port), discarding the body; first → last body byte. */
export function downloadHttp(port: number, path: string, expected: number, target?: TlsTarget, timeoutMs = 90_000): Promise<Download> {
  return timed(expected, timeoutMs, `GET ${path} from :${port}${target ? ` (${target.servername})` : ''}`, (onData, onEnd, onError) => {
    const options = { host: '127.0.0.1', port, path, agent: false as const };
    const onResponse = (res: http.IncomingMessage) => {
      if (res.statusCode !== 200) return onError(new Error(`HTTP ${res.statusCode} ${res.headers['postern-error'] ?? ''}`));
      res.on('data', (chunk: Buffer) => onData(chunk.length));
      res.on('end', onEnd);
      res.on('error', onError);
    };
    const req = target
      ? https.get({ ...options, servername: target.servername, ca: target.ca, headers: { host: `${target.servername}:${port}` } }, onResponse)
      : http.get(options, onResponse);
    req.on('error', onError);
    return () => req.destroy();
  });
}

export interface WrkResult {
  rps: number;
  p50ms: number;
  p99ms: number;
  requests: number;
  problems: string[];
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  switch (unit) {
    case 'us':
      return v / 1000;
    case 'ms':
      return v;
    case 's':
      return v * 1000;
    case 'm':
      return v * 60_000;
    default:
      return Number.NaN;
  }
}

export function parseWrk(out: string): WrkResult {
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1]);
  const pct = (p: string) => {
    const m = out.match(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm'));
    return m ? toMs(m[1]!, m[2]!) : Number.NaN;
  };
  const requests = Number(out.match(/(\d+) requests in/)?.[1] ?? 0);
  const problems: string[] = [];
  const errors = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  if (errors && errors.slice(1).some((v) => v !== '0')) problems.push(errors[0]);
  const non2xx = out.match(/Non-2xx or 3xx responses: (\d+)/);
  if (non2xx) problems.push(non2xx[0]);
  if (!Number.isFinite(rps)) problems.push('wrk printed no Requests/sec');
  return { rps, p50ms: pct('50'), p99ms: pct('99'), requests, problems };
}

export const haveWrk = () => which('wrk') !== undefined;

/** wrk --latency -t 2 -c <conns> -d <seconds>s url [-H 'Name: value' …] (e.g. Host, Cookie). */
export async function wrk(url: string, conns: number, seconds: number, headers: readonly string[] = []): Promise<WrkResult> {
  const args = ['--latency', '-d', `${seconds}s`, '-t', '2', '-c', String(conns), '--timeout', '5s'];
  for (const header of headers) args.push('-H', header);
  args.push(url);
  const r = await runAsync('wrk', args, (seconds + 15) * 1000);
  if (r.code !== 0) throw new Error(`wrk ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return parseWrk(r.stdout);
}

export interface RateResult {
  perSecond: number;
  completed: number;
  errors: number;
  lastError: string;
  /** Handshakes that resumed a TLS session (only with `resume`). */
  resumed: number;
}

/** `loops` concurrent loops of connect → write 1 byte → read 1 byte → end → close, for `seconds`. */
export async function connectionRate(port: number, loops: number, seconds: number, target?: TlsTarget, options: { resume?: boolean } = {}): Promise<RateResult> {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const maxPerLoop = 5_000_000;
  let completed = 0;
  let errors = 0;
  let lastError = '';
  let resumed = 0;
  let session: Buffer | undefined;
  // The client does not verify the certificate here (like wrk): its cost would share the 2 cores with Postern.
  const once = () => new Promise<void>((resolve) => {
    const socket = target
      ? tls.connect({ host: '127.0.0.1', port, servername: target.servername, secureContext: secureContext(target), rejectUnauthorized: false, ...(options.resume && session ? { session } : {}) })
      : net.connect(port, '127.0.0.1');
    if (target && options.resume) {
      socket.once('session', (s: Buffer) => (session = s));
      socket.once('secureConnect', () => (resumed += (socket as tls.TLSSocket).isSessionReused() ? 1 : 0));
    }
    let failed = false;
    let echoed = false;
    const timer = setTimeout(() => socket.destroy(new Error('no echo/close within 5 s')), 5_000);
    socket.once(target ? 'secureConnect' : 'connect', () => socket.write('x'));
    socket.once('data', () => {
      echoed = true;
      socket.end();
    });
    socket.resume();
    socket.on('error', (err) => {
      failed = true;
      lastError = err.message;
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (echoed && !failed) completed++;
      else {
        errors++;
        if (!failed) lastError = 'closed before echo';
      }
      resolve();
    });
  });
  const loop = async () => {
    for (let i = 0; i < maxPerLoop && performance.now() < deadline; i++) {
      const before = errors;
      await once();
      if (errors > before) await new Promise((r) => setTimeout(r, 20)); // no hot spin on failures
    }
  };
  await Promise.all(Array.from({ length: loops }, loop));
  const elapsed = (performance.now() - started) / 1000;
  return { perSecond: completed / elapsed, completed, errors, lastError, resumed };
}
