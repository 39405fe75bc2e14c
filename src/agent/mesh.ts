// The agents' service mesh, L4: mutual TLS between agents, with policy on both identities.
//
// Sending: one loopback listener per declared dependency (`mesh.outbound`). Who connected is the
// kernel's answer (process.ts: the process holding the other end), matched against the declared
// services' `process` selectors; a service declared without one cannot call out (nothing would
// tell it from any other local process). Its current X.509-SVID is the client certificate of a
// TLS connection to the destination's agent, whose certificate must be an SVID naming exactly
// the destination; only then are the caller's bytes read at all.
//
// Receiving: one TLS listener (`mesh.listen`) for every declared service with a port, chosen by
// SNI, each served with its current SVID (rotation swaps the context for new handshakes; open
// connections keep theirs). The peer's SVID is checked by the authority (mesh-types.ts), the
// policies decide (`kind: 'service'`, the destination's labels as tags), and only an allowed
// flow reaches 127.0.0.1:<port>. Flows are recorded (flow.open/flow.close) and decided again at
// every change of the authority's view and at the decision's recheckAt; http services are
// decided per request instead (mesh-http.ts).
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { serviceSpiffeId } from '../ca/index.js';
import { systemClock, unrefTimer } from '../clock.js';
import type { Clock } from '../clock.js';
import { PosternError, errorMessage } from '../errors.js';
import { decidingRule } from '../policy/index.js';
import { canonicalIp } from '../reporting/index.js';
import type { MeshConfig, MeshOutbound } from './config.js';
import { MESH_ALPN, checkDestinationSvid, describeProcess, flowBase, meshServerName, observedEvent, parseServiceRef, serviceContext } from './mesh-core.js';
import type { MeshService, OpenFlow, ServiceName } from './mesh-core.js';
import { MeshHttpReceiver, MeshHttpSender } from './mesh-http.js';
import type { MeshIdentities } from './mesh-http.js';
import type { FlowLog, MeshAuthority, VerifiedService } from './mesh-types.js';
import { ExecutableHasher, processOfLocalConnection } from './process.js';
import type { LocalProcess } from './process.js';
import type { AgentService, ServiceSvid } from './services.js';
import { serviceKey } from './services.js';
import { processMatches } from './workload-api.js';

const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface MeshOptions {
  readonly config: MeshConfig;
  readonly identities: MeshIdentities;
  readonly authority: MeshAuthority;
  readonly flowLog: FlowLog;
  /** This agent's id (flow events name both agents). */
  readonly agentId: () => string | undefined;
  readonly logger: Logger;
  readonly clock?: Clock;
  /** Who holds the other end of a connection to an outbound listener; default: process.ts over /proc. */
  readonly processOf?: (socket: net.Socket) => Promise<LocalProcess>;
}

/** One `outbound` entry with its destination resolved. */
interface Dependency {
  readonly entry: MeshOutbound;
  readonly destination: ServiceName & { readonly spiffeId: string };
}

/**
 * Pipes two sockets both ways with TCP semantics: a FIN half-closes the other side, an error or
 * an unclean close tears both down. Reports the bytes each way once both are closed.
 */
function joinSockets(a: net.Socket, b: net.Socket, onClose: (aToB: number, bToA: number) => void): void {
  let aToB = 0;
  let bToA = 0;
  let closed = 0;
  a.on('data', (chunk: Buffer) => void (aToB += chunk.length));
  b.on('data', (chunk: Buffer) => void (bToA += chunk.length));
  for (const [from, to] of [[a, b], [b, a]] as const) {
    from.pipe(to);
    from.on('error', () => to.destroy());
    from.on('close', () => {
      if (!(from.readableEnded && from.writableFinished)) to.destroy();
      if (++closed === 2) onClose(aToB, bToA);
    });
  }
}

