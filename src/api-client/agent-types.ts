// Payloads of the agent API (/api/v1/agents…), shared by the control plane (which validates
// them) and `postern agent` and the CLI (which send and read them): one definition, zod only.
import { z } from 'zod';
import type { AuditEventType } from '../reporting/index.js';

const attributeName = z.string().regex(/^[a-z][a-z0-9_.-]{0,99}$/i, 'must be a short name such as env or k8s.namespace');
export const agentAttributes = z.record(attributeName, z.string().max(1000));

/** Host facts the agent reports about itself (self-asserted). */
export const hostFacts = z.object({
  hostname: z.string().max(255).optional(),
  os: z.string().max(100).optional(),
  kernel: z.string().max(255).optional(),
  machine_id: z.string().max(100).optional(),
}).strict();
export type HostFacts = z.infer<typeof hostFacts>;

const csr = z.string().min(1).max(20_000);
export const attestBody = z.discriminatedUnion('method', [
  z.object({ method: z.literal('join_token'), token: z.string().min(1).max(200), csr, facts: hostFacts.optional() }).strict(),
  z.object({ method: z.literal('jwt'), issuer: z.string().min(1).max(100), token: z.string().min(1).max(16_000), csr, facts: hostFacts.optional() }).strict(),
]);
export type AttestBody = z.infer<typeof attestBody>;
export type AttestationMethod = AttestBody['method'];

export const agentRenewBody = z.object({ csr }).strict();

export const issuedAgentView = z.object({ agentId: z.string(), spiffeId: z.string(), certificate: z.string(), ca: z.string(), notAfter: z.string() });
export type IssuedAgent = z.infer<typeof issuedAgentView>;

export const agentView = z.object({
  id: z.string(), name: z.string(), method: z.enum(['join_token', 'jwt']), spiffeId: z.string(),
  attributes: z.record(z.string(), z.string()), selfAsserted: z.record(z.string(), z.string()),
  certSerial: z.string().nullable(), certNotAfter: z.string().nullable(), lastAttestedAt: z.string(), revokedAt: z.string().nullable(), createdAt: z.string(),
});
export type AgentView = z.infer<typeof agentView>;
export const agentList = z.object({ agents: z.array(agentView), next: z.string().optional() });

export const agentTokenBody = z.object({
  name: z.string().min(1).max(200).optional(),
  ttl_seconds: z.number().int().min(60).max(30 * 24 * 3600).default(3600),
  attributes: agentAttributes.optional(),
  /** The admin vouches for the host: its facts become attributes. */
  trust_facts: z.boolean().optional(),
}).strict();
export const createdAgentTokenView = z.object({ id: z.string(), token: z.string(), name: z.string(), expiresAt: z.string() });

/** JWS algorithms an issuer may use: asymmetric only (no `none`, no shared-secret HMAC). */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

export const agentIssuerBody = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lower-case letters, digits and dashes'),
  issuer: z.string().url(),
  audience: z.string().min(1).max(1000),
  jwks_url: z.string().url().refine((u) => u.startsWith('https://') || /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]/.test(u), 'must be https:// (or http:// on loopback)'),
  /** Agent attribute → claim (dotted path into the token's payload). */
  claims: z.record(attributeName, z.string().min(1).max(200)).default({}),
  algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).default(['RS256', 'ES256']),
  max_skew_seconds: z.number().int().min(0).max(300).default(60),
  trust_facts: z.boolean().default(false),
}).strict();
export const agentIssuerView = z.object({
  id: z.string(), name: z.string(), issuer: z.string(), audience: z.string(), jwksUrl: z.string(), claims: z.record(z.string(), z.string()),
  algorithms: z.array(z.string()), maxSkewSeconds: z.number(), trustFacts: z.boolean(), createdAt: z.string(),
});
export const agentIssuerList = z.object({ issuers: z.array(agentIssuerView) });

/** `pat1.<secret>.<ca-pin>`: like a connector's join token, a different prefix so neither is taken for the other. */
export const AGENT_TOKEN_PREFIX = 'pat1';

// Service identities (SVIDs) an agent obtains for the services it declares.
const serviceSegment = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label: a-z, 0-9 and "-"');
export const serviceLabels = z.record(attributeName, z.string().max(200)).refine((l) => Object.keys(l).length <= 32, 'at most 32 labels');

