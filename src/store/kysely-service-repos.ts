// The agent-services repository of the Kysely store. A declaration is written at every SVID
// issuance; the same one again only refreshes its time, unlogged (no change-feed traffic per
// renewal), while a new or changed one (labels, agent, selector) is a change: the agents' mesh
// view carries the labels, and every node must see them change.

import type { Selectable } from 'kysely';
import { checkString, parseJsonObject } from './rows.js';
import type { RepoContext } from './kysely-repos.js';
import type { AgentServicesTable } from './service-schema.js';
import type { NewServiceDeclaration, ServiceProcessSelector, ServiceRecord, ServiceRepo } from './service-types.js';

function parseProcess(text: string | null): ServiceProcessSelector | null {
  const value = text === null ? undefined : parseJsonObject(text);
  if (!value || typeof value.exe !== 'string') return null;
  return {
    exe: value.exe,
    ...(typeof value.sha256 === 'string' ? { sha256: value.sha256 } : {}),
    ...(typeof value.uid === 'number' ? { uid: value.uid } : {}),
  };
}

function toService(row: Selectable<AgentServicesTable>): ServiceRecord {
  const labels = parseJsonObject(row.labels) ?? {};
  return {
    id: row.id, namespace: row.namespace, name: row.name, spiffeId: row.spiffe_id, agentId: row.agent_id,
    port: row.port === null ? null : Number(row.port), process: parseProcess(row.process),
    labels: Object.freeze(Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === 'string'))),
    updatedAt: row.updated_at,
  };
}

class KyselyServiceRepo implements ServiceRepo {
  constructor(private readonly ctx: RepoContext) {}

  async declare(input: NewServiceDeclaration): Promise<ServiceRecord> {
    const namespace = checkString(input.namespace, 'namespace', { nonEmpty: true, max: 63 });
    const name = checkString(input.name, 'name', { nonEmpty: true, max: 63 });
    const row = {
      id: `${namespace}/${name}`, namespace, name,
      spiffe_id: checkString(input.spiffeId, 'spiffeId', { nonEmpty: true, max: 2000 }),
      agent_id: checkString(input.agentId, 'agentId', { nonEmpty: true, max: 100 }),
      port: input.port ?? null,
      process: input.process ? JSON.stringify(input.process) : null,
      labels: JSON.stringify(Object.fromEntries(Object.entries(input.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))),
      updated_at: this.ctx.now(),
    };
    const same = await this.ctx.writeUnlogged('refresh service', async (tx) => {
      // Conditional on the content, so a change committed meanwhile is never overwritten unlogged.
      let update = tx.updateTable('agent_services').set({ updated_at: row.updated_at }).where('id', '=', row.id)
        .where('spiffe_id', '=', row.spiffe_id).where('agent_id', '=', row.agent_id).where('labels', '=', row.labels);
      update = row.port === null ? update.where('port', 'is', null) : update.where('port', '=', row.port);
      update = row.process === null ? update.where('process', 'is', null) : update.where('process', '=', row.process);
      return (await update.executeTakeFirst()).numUpdatedRows > 0n;
    });
    if (same) return toService(row);
    return this.ctx.write('declare service', async (tx, record) => {
      const { id: _id, ...changes } = row;
      const existed = await tx.selectFrom('agent_services').select('id').where('id', '=', row.id).executeTakeFirst();
      await tx.insertInto('agent_services').values(row).onConflict((oc) => oc.column('id').doUpdateSet(changes)).execute();
      await record('agent_service', row.id, existed ? 'update' : 'create');
      return toService(row);
    });
  }

  get(namespace: string, name: string): Promise<ServiceRecord | undefined> {
    return this.ctx.read('get service', async (db) => {
      const row = await db.selectFrom('agent_services').selectAll().where('id', '=', `${namespace}/${name}`).executeTakeFirst();
      return row === undefined ? undefined : toService(row);
    });
  }

  list(page: { after?: string; limit: number }): Promise<ServiceRecord[]> {
    return this.ctx.read('list services', async (db) => {
      let query = db.selectFrom('agent_services').selectAll().orderBy('id').limit(page.limit);
      if (page.after !== undefined) query = query.where('id', '>', page.after);
      return (await query.execute()).map(toService);
    });
  }
}

export function createKyselyServiceRepo(ctx: RepoContext): ServiceRepo {
  return new KyselyServiceRepo(ctx);
}
