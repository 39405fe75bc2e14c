// The agents' mesh on the control plane, both over mutual TLS with the agent certificate: the
// view an agent decides with (policies, declared services and their labels, revoked agents, the
// keys that verify JWT-SVIDs and people's assertions), with a strong ETag from its content so a
// poll every 500 ms costs a 304; and the events agents report (flows, refusals, requests),
// stamped with the reporting agent and written through the audit recorder.
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { PosternError } from '../errors.js';
import type { CertificateAuthority, JwtSvidSigner, KeyCipher } from '../ca/index.js';
import { MESH_VIEW_MAX_ITEMS, agentEventsAnswer, agentEventsBody, meshView } from '../api-client/index.js';
import type { AgentEvent, MeshViewWire } from '../api-client/index.js';
import type { SigningKeys } from '../identity/index.js';
import type { NewAuditEvent } from '../reporting/index.js';
import type { ServiceRecord, Store } from '../store/index.js';
import { agentOfClientCertificate } from './agent-api.js';
import type { RouteTable } from './routes.js';
import { loadOrCreateJwtSvidSigner } from './svid.js';

/** What of RevokedAgents the view needs. */
export interface RevokedAgentIds {
  ids(): string[];
  /** Resolves once the feed events delivered so far are applied. */
  settled(): Promise<void>;
}

export interface MeshApiOptions {
  store: Store;
  ca: CertificateAuthority;
  cipher: KeyCipher;
  trustDomain: string;
  /** The assertion keys (`/.well-known/jwks.json`), read per request so a rotation shows at once. */
  signingKeys: () => SigningKeys;
  /** `iss` of Postern's assertions: the control plane's origin. */
  issuer: string;
  /** This node's RevokedAgents, which follows the change feed. */
  revokedAgents: RevokedAgentIds;
  /** The last change-feed revision this node delivered: the view is rebuilt only when it moves. */
  revision: () => number;
  audit: (event: NewAuditEvent) => void;
}

/** Everything the version hashes: the view without its version and revision. */
type MeshContent = Omit<MeshViewWire, 'version' | 'revision'>;

const PAGE = 1_000;

/** The content's hash; the same content gives the same version on every node (lists come in store order, revocations sorted). */
function meshVersion(content: MeshContent): string {
  return createHash('sha256').update(JSON.stringify(content)).digest('base64url');
}

/** Whether If-None-Match names this entity tag: weak comparison, as RFC 9110 §13.1.2 asks of it; `*` matches any. */
export function ifNoneMatchHits(header: string | string[] | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const tags = (Array.isArray(header) ? header.join(',') : header).split(',').map((tag) => tag.trim());
  return tags.some((tag) => tag === '*' || tag.replace(/^W\//, '') === etag);
}

function tooMany(what: string, count: string): PosternError {
  return new PosternError('internal', `the mesh view would carry ${count} ${what}, more than the ${MESH_VIEW_MAX_ITEMS} it is built for: refused rather than sent unbounded`);
}

/** Every declared service, a page at a time, refused past the bound. */
async function declaredServices(store: Store): Promise<ServiceRecord[] | PosternError> {
  const services: ServiceRecord[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.agents.services.list({ ...(after !== undefined ? { after } : {}), limit: PAGE });
    services.push(...page);
    if (services.length > MESH_VIEW_MAX_ITEMS) return tooMany('services', `more than ${MESH_VIEW_MAX_ITEMS}`);
    if (page.length < PAGE) return services;
    after = page.at(-1)!.id;
  }
}

/** An agent's event as the audit trail keeps it: `details.agent` is the caller, whatever the body said. */
function stampedEvent(event: AgentEvent, agentId: string): NewAuditEvent {
  return { ...event, details: { ...event.details, agent: agentId } };
}

interface BuiltView {
  readonly body: MeshViewWire;
  readonly etag: string;
}

export function registerMeshApi(routes: RouteTable, options: MeshApiOptions): void {
  const { store, ca, trustDomain } = options;
  let signer: Promise<JwtSvidSigner> | undefined;
  const jwtSigner = () => (signer ??= loadOrCreateJwtSvidSigner(store.secrets, options.cipher).catch((err) => {
    signer = undefined;
    throw err;
  }));

  /** Reads after `revision` was taken, so the content is at least that new; a refusal (too many) is a result, cached like a view. */
  const build = async (revision: number, keys: SigningKeys): Promise<BuiltView | PosternError> => {
    await options.revokedAgents.settled();
    const revokedAgents = options.revokedAgents.ids();
    if (revokedAgents.length > MESH_VIEW_MAX_ITEMS) return tooMany('revoked agents', String(revokedAgents.length));
    const [policies, services, signerNow] = await Promise.all([store.policies.list(), declaredServices(store), jwtSigner()]);
    if (policies.length > MESH_VIEW_MAX_ITEMS) return tooMany('policies', String(policies.length));
    if (services instanceof PosternError) return services;
    const content: MeshContent = {
      trustDomain,
      x509: [ca.certificatePem],
      policies: policies.map((p) => ({ document: { ...p.document }, version: p.version })),
      services: services.map((s) => ({ spiffeId: s.spiffeId, agentId: s.agentId, labels: { ...s.labels } })),
      revokedAgents,
      jwks: signerNow.jwks(),
      assertion: { issuer: options.issuer, jwks: keys.jwks() },
    };
    const version = meshVersion(content);
    return { body: { version, revision, ...content }, etag: `"${version}"` };
  };

  // One build per (revision, assertion key set), shared by every agent that polls meanwhile; a failed read is not kept.
  let cached: { revision: number; keys: SigningKeys; view: Promise<BuiltView | PosternError> } | undefined;
  const currentView = (): Promise<BuiltView | PosternError> => {
    const revision = options.revision();
    const keys = options.signingKeys();
    if (cached?.revision !== revision || cached.keys !== keys) {
      const view = build(revision, keys);
      cached = { revision, keys, view };
      view.catch(() => {
        if (cached?.view === view) cached = undefined;
      });
    }
    return cached.view;
  };

  const callingAgent = (request: FastifyRequest) => agentOfClientCertificate(request, store, trustDomain);

  routes.add({ method: 'GET', url: '/api/v1/agents/mesh', summary: 'The mesh view of the calling agent (mutual TLS): policies, declared services, revoked agents, JWT-SVID and assertion keys; If-None-Match → 304', auth: 'public',
    response: meshView,
    handler: async ({ request, reply }) => {
      await callingAgent(request);
      const view = await currentView();
      if (view instanceof PosternError) throw view;
      void reply.header('etag', view.etag).header('cache-control', 'no-cache');
      if (!ifNoneMatchHits(request.headers['if-none-match'], view.etag)) return view.body;
      // A reply is thenable: awaiting it waits until the 304 has gone out, and the route table sees it sent.
      return reply.code(304).send();
    } });

  routes.add({ method: 'POST', url: '/api/v1/agents/events', summary: 'Audit events of the calling agent\'s mesh (mutual TLS): flows, refusals, requests; at most 500 per call', auth: 'public',
    body: agentEventsBody, response: agentEventsAnswer, status: 202,
    handler: async ({ body, request }) => {
      const agent = await callingAgent(request);
      for (const event of body.events) options.audit(stampedEvent(event, agent.id));
      return { accepted: body.events.length };
    } });
}
