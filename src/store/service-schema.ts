// Kysely table types of the agent services table (migration 0015_agent_services, service-migration.ts).

export interface AgentServicesTable {
  id: string;
  namespace: string;
  name: string;
  spiffe_id: string;
  agent_id: string;
  port: number | null;
  /** JSON { exe, sha256?, uid? } or null. */
  process: string | null;
  /** JSON object of string → string. */
  labels: string;
  updated_at: string;
}

export interface ServiceTables {
  agent_services: AgentServicesTable;
}
