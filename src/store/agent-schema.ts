// Kysely table types of the workload-agent tables (migration 0014_agents, agent-migration.ts).

export interface AgentsTable {
  id: string;
  name: string;
  method: string;
  attestation_key: string;
  /** JSON object of string → string. */
  attributes: string;
  /** JSON object of string → string. */
  self_asserted: string;
  spiffe_id: string;
  cert_serial: string | null;
  cert_not_after: string | null;
  last_attested_at: string;
  revoked_at: string | null;
  created_at: string;
}

export interface AgentJoinTokensTable {
  id: string;
  token_hash: string;
  agent_name: string;
  /** JSON object of string → string. */
  attributes: string;
  trust_facts: number;
  expires_at: string;
  used_at: string | null;
  agent_id: string | null;
  created_at: string;
}

export interface AgentIssuersTable {
  id: string;
  name: string;
  issuer: string;
  audience: string;
  jwks_url: string;
  /** JSON object attribute → claim path. */
  claims: string;
  /** JSON array of JWS algorithm names. */
  algorithms: string;
  max_skew_seconds: number;
  trust_facts: number;
  created_at: string;
}

export interface AgentTables {
  agents: AgentsTable;
  agent_join_tokens: AgentJoinTokensTable;
  agent_issuers: AgentIssuersTable;
}