function listen(server: net.Server, address: { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

const newFlowId = () => `flow_${randomBytes(8).toString('hex')}`;

export class Mesh {
  readonly #options: MeshOptions;
  readonly #clock: Clock;
  readonly #processOf: (socket: net.Socket) => Promise<LocalProcess>;
  /** The services reachable through `mesh.listen`, by their TLS server name. */
  readonly #receivers = new Map<string, AgentService>();
  readonly #contexts = new Map<string, tls.SecureContext>();
  #contextCa = '';
  readonly #flows = new Set<OpenFlow>();
  /** Every accepted connection (inbound ones from before their handshake), destroyed at stop. */
  readonly #sockets = new Set<net.Socket>();
  readonly #http: MeshHttpReceiver;
  readonly #senders: MeshHttpSender[] = [];
  readonly #servers: net.Server[] = [];
  #inbound: tls.Server | undefined;
  readonly #outbound: net.Server[] = [];
  readonly #onSvid = (svid: ServiceSvid) => this.#useSvid(svid);
  readonly #onChange = () => this.#changed();

  constructor(options: MeshOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    const hasher = options.identities.services.some((s) => s.process?.sha256 !== undefined) ? new ExecutableHasher() : undefined;
    this.#processOf = options.processOf ?? ((socket) => processOfLocalConnection(socket.remotePort!, socket.localPort!, {
      localAddress: socket.remoteAddress!, remoteAddress: socket.localAddress!, ...(hasher ? { hasher } : {}),
    }));
    for (const service of options.identities.services) if (service.port !== undefined) this.#receivers.set(meshServerName(service), service);
    this.#http = new MeshHttpReceiver({
      authority: options.authority, flowLog: options.flowLog, logger: options.logger, clock: this.#clock, agentId: () => this.#agentId(), flows: this.#flows,
    });
  }

  /** Listens on `mesh.listen` and every outbound address; rejects when one is taken. */
  async start(): Promise<void> {
    const { config, identities, authority } = this.#options;
    identities.on('svid', this.#onSvid);
    authority.on('change', this.#onChange);
    this.#rebuildContexts();
    try {
      if (config.listen) {
        this.#inbound = this.#inboundServer();
        await listen(this.#track(this.#inbound), config.listen);
      }
      for (const entry of config.outbound) {
        const server = this.#outboundServer(this.#dependency(entry));
        this.#outbound.push(server);
        await listen(this.#track(server), entry.listen);
      }
    } catch (err) {
      await this.stop();
      throw new PosternError('config_invalid', `mesh: cannot listen: ${errorMessage(err)}`, { cause: err });
    }
  }

  /** Where `mesh.listen` is bound (its port, when the config asked for 0). */
  inboundAddress(): net.AddressInfo | undefined {
    return this.#inbound?.address() as net.AddressInfo | undefined;
  }

  /** Where the outbound listener of `config.outbound[index]` is bound. */
  outboundAddress(index: number): net.AddressInfo | undefined {
    return this.#outbound[index]?.address() as net.AddressInfo | undefined;
  }

  /** Stops listening and ends every flow (flow.close: the agent stopped). */
  async stop(): Promise<void> {
    this.#options.identities.off('svid', this.#onSvid);
    this.#options.authority.off('change', this.#onChange);
    for (const flow of [...this.#flows]) flow.close('the agent stopped');
    for (const socket of this.#sockets) socket.destroy();
    for (const sender of this.#senders) sender.stop();
    await Promise.all(this.#servers.map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))));
  }

  #track<T extends net.Server>(server: T): T {
    this.#servers.push(server);
    server.on('connection', (socket: net.Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    return server;
  }

  #agentId(): string {
    return this.#options.agentId() ?? '';
  }

  #dependency(entry: MeshOutbound): Dependency {
    const ref = parseServiceRef(entry.to);
    return { entry, destination: { ...ref, spiffeId: serviceSpiffeId(this.#options.authority.trustDomain, ref.namespace, ref.name) } };
  }

  // ---- server certificates -----------------------------------------------------------------

  #useSvid(svid: ServiceSvid): void {
    const name = meshServerName(svid.service);
    if (!this.#receivers.has(name)) return;
    this.#contexts.set(name, tls.createSecureContext({ cert: svid.certPem, key: svid.keyPem, ca: [...this.#options.authority.caPems()] }));
  }

  #rebuildContexts(): void {
    const { identities, authority } = this.#options;
    this.#contextCa = authority.caPems().join('');
    for (const service of this.#receivers.values()) {
      const svid = identities.svid(serviceKey(service));
      if (svid) this.#useSvid(svid);
    }
  }

  /** A new view: the trust bundle may have changed, and every open flow is decided again. */
  #changed(): void {
    if (this.#options.authority.caPems().join('') !== this.#contextCa) this.#rebuildContexts();
    for (const flow of [...this.#flows]) this.#recheck(flow);
  }

  #recheck(flow: OpenFlow): void {
    let reason: string | undefined;
    try {
      reason = flow.recheck();
    } catch (err) {
      reason = `could not be decided again: ${errorMessage(err)}`;
    }
    if (reason !== undefined) flow.close(reason);
  }

  // ---- sending -----------------------------------------------------------------------------

  /** The declared service that opened a connection to an outbound listener; PosternError forbidden when it is none. */
  async #callerOf(socket: net.Socket): Promise<AgentService> {
    let peer: LocalProcess;
    try {
      peer = await this.#processOf(socket);
    } catch (cause) {
      throw new PosternError('forbidden', `the calling process could not be identified: ${errorMessage(cause)}`, { cause });
    }
    const matching = this.#options.identities.services.filter((s) => processMatches(s, peer));
    if (matching.length === 0) throw new PosternError('forbidden', `${describeProcess(peer)} is not a declared service`);
    if (matching.length > 1) throw new PosternError('forbidden', `${describeProcess(peer)} matches ${matching.map(serviceKey).join(', ')}: one process, one identity (narrow the selectors)`);
    return matching[0]!;
  }

  #refuseCaller(dependency: Dependency, socket: net.Socket, err: unknown): void {
    const reason = errorMessage(err);
    this.#options.flowLog.record({
      type: 'access.denied', actor: '', socket: dependency.destination.spiffeId, clientIp: canonicalIp(socket.remoteAddress ?? ''), decision: 'deny', rule: '', reason,
      details: { protocol: dependency.entry.protocol, direction: 'outbound', listen: `${dependency.entry.listen.host}:${dependency.entry.listen.port}` },
    });
    this.#options.logger.warn({ destination: dependency.destination.spiffeId, reason }, 'mesh: local caller refused');
  }

  #outboundServer(dependency: Dependency): net.Server {
    if (dependency.entry.protocol === 'http') {
      const sender = new MeshHttpSender({
        destination: dependency.destination, address: dependency.entry.address, identities: this.#options.identities, authority: this.#options.authority,
        callerOf: (socket) => this.#callerOf(socket), refuse: (socket, err) => this.#refuseCaller(dependency, socket, err), logger: this.#options.logger,
      });
      this.#senders.push(sender);
      return sender.server;
    }
    // Paused: nothing of the caller is read before the destination is verified.
    return net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => void this.#sendTcp(dependency, socket));
  }

  async #sendTcp(dependency: Dependency, socket: net.Socket): Promise<void> {
    socket.on('error', () => undefined);
    let service: AgentService;
    try {
      service = await this.#callerOf(socket);
    } catch (err) {
      this.#refuseCaller(dependency, socket, err);
      return void socket.destroy();
    }
    const svid = this.#options.identities.svid(serviceKey(service));
    if (!svid) {
      this.#refuseCaller(dependency, socket, new PosternError('internal', `the SVID of ${serviceKey(service)} is not issued yet`));
      return void socket.destroy();
    }
    if (socket.destroyed) return;
    const { destination, entry } = dependency;
    const { authority, logger } = this.#options;
    // tls.connect honours allowHalfOpen (it hands it to the TLSSocket); @types/node leaves it out.
    const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
      host: entry.address.host, port: entry.address.port, servername: meshServerName(destination), ALPNProtocols: [MESH_ALPN],
      cert: svid.certPem, key: svid.keyPem, ca: [...authority.caPems()], allowHalfOpen: true, timeout: HANDSHAKE_TIMEOUT_MS,
      checkServerIdentity: (_host, cert) => checkDestinationSvid(authority, cert, destination.spiffeId),
    };
    const upstream = tls.connect(options);
    const failed = (err: Error) => {
      logger.info({ service: serviceKey(service), destination: destination.spiffeId, err: errorMessage(err) }, 'mesh: connection to the destination failed');
      socket.destroy();
    };
    const abandoned = () => upstream.destroy();
    upstream.once('timeout', () => upstream.destroy(new PosternError('upstream_timeout', `no TLS session with ${entry.address.host}:${entry.address.port} within ${HANDSHAKE_TIMEOUT_MS} ms`)));
    upstream.once('error', failed);
    socket.once('close', abandoned);
    upstream.once('secureConnect', () => {
      upstream.off('error', failed);
      socket.off('close', abandoned);
      upstream.setTimeout(0);
      if (upstream.alpnProtocol !== MESH_ALPN) return failed(new PosternError('tunnel_version_unsupported', `the destination speaks ${String(upstream.alpnProtocol)}, not ${MESH_ALPN}`));
      joinSockets(socket, upstream, () => undefined);
    });
  }

  // ---- receiving ---------------------------------------------------------------------------

  #inboundServer(): tls.Server {
    const server = tls.createServer({
      // Not allowHalfOpen here: a server that is would keep the sockets of handshakes the client gave up; each flow turns it on.
      requestCert: true, rejectUnauthorized: true, ALPNProtocols: [MESH_ALPN], handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      // Unknown names get no certificate at all: the handshake fails.
      SNICallback: (name, callback) => {
        const context = this.#contexts.get(name.toLowerCase());
        if (context) callback(null, context);
        else callback(new PosternError('not_found', `no service ${name} behind this agent`));
      },
    }, (socket) => this.#receive(socket));
    server.on('tlsClientError', (err, socket) => this.#options.logger.info({ remoteAddress: socket.remoteAddress, err: errorMessage(err) }, 'mesh: handshake refused'));
    return server;
  }

  #receive(socket: tls.TLSSocket): void {
    socket.on('error', () => undefined);
    // Requests and answers are small writes: Nagle would hold each one back for the peer's ACK.
    socket.setNoDelay(true);
    const service = typeof socket.servername === 'string' ? this.#receivers.get(socket.servername.toLowerCase()) : undefined;
    const svid = service && this.#options.identities.svid(serviceKey(service));
    if (!service || !svid || socket.alpnProtocol !== MESH_ALPN) return void socket.destroy();
    const destination: MeshService = { namespace: service.namespace, name: service.name, spiffeId: svid.spiffeId, labels: svid.labels };
    const clientIp = canonicalIp(socket.remoteAddress ?? '');
    const peer = socket.getPeerX509Certificate();
    const verified = peer ? this.#options.authority.verifyX509Svid(peer.toString()) : { ok: false as const, reason: 'no client certificate' };
    if (!verified.ok) {
      const reason = `the caller's SVID is refused: ${verified.reason}`;
      this.#options.flowLog.record({ type: 'access.denied', actor: '', socket: destination.spiffeId, clientIp, decision: 'deny', rule: '', reason, details: { protocol: service.protocol } });
      this.#options.logger.info({ service: destination.spiffeId, clientIp, reason }, 'mesh: caller refused');
      return void socket.destroy();
    }
    if (service.protocol === 'http') return this.#http.accept(socket, { destination, port: service.port!, peer: verified.service, clientIp });
    this.#receiveTcp(socket, destination, service.port!, verified.service, clientIp);
  }

  #receiveTcp(socket: tls.TLSSocket, destination: MeshService, port: number, caller: VerifiedService, clientIp: string): void {
    const { authority, flowLog, logger } = this.#options;
    const clock = this.#clock;
    const base = flowBase(destination, this.#agentId(), caller, clientIp, 'tcp');
    const context = () => serviceContext(destination, caller, { clientIp, at: new Date(clock.now()), action: { protocol: 'tls' } });
    const decide = () => {
      const ctx = context();
      const decision = authority.decide(ctx);
      return { decision, reason: decision.effect === 'deny' ? authority.denialDetail(ctx, decision) : decision.summary };
    };
    const { decision, reason: denied } = decide();
    const observed = observedEvent(decision, base, denied);
    if (observed) flowLog.record(observed);
    if (decision.effect === 'deny') {
      flowLog.record({ ...base, type: 'access.denied', decision: 'deny', rule: decidingRule(decision), reason: denied });
      logger.info({ caller: caller.spiffeId, service: destination.spiffeId, reason: denied }, 'mesh: flow denied');
      return void socket.destroy();
    }
    const id = newFlowId();
    const started = clock.now();
    flowLog.record({ ...base, type: 'flow.open', decision: 'allow', rule: decidingRule(decision), reason: decision.summary, connectionId: id });
    // A FIN from the caller half-closes the service's side only: the answer still flows back.
    socket.allowHalfOpen = true;
    const upstream = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    let ending: string | undefined;
    let timer: unknown;
    let joined = false;
    const schedule = (at: Date | undefined) => {
      clock.clearTimeout(timer);
      if (!at) return;
      timer = clock.setTimeout(() => this.#recheck(flow), Math.max(0, at.getTime() - clock.now()));
      unrefTimer(timer);
    };
    const flow: OpenFlow = {
      // The caller keeps the labels it was admitted with: they are what its SVID was issued for.
      recheck: () => {
        if (authority.isAgentRevoked(caller.agentId)) return `agent ${caller.agentId} of ${caller.spiffeId} is revoked`;
        const again = decide();
        schedule(again.decision.recheckAt);
        return again.decision.effect === 'deny' ? `decided again: ${again.reason}` : undefined;
      },
      close: (reason) => {
        ending ??= reason;
        socket.destroy();
        upstream.destroy();
      },
    };
    const finish = (bytesIn: number, bytesOut: number) => {
      this.#flows.delete(flow);
      clock.clearTimeout(timer);
      const reason = ending ?? 'closed';
      flowLog.record({ ...base, type: 'flow.close', decision: 'allow', rule: decidingRule(decision), reason, connectionId: id, details: { ...base.details, bytesIn, bytesOut, durationMs: clock.now() - started } });
      logger.info({ flow: id, caller: caller.spiffeId, service: destination.spiffeId, bytesIn, bytesOut, reason }, 'mesh: flow closed');
    };
    this.#flows.add(flow);
    schedule(decision.recheckAt);
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!joined) ending ??= `the service does not answer on port ${port} (${err.code ?? errorMessage(err)})`;
    });
    upstream.once('close', () => {
      if (joined) return;
      socket.destroy();
      finish(0, 0);
    });
    socket.once('close', () => {
      if (!joined) upstream.destroy();
    });
    upstream.once('connect', () => {
      joined = true;
      upstream.setNoDelay(true);
      joinSockets(socket, upstream, finish);
    });
  }
}
