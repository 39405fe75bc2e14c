// The agent API: attestation (public: the evidence is the credential), renewal over mutual TLS
// with the agent's current certificate, and the admin's routes (agents, join tokens, trusted
// JWT issuers). An agent identity is an X.509 client certificate with one URI SAN,
// spiffe://<trust-domain>/agent/<id>, for a key the agent made in memory.
import type { FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { z } from 'zod';
import { PosternError } from '../errors.js';
import { caPin } from '../ca/index.js';
import type { CertificateAuthority } from '../ca/index.js';
import { generateSecret, hashToken } from '../identity/index.js';
import {
  AGENT_TOKEN_PREFIX, agentIssuerBody, agentIssuerList, agentIssuerView, agentList, agentRenewBody, agentTokenBody, attestBody, createdAgentTokenView, issuedAgentView,
} from '../api-client/index.js';
import type { AgentRecord, Store } from '../store/index.js';
import { factAttributes, joinTokenVerifier, jwtVerifier } from './agent-attestation.js';
import type { AttestationVerdict, JwtVerifierOptions } from './agent-attestation.js';
import { parseWith } from './routes.js';
import type { RouteTable } from './routes.js';

export const DEFAULT_AGENT_CERT_LIFETIME_MS = 60 * 60 * 1000;

export interface AgentApiOptions {
  store: Store;
  ca: CertificateAuthority;
  logger: Logger;
  now: () => Date;
  /** The SPIFFE trust domain of agent identities (default: the server's domain). */
  trustDomain: string;
  certLifetimeMs?: number;
  jwt?: JwtVerifierOptions;
}

const agentPage = z.object({ after: z.string().min(1).max(100).optional(), limit: z.coerce.number().int().min(1).max(1000).default(100) });
const agentIdParams = z.object({ id: z.string().min(1).max(100) });
const issuerParams = z.object({ name: z.string().min(1).max(100) });

/** The agent id a SPIFFE id names in this trust domain, or undefined. */
export function agentIdOf(spiffeId: string, trustDomain: string): string | undefined {
  const prefix = `spiffe://${trustDomain}/agent/`;
  if (!spiffeId.startsWith(prefix)) return undefined;
  const id = spiffeId.slice(prefix.length);
  return /^[a-z0-9_]{1,100}$/.test(id) ? id : undefined;
}

/** The URI SANs of a peer certificate as Node reports them (`URI:a, URI:b`). */
function uriSans(subjectaltname: string | undefined): string[] {
  return (subjectaltname ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}

/** The agent behind the client certificate of this request: issued by our CA, one agent SAN, not revoked (read from the store). */
export async function agentOfClientCertificate(request: FastifyRequest, store: Store, trustDomain: string): Promise<AgentRecord> {
  const socket = request.raw.socket as TLSSocket;
  if (!socket.authorized) throw new PosternError('certificate_invalid', 'a valid agent certificate is required (mutual TLS)');
  const cert = socket.getPeerCertificate();
  const uris = uriSans(cert.subjectaltname);
  const id = uris.length === 1 ? agentIdOf(uris[0]!, trustDomain) : undefined;
  if (id === undefined || cert.subject?.CN !== id) throw new PosternError('certificate_invalid', 'the certificate is not an agent identity of this trust domain');
  const agent = await store.agents.agents.get(id);
  if (!agent) throw new PosternError('certificate_invalid', `agent ${id} is unknown`);
  if (agent.revokedAt !== null) throw new PosternError('certificate_invalid', `agent ${id} was revoked at ${agent.revokedAt}`);
  return agent;
}

function present(agent: AgentRecord) {
  const { attestationKey: _key, ...view } = agent;
  return { ...view, attributes: { ...agent.attributes }, selfAsserted: { ...agent.selfAsserted } };
}

export function registerAgentApi(routes: RouteTable, options: AgentApiOptions): void {
  const { store, ca, logger, now, trustDomain } = options;
  const lifetimeMs = options.certLifetimeMs ?? DEFAULT_AGENT_CERT_LIFETIME_MS;
  const spiffePrefix = `spiffe://${trustDomain}/agent/`;
  const verifiers = { join_token: joinTokenVerifier(store), jwt: jwtVerifier(store, options.jwt) };

  const issue = async (agent: AgentRecord, csrPem: string) => {
    const issued = await ca.signCsr({ csrPem, commonName: agent.id, uris: [agent.spiffeId], lifetimeMs, usage: 'client' });
    await store.agents.agents.recordCertificate(agent.id, issued.serial, issued.notAfter.toISOString());
    return { agentId: agent.id, spiffeId: agent.spiffeId, certificate: issued.certPem, ca: ca.certificatePem, notAfter: issued.notAfter.toISOString() };
  };

  /** A known agent attests again (a JWT agent after a restart): refused once revoked, so revocation sticks. */
  const admit = async (verdict: AttestationVerdict, facts: Record<string, string>, at: Date): Promise<AgentRecord> => {
    const attributes = { ...(verdict.trustFacts ? facts : {}), ...verdict.attributes };
    const known = await store.agents.agents.findByAttestationKey(verdict.attestationKey);
    if (known) {
      if (known.revokedAt !== null) throw new PosternError('certificate_invalid', `agent ${known.id} was revoked at ${known.revokedAt}; it cannot attest again`);
      return store.agents.agents.reattest(known.id, { attributes, selfAsserted: facts, at: at.toISOString() });
    }
    const agent = await store.agents.agents.create({ name: verdict.name, method: verdict.method, attestationKey: verdict.attestationKey, attributes, selfAsserted: facts, spiffePrefix });
    try {
      await verdict.bind?.(agent.id);
    } catch (err) {
      await store.agents.agents.delete(agent.id);
      throw err;
    }
    return agent;
  };

  const agentFromCertificate = (request: FastifyRequest) => agentOfClientCertificate(request, store, trustDomain);

  routes.add({ method: 'POST', url: '/api/v1/agents/attest', summary: 'Attest an agent (join token or JWT, plus host facts) and issue its identity for a CSR', auth: 'public',
    body: attestBody, response: issuedAgentView, status: 201,
    handler: async ({ body }) => {
      const at = now();
      const verdict = body.method === 'jwt' ? await verifiers.jwt.verify(body, at) : await verifiers.join_token.verify(body, at);
      const agent = await admit(verdict, factAttributes(body.facts), at);
      const issued = await issue(agent, body.csr);
      logger.info({ agent: agent.id, method: agent.method }, 'agent attested');
      return issued;
    } });
  routes.add({ method: 'POST', url: '/api/v1/agents/renew', summary: 'Renew an agent identity (mutual TLS with the current one)', auth: 'public',
    body: agentRenewBody, response: issuedAgentView,
    handler: async ({ body, request }) => issue(await agentFromCertificate(request), body.csr) });

  routes.add({ method: 'GET', url: '/api/v1/agents', summary: 'List agents in id order (?after=<id>&limit=; `next` names the following page)', auth: 'agents:read', response: agentList,
    handler: async ({ request }) => {
      const query = parseWith(agentPage, request.query, 'query');
      const rows = await store.agents.agents.list({ ...(query.after !== undefined ? { after: query.after } : {}), limit: query.limit + 1 });
      const shown = rows.slice(0, query.limit);
      return { agents: shown.map(present), ...(rows.length > query.limit ? { next: shown.at(-1)!.id } : {}) };
    } });
  routes.add({ method: 'DELETE', url: '/api/v1/agents/:id', summary: 'Revoke an agent: its renewals and re-attestations fail', auth: 'agents:write', params: agentIdParams,
    change: { entity: 'agent', current: async (p) => { const a = await store.agents.agents.get(p.id); return a && present(a); } },
    handler: async ({ params }) => {
      if (!(await store.agents.agents.get(params.id))) throw new PosternError('not_found', `agent "${params.id}" does not exist`);
      await store.agents.agents.revoke(params.id, now().toISOString());
      return undefined;
    } });
  routes.add({ method: 'POST', url: '/api/v1/agents/tokens', summary: 'Create a one-time agent join token', auth: 'agents:write', change: { entity: 'agent_join_token' }, body: agentTokenBody, status: 201,
    response: createdAgentTokenView,
    handler: async ({ body }) => {
      const secret = generateSecret();
      const expiresAt = new Date(now().getTime() + body.ttl_seconds * 1000).toISOString();
      const name = body.name ?? `agent-${secret.slice(0, 6).toLowerCase()}`;
      const record = await store.agents.tokens.create({ tokenHash: hashToken(secret), agentName: name, attributes: body.attributes ?? {}, trustFacts: body.trust_facts ?? false, expiresAt });
      return { id: record.id, token: `${AGENT_TOKEN_PREFIX}.${secret}.${caPin(ca.certificatePem)}`, name, expiresAt };
    } });

  routes.add({ method: 'GET', url: '/api/v1/agents/issuers', summary: 'List the JWT issuers trusted for agent attestation', auth: 'agents:read', response: agentIssuerList,
    handler: async () => ({ issuers: (await store.agents.issuers.list()).map((i) => ({ ...i, claims: { ...i.claims }, algorithms: [...i.algorithms] })) }) });
  routes.add({ method: 'POST', url: '/api/v1/agents/issuers', summary: 'Trust a JWT issuer for agent attestation', auth: 'agents:write', change: { entity: 'agent_issuer' }, body: agentIssuerBody, response: agentIssuerView, status: 201,
    handler: async ({ body }) => {
      const issuer = await store.agents.issuers.create({
        name: body.name, issuer: body.issuer, audience: body.audience, jwksUrl: body.jwks_url, claims: body.claims, algorithms: body.algorithms, maxSkewSeconds: body.max_skew_seconds, trustFacts: body.trust_facts,
      });
      return { ...issuer, claims: { ...issuer.claims }, algorithms: [...issuer.algorithms] };
    } });
  routes.add({ method: 'DELETE', url: '/api/v1/agents/issuers/:name', summary: 'Stop trusting a JWT issuer', auth: 'agents:write', params: issuerParams,
    change: { entity: 'agent_issuer', current: (p) => store.agents.issuers.get(p.name) },
    handler: async ({ params }) => {
      await store.agents.issuers.delete(params.name);
      return undefined;
    } });
}
