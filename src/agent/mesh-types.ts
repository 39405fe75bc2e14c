// The contract between the agent's service mesh (mesh.ts: the L4 mutual-TLS proxies and the L7
// per-request check) and what it decides with (mesh-view.ts: the control plane's view of
// policies, declared services and revoked agents, kept current by polling). Types only.
import type { Decision, RequestContext } from '../policy/index.js';
import type { NewAuditEvent } from '../reporting/index.js';

/** A service identity the mesh has verified (from an X.509-SVID or a JWT-SVID). */
export interface VerifiedService {
  readonly spiffeId: string;
  readonly namespace: string;
  readonly name: string;
  /** The agent that speaks for it (revocations are by agent). */
  readonly agentId: string;
  /** Signed by the control plane: the JWT-SVID's claims, or the declaration it accepted for the X.509-SVID. */
  readonly labels: Readonly<Record<string, string>>;
}

/** A person a Postern assertion (`X-Postern-Jwt-Assertion`, signed by the control plane) names. */
export interface AssertedUser {
  readonly id: string;
  readonly email: string;
  readonly groups: readonly string[];
}

export interface MeshAuthority {
  readonly trustDomain: string;
  /** The CA certificates that sign SVIDs (the trust bundle's X.509 part). */
  caPems(): readonly string[];
  /**
   * Checks a peer's X.509-SVID (checkX509Svid: our CA, valid now, one URI SAN naming a service,
   * its agent not revoked) and adds the labels the control plane holds for it. Undefined labels
   * mean the service is not declared: the check fails.
   */
  verifyX509Svid(certPem: string): { ok: true; service: VerifiedService } | { ok: false; reason: string };
  /** Verifies a JWT-SVID (signature against the bundle's JWKS, `aud` = audience, `exp`, agent not revoked). Rejects with PosternError token_invalid / token_expired. */
  verifyJwtSvid(token: string, audience: string): Promise<VerifiedService>;
  /** Verifies a Postern assertion (signature against the control plane's assertion keys, issuer, `exp`). Rejects with PosternError token_invalid / token_expired. */
  verifyUserAssertion(token: string): Promise<AssertedUser>;
  /** Whether a verified identity is still good now (its agent may have been revoked since). */
  isAgentRevoked(agentId: string): boolean;
  /** Decides with the policies of the current view; ctx.socket is the destination service (kind 'service'). */
  decide(ctx: RequestContext): Decision;
  /** What a refusal tells the caller and the audit trail: the summary and, for "no rule allows", why the allow rules missed. */
  denialDetail(ctx: RequestContext, decision: Decision): string;
  /** After each new view (policies, services or revocations changed): open flows are decided again. */
  on(event: 'change', listener: () => void): this;
  off(event: 'change', listener: () => void): this;
}

/** Where the mesh's audit events go (flow.open, flow.close, access.denied, access.would_deny, http.request): batched to the control plane, never blocking a flow. */
export interface FlowLog {
  record(event: NewAuditEvent): void;
}
