// The store's contract for the services agents declare (the declarations the control plane
// accepted when it issued their SVIDs). Re-exported through agent-types.ts.

export interface ServiceProcessSelector {
  readonly exe: string;
  readonly sha256?: string;
  readonly uid?: number;
}

export interface ServiceRecord {
  /** `<namespace>/<name>`: the primary key, so pages in id order need no other index. */
  readonly id: string;
  readonly namespace: string;
  readonly name: string;
  readonly spiffeId: string;
  /** The agent that declared it last (replicas on several hosts share one service identity). */
  readonly agentId: string;
  readonly port: number | null;
  readonly process: ServiceProcessSelector | null;
  readonly labels: Readonly<Record<string, string>>;
  readonly updatedAt: string;
}

export interface NewServiceDeclaration {
  namespace: string;
  name: string;
  spiffeId: string;
  agentId: string;
  port?: number;
  process?: ServiceProcessSelector;
  labels: Record<string, string>;
}

export interface ServiceRepo {
  /** Inserts or replaces the declaration of `<namespace>/<name>`. */
  declare(input: NewServiceDeclaration): Promise<ServiceRecord>;
  get(namespace: string, name: string): Promise<ServiceRecord | undefined>;
  /** A page in id order. */
  list(page: { after?: string; limit: number }): Promise<ServiceRecord[]>;
}