/** A service as the agent declares it: who it is, and how the agent recognises its processes. */
export const serviceDeclaration = z.object({
  name: serviceSegment,
  namespace: serviceSegment.default('default'),
  port: z.number().int().min(1).max(65535).optional(),
  process: z.object({
    exe: z.string().min(1).max(4096).refine((p) => p.startsWith('/'), 'must be an absolute path'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits').optional(),
    uid: z.number().int().min(0).optional(),
  }).strict().optional(),
  labels: serviceLabels.default({}),
}).strict();
export type ServiceDeclaration = z.infer<typeof serviceDeclaration>;

export const svidBody = z.object({ service: serviceDeclaration, csr }).strict();
export const issuedSvidView = z.object({ spiffeId: z.string(), certificate: z.string(), ca: z.string(), notAfter: z.string(), labels: z.record(z.string(), z.string()) });
export type IssuedSvid = z.infer<typeof issuedSvidView>;

export const jwtSvidBody = z.object({
  namespace: serviceSegment, name: serviceSegment,
  audience: z.string().min(1).max(1000),
  ttl_seconds: z.number().int().min(10).max(300).default(300),
}).strict();
export const jwtSvidView = z.object({ token: z.string(), spiffeId: z.string(), expiresAt: z.string() });
export type JwtSvid = z.infer<typeof jwtSvidView>;

export const serviceView = z.object({
  id: z.string(), namespace: z.string(), name: z.string(), spiffeId: z.string(), agentId: z.string(),
  port: z.number().nullable(), process: z.object({ exe: z.string(), sha256: z.string().optional(), uid: z.number().optional() }).nullable(),
  labels: z.record(z.string(), z.string()), updatedAt: z.string(),
});
export type ServiceView = z.infer<typeof serviceView>;
export const serviceList = z.object({ services: z.array(serviceView), next: z.string().optional() });

/** What a verifier of SVIDs needs: the CA certificates (X.509-SVIDs) and the JWKS (JWT-SVIDs). */
export const trustBundleView = z.object({
  trustDomain: z.string(),
  x509: z.array(z.string()),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }),
});
export type TrustBundle = z.infer<typeof trustBundleView>;

// The agents' mesh: the control plane's view an agent decides with, and the events it reports.
/** More than this many policies, services or revoked agents and the view is refused, never built unbounded. */
export const MESH_VIEW_MAX_ITEMS = 10_000;
const jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

export const meshView = z.object({
  /** The content's hash: the ETag (quoted), the same on every node that holds the same content. */
  version: z.string(),
  /** The store revision the content is at least as new as (not hashed): an agent ignores a view older than the one it holds. */
  revision: z.number().int().min(0),
  trustDomain: z.string(),
  /** The CA certificates that sign SVIDs (the trust bundle's X.509 part). */
  x509: z.array(z.string()).max(16),
  policies: z.array(z.object({ document: z.record(z.string(), z.unknown()), version: z.number().int() })).max(MESH_VIEW_MAX_ITEMS),
  /** The declarations the control plane accepted: the labels a verified X.509-SVID carries. */
  services: z.array(z.object({ spiffeId: z.string(), agentId: z.string(), labels: z.record(z.string(), z.string()) })).max(MESH_VIEW_MAX_ITEMS),
  revokedAgents: z.array(z.string()).max(MESH_VIEW_MAX_ITEMS),
  /** The JWT-SVID keys. */
  jwks,
  /** What verifies a person's Postern assertion (`X-Postern-Jwt-Assertion`): its `iss` and the control plane's signing keys. */
  assertion: z.object({ issuer: z.string(), jwks }),
});
export type MeshViewWire = z.infer<typeof meshView>;

/** The audit event types an agent may report; anything else is the control plane's own to write. */
export const AGENT_EVENT_TYPES = ['flow.open', 'flow.close', 'access.denied', 'access.would_deny', 'access.alarm', 'http.request'] as const satisfies readonly AuditEventType[];
/** Events per POST /api/v1/agents/events. */
export const AGENT_EVENTS_MAX = 500;
const text = (max: number) => z.string().max(max);

export const agentEvent = z.object({
  type: z.enum(AGENT_EVENT_TYPES),
  at: z.string().datetime({ offset: true }).optional(),
  actor: text(1000).optional(),
  socket: text(1000).optional(),
  clientIp: text(64).optional(),
  country: text(2).optional(),
  decision: z.enum(['allow', 'deny']).optional(),
  rule: text(500).optional(),
  reason: text(2000).optional(),
  connectionId: text(100).optional(),
  sessionId: text(100).optional(),
  details: z.record(z.string().max(100), z.unknown()).refine((d) => Object.keys(d).length <= 64, 'at most 64 details').optional(),
}).strict();
export type AgentEvent = z.infer<typeof agentEvent>;
export const agentEventsBody = z.object({ events: z.array(agentEvent).min(1).max(AGENT_EVENTS_MAX) }).strict();
export type AgentEventsBody = z.infer<typeof agentEventsBody>;
export const agentEventsAnswer = z.object({ accepted: z.number().int() });
