// The service-identity API: an agent (mutual TLS with its agent certificate) asks for the
// X.509-SVID and JWT-SVIDs of the services it declares; the trust bundle (CA certificates +
// JWKS) is public; the admin lists the declarations accepted.
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { PosternError } from '../errors.js';
import { csrRequestedNames, serviceSpiffeId } from '../ca/index.js';
import type { CertificateAuthority, JwtSvidSigner, KeyCipher } from '../ca/index.js';
import { issuedSvidView, jwtSvidBody, jwtSvidView, serviceList, svidBody, trustBundleView } from '../api-client/index.js';
import type { ServiceRecord, Store } from '../store/index.js';
import { agentOfClientCertificate } from './agent-api.js';
import { parseWith } from './routes.js';
import type { RouteTable } from './routes.js';
import { assertMaySpeakFor, loadOrCreateJwtSvidSigner } from './svid.js';

export interface ServiceApiOptions {
  store: Store;
  ca: CertificateAuthority;
  cipher: KeyCipher;
  logger: Logger;
  now: () => Date;
  trustDomain: string;
  /** X.509-SVID lifetime (the agent identity's, by default one hour). */
  certLifetimeMs: number;
}

const servicePage = z.object({ after: z.string().min(1).max(200).optional(), limit: z.coerce.number().int().min(1).max(1000).default(100) });

function present(service: ServiceRecord) {
  return { ...service, labels: { ...service.labels }, process: service.process && { ...service.process } };
}

export function registerServiceApi(routes: RouteTable, options: ServiceApiOptions): void {
  const { store, ca, logger, now, trustDomain } = options;
  let signer: Promise<JwtSvidSigner> | undefined;
  const jwtSigner = () => (signer ??= loadOrCreateJwtSvidSigner(store.secrets, options.cipher).catch((err) => {
    signer = undefined;
    throw err;
  }));

  const callingAgent = (request: FastifyRequest) => agentOfClientCertificate(request, store, trustDomain);

  routes.add({ method: 'POST', url: '/api/v1/agents/svid', summary: 'Issue the X.509-SVID of a service the calling agent declares (mutual TLS with the agent certificate)', auth: 'public',
    body: svidBody, response: issuedSvidView,
    handler: async ({ body, request }) => {
      const agent = await callingAgent(request);
      const { service, csr } = body;
      assertMaySpeakFor(agent, service.namespace, service.name);
      const spiffeId = serviceSpiffeId(trustDomain, service.namespace, service.name);
      // The CA writes only the names we give it; a CSR asking for more (or another id) says the agent is confused or lying.
      const asked = csrRequestedNames(csr);
      if (asked === undefined) throw new PosternError('bad_request', 'certificate signing request is not valid PEM/DER');
      if (asked.length !== 1 || asked[0] !== `url:${spiffeId}`) {
        throw new PosternError('forbidden', `the CSR asks for ${asked.length === 0 ? 'no name' : asked.join(', ')}; an SVID of ${service.namespace}/${service.name} has exactly one URI SAN, ${spiffeId}`);
      }
      // CN = the agent that speaks for the service: what a verifier checks against revocations.
      const issued = await ca.signCsr({ csrPem: csr, commonName: agent.id, uris: [spiffeId], lifetimeMs: options.certLifetimeMs, usage: 'mutual' });
      await store.agents.services.declare({
        namespace: service.namespace, name: service.name, spiffeId, agentId: agent.id, labels: service.labels,
        ...(service.port !== undefined ? { port: service.port } : {}), ...(service.process ? { process: service.process } : {}),
      });
      logger.info({ agent: agent.id, service: spiffeId }, 'service SVID issued');
      return { spiffeId, certificate: issued.certPem, ca: ca.certificatePem, notAfter: issued.notAfter.toISOString(), labels: { ...service.labels } };
    } });

  routes.add({ method: 'POST', url: '/api/v1/agents/jwt-svid', summary: 'Issue a JWT-SVID (required audience, at most 5 minutes) for a service the calling agent declared', auth: 'public',
    body: jwtSvidBody, response: jwtSvidView,
    handler: async ({ body, request }) => {
      const agent = await callingAgent(request);
      assertMaySpeakFor(agent, body.namespace, body.name);
      const declared = await store.agents.services.get(body.namespace, body.name);
      if (!declared) throw new PosternError('not_found', `service ${body.namespace}/${body.name} is not declared: its agent gets its X.509-SVID first`);
      const issuedAt = Math.floor(now().getTime() / 1000);
      const token = await (await jwtSigner()).sign({ spiffeId: declared.spiffeId, audience: body.audience, labels: declared.labels, agentId: agent.id }, issuedAt, body.ttl_seconds);
      return { token, spiffeId: declared.spiffeId, expiresAt: new Date((issuedAt + body.ttl_seconds) * 1000).toISOString() };
    } });

  routes.add({ method: 'GET', url: '/api/v1/trust-bundle', summary: 'The trust bundle: CA certificates (X.509-SVIDs) and the JWKS (JWT-SVIDs)', auth: 'public', response: trustBundleView,
    handler: async () => ({ trustDomain, x509: [ca.certificatePem], jwks: (await jwtSigner()).jwks() }) });

  routes.add({ method: 'GET', url: '/api/v1/services', summary: 'List the services agents declared, in id order (?after=<namespace/name>&limit=)', auth: 'agents:read', response: serviceList,
    handler: async ({ request }) => {
      const query = parseWith(servicePage, request.query, 'query');
      const rows = await store.agents.services.list({ ...(query.after !== undefined ? { after: query.after } : {}), limit: query.limit + 1 });
      const shown = rows.slice(0, query.limit);
      return { services: shown.map(present), ...(rows.length > query.limit ? { next: shown.at(-1)!.id } : {}) };
    } });
}
