// The Workload API: HTTP over a Unix socket on the host, where a service's own code gets its
// identity — `GET /svid` (certificate, key and bundle PEM), `POST /jwt {aud}` (a JWT-SVID),
// `GET /bundle`. Who is calling is decided by the kernel's facts, never by what the caller says:
// the peer process of the connection (process.ts: its executable, uid and the executable's
// sha256) must match a service's declared `process` selector. A caller may name the service
// (`?service=<namespace/name>`) to choose among several it matches, never to get one it does
// not; a service declared without a process selector is never handed out here.
import { chmod, rm } from 'node:fs/promises';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { PosternError, errorMessage, isPosternError } from '../errors.js';
import { ExecutableHasher, processOfUnixPeer } from './process.js';
import type { LocalProcess } from './process.js';
import type { AgentService, ServiceIdentities } from './services.js';
import { serviceKey } from './services.js';

const MAX_BODY = 16 * 1024;

/** Whether the process matches the service's declared selector (exe, and uid and sha256 when given). */
export function processMatches(service: AgentService, peer: Pick<LocalProcess, 'exe' | 'exeDeleted' | 'uid' | 'sha256'>): boolean {
  const selector = service.process;
  if (!selector || peer.exeDeleted || peer.exe !== selector.exe) return false;
  if (selector.uid !== undefined && peer.uid !== selector.uid) return false;
  if (selector.sha256 !== undefined && peer.sha256 !== selector.sha256) return false;
  return true;
}

/** The one service this caller is; `asked` narrows the choice. Throws forbidden or bad_request. */
export function callerService(services: readonly AgentService[], peer: LocalProcess, asked: string | undefined): AgentService {
  const who = `pid ${peer.pid} (${peer.exe}, uid ${peer.uid})`;
  if (asked !== undefined) {
    const service = services.find((s) => serviceKey(s) === asked || (s.namespace === 'default' && s.name === asked));
    if (!service) throw new PosternError('not_found', `service ${asked} is not declared on this host`);
    if (!processMatches(service, peer)) throw new PosternError('forbidden', `${who} does not match the process declared for ${serviceKey(service)}`);
    return service;
  }
  const matching = services.filter((s) => processMatches(s, peer));
  if (matching.length === 0) throw new PosternError('forbidden', `${who} matches no service declared on this host`);
  if (matching.length > 1) throw new PosternError('bad_request', `${who} matches ${matching.map(serviceKey).join(', ')}: name one with ?service=`);
  return matching[0]!;
}

export interface WorkloadApiOptions {
  socketPath: string;
  mode: '0600' | '0660';
  identities: ServiceIdentities;
  logger: Logger;
  /** Who is on the other end of an accepted connection; default: process.ts over /proc and ss. */
  peerOf?: (socket: Socket) => Promise<LocalProcess>;
}

export class WorkloadApi {
  readonly #server: http.Server;
  readonly #peers = new WeakMap<Socket, Promise<LocalProcess>>();
  readonly #peerOf: (socket: Socket) => Promise<LocalProcess>;

  constructor(private readonly options: WorkloadApiOptions) {
    const hasher = options.identities.services.some((s) => s.process?.sha256 !== undefined) ? new ExecutableHasher() : undefined;
    this.#peerOf = options.peerOf ?? ((socket) => processOfUnixPeer(socket, hasher ? { hasher } : {}));
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
  }

  async listen(): Promise<void> {
    // A socket file left by an agent that died would make listen fail with EADDRINUSE.
    await rm(this.options.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.options.socketPath, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    await chmod(this.options.socketPath, Number.parseInt(this.options.mode, 8));
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
  }

  /** Looked up once per connection (a keep-alive client is the same process throughout). */
  #peer(socket: Socket): Promise<LocalProcess> {
    let peer = this.#peers.get(socket);
    if (!peer) this.#peers.set(socket, (peer = this.#peerOf(socket)));
    return peer;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://workload');
    try {
      const answer = await this.#route(req, url);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    } catch (err) {
      const status = isPosternError(err) ? err.httpStatus : 500;
      if (status === 403) this.options.logger.warn({ path: url.pathname, err: errorMessage(err) }, 'workload API refused a caller');
      res.writeHead(status, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ title: errorMessage(err), status, code: isPosternError(err) ? err.code : 'internal' }));
    }
  }

  async #route(req: http.IncomingMessage, url: URL): Promise<unknown> {
    const route = `${req.method} ${url.pathname}`;
    if (route !== 'GET /svid' && route !== 'POST /jwt' && route !== 'GET /bundle') throw new PosternError('not_found', `${route}: the Workload API serves GET /svid, POST /jwt and GET /bundle`);
    let peer: LocalProcess;
    try {
      peer = await this.#peer(req.socket);
    } catch (cause) {
      throw new PosternError('forbidden', `the calling process could not be identified: ${errorMessage(cause)}`, { cause });
    }
    const service = callerService(this.options.identities.services, peer, url.searchParams.get('service') ?? undefined);
    const key = serviceKey(service);
    const svid = this.options.identities.svid(key);
    if (!svid) throw new PosternError('internal', `the SVID of ${key} is not issued yet`, { retryable: true });
    if (route === 'GET /bundle') return { bundle: svid.bundlePem };
    if (route === 'GET /svid') return { spiffeId: svid.spiffeId, certificate: svid.certPem, key: svid.keyPem, bundle: svid.bundlePem, notAfter: svid.notAfter, labels: svid.labels };
    const body = await readJson(req);
    const audience = typeof body.aud === 'string' && body.aud.length > 0 && body.aud.length <= 1000 ? body.aud : undefined;
    if (!audience) throw new PosternError('bad_request', 'POST /jwt needs {"aud": "<audience>"}');
    return this.options.identities.jwt(key, audience);
  }
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new PosternError('bad_request', 'body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through: the same answer as a non-object
  }
  throw new PosternError('bad_request', 'the body must be a JSON object');
}
