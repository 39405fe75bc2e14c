// What the mesh tests build "agents" from, in one process, out of real parts: a real CA issuing
// X.509-SVIDs (both EKUs, as the control plane issues them), a real JwtSvidSigner, real
// SigningKeys for people's assertions, the real policy engine; a MeshAuthority over them (the
// control plane's view, as MeshView holds it) and a ServiceIdentities-like SVID source per agent.
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { realpathSync } from 'node:fs';
import net from 'node:net';
import { createLocalJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import pino from 'pino';
import { CertificateAuthority, JwtSvidSigner, checkX509Svid, createKeyCipher, createSvidKeyAndCsr, serviceSpiffeId, verifyJwtSvid } from '../../src/ca/index.js';
import { agentServiceSchema, serviceKey } from '../../src/agent/index.js';
import type { AgentService, AssertedUser, FlowLog, MeshAuthority, MeshIdentities, ServiceSvid, VerifiedService } from '../../src/agent/index.js';
import type { JwtSvid } from '../../src/api-client/index.js';
import { PosternError } from '../../src/errors.js';
import { SigningKeys, generateSigningKey } from '../../src/identity/index.js';
import { compilePolicies, denialDetail, evaluate, validatePolicyDocument } from '../../src/policy/index.js';
import type { Decision, PolicySet, RequestContext } from '../../src/policy/index.js';
import type { NewAuditEvent } from '../../src/reporting/index.js';
import { MemorySecrets } from '../ca/helpers.js';

export const TRUST_DOMAIN = 'mesh.test';
export const ISSUER = 'https://postern.mesh.test';
/** The executable of this test process, as /proc shows it: the caller of every outbound test connection. */
export const NODE_EXE = realpathSync(process.execPath);
export const silent = pino({ level: 'silent' });

export const service = (input: Record<string, unknown>): AgentService => agentServiceSchema.parse(input);

/** The control plane's view: policies, declared services with their labels, revoked agents, the keys. */
export class TestAuthority extends EventEmitter implements MeshAuthority {
  readonly trustDomain = TRUST_DOMAIN;
  readonly labels = new Map<string, Readonly<Record<string, string>>>();
  readonly revoked = new Set<string>();
  #policies: PolicySet = compilePolicies([]);

  constructor(readonly ca: CertificateAuthority, readonly signer: JwtSvidSigner, readonly userKeys: SigningKeys) {
    super();
  }

  static async create(): Promise<TestAuthority> {
    const ca = await CertificateAuthority.loadOrCreate(new MemorySecrets(), createKeyCipher(randomBytes(32)));
    const svidKey = await generateSigningKey();
    const signer = await JwtSvidSigner.load(svidKey.kid, svidKey.privateKey as Parameters<typeof JwtSvidSigner.load>[1]);
    return new TestAuthority(ca, signer, await SigningKeys.load(await generateSigningKey()));
  }

  caPems(): readonly string[] {
    return [this.ca.certificatePem];
  }

  verifyX509Svid(certPem: string): { ok: true; service: VerifiedService } | { ok: false; reason: string } {
    const check = checkX509Svid(certPem, { caPems: this.caPems(), trustDomain: TRUST_DOMAIN, now: Date.now(), isAgentRevoked: (id) => this.revoked.has(id) });
    if (!check.ok) return { ok: false, reason: `${check.reason}: ${check.detail}` };
    const labels = this.labels.get(check.spiffeId);
    if (!labels) return { ok: false, reason: `service-not-declared: ${check.spiffeId}` };
    return { ok: true, service: { spiffeId: check.spiffeId, namespace: check.namespace, name: check.name, agentId: check.agentId, labels } };
  }

  async verifyJwtSvid(token: string, audience: string): Promise<VerifiedService> {
    const v = await verifyJwtSvid(token, { jwks: this.signer.jwks(), audience, trustDomain: TRUST_DOMAIN, now: Math.floor(Date.now() / 1000), isAgentRevoked: (id) => this.revoked.has(id) });
    return { spiffeId: v.spiffeId, namespace: v.namespace, name: v.name, agentId: v.agentId, labels: v.labels };
  }

  async verifyUserAssertion(token: string): Promise<AssertedUser> {
    try {
      const { payload } = await jwtVerify(token, createLocalJWKSet(this.userKeys.jwks()), { issuer: ISSUER, algorithms: ['ES256'] });
      return { id: payload.sub!, email: String(payload.email), groups: (payload.groups as string[] | undefined) ?? [] };
    } catch (err) {
      throw new PosternError(err instanceof joseErrors.JWTExpired ? 'token_expired' : 'token_invalid', 'the Postern assertion does not verify', { cause: err });
    }
  }

  isAgentRevoked(agentId: string): boolean {
    return this.revoked.has(agentId);
  }

  decide(ctx: RequestContext): Decision {
    return evaluate(ctx, this.#policies);
  }

  denialDetail(ctx: RequestContext, decision: Decision): string {
    return denialDetail(ctx, this.#policies, decision);
  }

  /** A new view with these policy documents. */
  setPolicies(documents: readonly unknown[]): void {
    this.#policies = compilePolicies(documents.map((d, i) => ({ document: validatePolicyDocument(d), version: i + 1 })));
    this.emit('change');
  }

  revoke(agentId: string): void {
    this.revoked.add(agentId);
    this.emit('change');
  }

  /** A person's assertion as the edge signs it. */
  assertion(email: string, options: { issuedAt?: number; lifetime?: number } = {}): Promise<string> {
    const issuedAt = options.issuedAt ?? Math.floor(Date.now() / 1000);
    return this.userKeys.sign({
      issuer: ISSUER, audience: 'https://ui.localhost', issuedAt, expiresAt: issuedAt + (options.lifetime ?? 300),
      subject: { sessionId: `ses_${email.split('@')[0]}`, userId: `usr_${email.split('@')[0]}`, email, groups: ['staff'] },
    });
  }
}

/** One agent's service identities, issued by the test CA (what ServiceIdentities gets from the control plane). */
export class TestIdentities extends EventEmitter implements MeshIdentities {
  readonly #svids = new Map<string, ServiceSvid>();

  constructor(readonly authority: TestAuthority, readonly agentId: string, readonly services: readonly AgentService[]) {
    super();
  }

  /** Issues (again) every service's SVID, declares it to the authority and emits `svid`, as a renewal does. */
  async issue(): Promise<void> {
    for (const s of this.services) {
      const spiffeId = serviceSpiffeId(TRUST_DOMAIN, s.namespace, s.name);
      const { keyPem, csrPem } = await createSvidKeyAndCsr(spiffeId);
      const issued = await this.authority.ca.signCsr({ csrPem, commonName: this.agentId, uris: [spiffeId], lifetimeMs: 3_600_000, usage: 'mutual' });
      const svid: ServiceSvid = { service: s, spiffeId, certPem: issued.certPem, keyPem, bundlePem: this.authority.ca.certificatePem, notAfter: issued.notAfter.toISOString(), labels: s.labels };
      this.authority.labels.set(spiffeId, s.labels);
      this.#svids.set(serviceKey(s), svid);
      this.emit('svid', svid);
    }
  }

  svid(key: string): ServiceSvid | undefined {
    return this.#svids.get(key);
  }

  async jwt(key: string, audience: string): Promise<JwtSvid> {
    const svid = this.#svids.get(key);
    if (!svid) throw new PosternError('not_found', `no SVID for ${key}`);
    return this.signJwt(svid, audience);
  }

  /** A JWT-SVID as the control plane signs it; `issuedAt` in the past makes an expired one. */
  async signJwt(svid: ServiceSvid, audience: string, issuedAt = Math.floor(Date.now() / 1000), ttl = 60): Promise<JwtSvid> {
    const token = await this.authority.signer.sign({ spiffeId: svid.spiffeId, audience, labels: svid.labels, agentId: this.agentId }, issuedAt, ttl);
    return { token, spiffeId: svid.spiffeId, expiresAt: new Date((issuedAt + ttl) * 1000).toISOString() };
  }
}

/** Every event the mesh recorded, in order. */
export class TestFlowLog implements FlowLog {
  readonly events: NewAuditEvent[] = [];

  record(event: NewAuditEvent): void {
    this.events.push(event);
  }

  of(type: NewAuditEvent['type']): NewAuditEvent[] {
    return this.events.filter((e) => e.type === type);
  }
}

/** A TCP echo service that counts the connections and bytes it saw. */
export async function startEchoService(): Promise<{ port: number; connections: number; bytes: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, bytes: 0 };
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (chunk) => void (state.bytes += chunk.length));
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return state.connections;
    },
    get bytes() {
      return state.bytes;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A connected client of an echo service through the mesh: send a line, read it back. */
export async function echoClient(port: number): Promise<{ socket: net.Socket; roundTrip(text: string): Promise<string> }> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  await once(socket, 'connect');
  let received = '';
  const waiting: { text: string; resolve: (value: string) => void; reject: (err: Error) => void }[] = [];
  socket.on('data', (chunk: Buffer) => {
    received += chunk.toString('utf8');
    const next = waiting[0];
    if (next && received.length >= next.text.length) {
      waiting.shift();
      const answer = received.slice(0, next.text.length);
      received = received.slice(next.text.length);
      next.resolve(answer);
    }
  });
  socket.on('close', () => {
    for (const w of waiting.splice(0)) w.reject(new Error('the connection closed'));
  });
  socket.on('error', () => undefined);
  return {
    socket,
    roundTrip: (text) => new Promise((resolve, reject) => {
      if (socket.destroyed) return reject(new Error('the connection closed'));
      waiting.push({ text, resolve, reject });
      socket.write(text);
    }),
  };
}

/** Resolves when the socket has closed (both ways), whether by an end, a reset or an error. */
export function closed(socket: net.Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}
