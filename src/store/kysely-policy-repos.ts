// The policy repository of the Kysely store: one row per (namespace, name) holding the newest
// version, and every version (deletions too) in policy_versions. Documents are validated by
// src/policy before they get here; the store keeps them as JSON. Each change records one
// ('policy', id, op) change, so every edge recompiles its policy set from the next snapshot.

import type { Selectable } from 'kysely';
import { PosternError } from '../errors.js';
import { notFound } from './kysely-repos.js';
import type { RepoContext } from './kysely-repos.js';
import { checkString, parseJsonObject } from './rows.js';
import type { PoliciesTable, PolicyVersionsTable } from './schema.js';
import type { PolicyRecord, PolicyRepo, PolicyVersionRecord } from './types.js';

const MAX_DOCUMENT_BYTES = 256 * 1024;

/** A damaged document reads as one without rules, which allows nothing. */
function parseDocument(text: string): Record<string, unknown> {
  return parseJsonObject(text) ?? { rules: [] };
}

function serializeDocument(document: Record<string, unknown>): string {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new PosternError('bad_request', 'a policy document must be an object');
  }
  const text = JSON.stringify(document);
  if (text.length > MAX_DOCUMENT_BYTES) throw new PosternError('bad_request', `a policy document must be at most ${MAX_DOCUMENT_BYTES} bytes of JSON`);
  return text;
}

function toPolicy(row: Selectable<PoliciesTable>): PolicyRecord {
  return {
    id: row.id,
    namespace: row.namespace,
    name: row.name,
    version: Number(row.version),
    document: parseDocument(row.document),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toVersion(row: Selectable<PolicyVersionsTable>): PolicyVersionRecord {
  return {
    policyId: row.policy_id,
    namespace: row.namespace,
    name: row.name,
    version: Number(row.version),
    document: row.document === null ? null : parseDocument(row.document),
    author: row.author,
    createdAt: row.created_at,
  };
}

export class KyselyPolicyRepo implements PolicyRepo {
  constructor(private readonly ctx: RepoContext) {}

  list(): Promise<PolicyRecord[]> {
    return this.ctx.read('list policies', async (db) =>
      (await db.selectFrom('policies').selectAll().orderBy('namespace').orderBy('name').execute()).map(toPolicy),
    );
  }

  get(namespace: string, name: string): Promise<PolicyRecord | undefined> {
    return this.ctx.read('get policy', async (db) => {
      const row = await db.selectFrom('policies').selectAll().where('namespace', '=', namespace).where('name', '=', name).executeTakeFirst();
      return row === undefined ? undefined : toPolicy(row);
    });
  }

  async put(namespace: string, name: string, document: Record<string, unknown>, author: string): Promise<{ record: PolicyRecord; changed: boolean; previous?: PolicyRecord }> {
    checkString(namespace, 'namespace', { max: 200 });
    checkString(name, 'name', { nonEmpty: true, max: 63 });
    const text = serializeDocument(document);
    return this.ctx.write('save policy', async (tx, record) => {
      const row = await tx.selectFrom('policies').selectAll().where('namespace', '=', namespace).where('name', '=', name).executeTakeFirst();
      if (row !== undefined && row.document === text) return { record: toPolicy(row), changed: false, previous: toPolicy(row) };
      const now = this.ctx.now();
      const next = row === undefined
        ? { id: this.ctx.newId('pol_'), namespace, name, version: 1, document: text, created_at: now, updated_at: now }
        : { ...row, version: Number(row.version) + 1, document: text, updated_at: now };
      if (row === undefined) await tx.insertInto('policies').values(next).execute();
      else await tx.updateTable('policies').set({ version: next.version, document: text, updated_at: now }).where('id', '=', row.id).execute();
      await tx.insertInto('policy_versions').values({ policy_id: next.id, namespace, name, version: next.version, document: text, author, created_at: now }).execute();
      await record('policy', next.id, row === undefined ? 'create' : 'update');
      return { record: toPolicy(next), changed: true, ...(row === undefined ? {} : { previous: toPolicy(row) }) };
    });
  }

  async delete(namespace: string, name: string, author: string): Promise<PolicyRecord> {
    return this.ctx.write('delete policy', async (tx, record) => {
      const row = await tx.selectFrom('policies').selectAll().where('namespace', '=', namespace).where('name', '=', name).executeTakeFirst();
      if (row === undefined) throw notFound(`policy "${namespace ? `${namespace}/` : ''}${name}" does not exist`);
      await tx.deleteFrom('policies').where('id', '=', row.id).execute();
      await tx.insertInto('policy_versions').values({
        policy_id: row.id, namespace, name, version: Number(row.version) + 1, document: null, author, created_at: this.ctx.now(),
      }).execute();
      await record('policy', row.id, 'delete');
      return toPolicy(row);
    });
  }

  versions(namespace: string, name: string): Promise<PolicyVersionRecord[]> {
    return this.ctx.read('list policy versions', async (db) =>
      (await db.selectFrom('policy_versions').selectAll().where('namespace', '=', namespace).where('name', '=', name)
        .orderBy('created_at').orderBy('version').execute()).map(toVersion),
    );
  }
}
