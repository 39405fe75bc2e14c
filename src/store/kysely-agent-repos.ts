// The workload-agent repositories of the Kysely store. Agent creation and revocation are
// logged changes, so every node's change feed hears of a revocation at once; join tokens are
// consumed by one conditional UPDATE (one winner on both dialects).

import type { Selectable } from 'kysely';
import { PosternError } from '../errors.js';
import { insertUnique, notFound } from './kysely-repos.js';
import type { RepoContext } from './kysely-repos.js';
import { checkString, parseJsonObject, toTimestamp } from './rows.js';
import type { AgentIssuersTable, AgentJoinTokensTable, AgentsTable } from './agent-schema.js';
import { createKyselyServiceRepo } from './kysely-service-repos.js';
import type {
  AgentAttestationMethod, AgentAttributes, AgentIssuerRecord, AgentIssuerRepo, AgentJoinTokenRecord, AgentJoinTokenRepo,
  AgentRecord, AgentRepo, AgentStore, NewAgent, NewAgentIssuer, NewAgentJoinToken,
} from './agent-types.js';

const methods: ReadonlySet<string> = new Set<AgentAttestationMethod>(['join_token', 'jwt']);
const MAX_ATTRIBUTES = 64;

/** A damaged column reads as no attributes rather than failing every read. */
function parseAttributes(text: string): AgentAttributes {
  const value = parseJsonObject(text) ?? {};
  return Object.freeze(Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string')));
}

function checkAttributes(value: Record<string, string>, field: string): string {
  const entries = Object.entries(value);
  if (entries.length > MAX_ATTRIBUTES) throw new PosternError('bad_request', `${field} has more than ${MAX_ATTRIBUTES} entries`);
  for (const [key, v] of entries) {
    checkString(key, `${field} name`, { nonEmpty: true, max: 100 });
    checkString(v, `${field}.${key}`, { max: 1000 });
  }
  return JSON.stringify(Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

export function toAgent(row: Selectable<AgentsTable>): AgentRecord {
  if (!methods.has(row.method)) throw new PosternError('internal', `agent ${row.id} has an unknown attestation method "${row.method}"`);
  return {
    id: row.id,
    name: row.name,
    method: row.method as AgentAttestationMethod,
    attestationKey: row.attestation_key,
    attributes: parseAttributes(row.attributes),
    selfAsserted: parseAttributes(row.self_asserted),
    spiffeId: row.spiffe_id,
    certSerial: row.cert_serial,
    certNotAfter: row.cert_not_after,
    lastAttestedAt: row.last_attested_at,
    revokedAt: row.revoked_at,
    createdAt: row.created_at,
  };
}

function toAgentJoinToken(row: Selectable<AgentJoinTokensTable>): AgentJoinTokenRecord {
  return {
    id: row.id, tokenHash: row.token_hash, agentName: row.agent_name, attributes: parseAttributes(row.attributes), trustFacts: row.trust_facts === 1,
    expiresAt: row.expires_at, usedAt: row.used_at, agentId: row.agent_id, createdAt: row.created_at,
  };
}

function toAgentIssuer(row: Selectable<AgentIssuersTable>): AgentIssuerRecord {
  let algorithms: unknown;
  try {
    algorithms = JSON.parse(row.algorithms);
  } catch {
    algorithms = [];
  }
  return {
    id: row.id, name: row.name, issuer: row.issuer, audience: row.audience, jwksUrl: row.jwks_url, claims: parseAttributes(row.claims),
    // A damaged list accepts nothing: verification fails closed.
    algorithms: Object.freeze(Array.isArray(algorithms) ? algorithms.filter((a): a is string => typeof a === 'string') : []),
    maxSkewSeconds: Number(row.max_skew_seconds), trustFacts: row.trust_facts === 1, createdAt: row.created_at,
  };
}

class KyselyAgentRepo implements AgentRepo {
  constructor(private readonly ctx: RepoContext) {}

  list(page: { after?: string; limit: number }): Promise<AgentRecord[]> {
    return this.ctx.read('list agents', async (db) => {
      let query = db.selectFrom('agents').selectAll().orderBy('id').limit(page.limit);
      if (page.after !== undefined) query = query.where('id', '>', page.after);
      return (await query.execute()).map(toAgent);
    });
  }

  get(id: string): Promise<AgentRecord | undefined> {
    return this.ctx.read('get agent', async (db) => {
      const row = await db.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toAgent(row);
    });
  }

  findByAttestationKey(key: string): Promise<AgentRecord | undefined> {
    return this.ctx.read('find agent', async (db) => {
      const row = await db.selectFrom('agents').selectAll().where('attestation_key', '=', key).executeTakeFirst();
      return row === undefined ? undefined : toAgent(row);
    });
  }

  revokedIds(page: { after?: string; limit: number }): Promise<string[]> {
    return this.ctx.read('list revoked agents', async (db) => {
      let query = db.selectFrom('agents').select('id').where('revoked_at', 'is not', null).orderBy('id').limit(page.limit);
      if (page.after !== undefined) query = query.where('id', '>', page.after);
      return (await query.execute()).map((r) => r.id);
    });
  }

  async create(input: NewAgent): Promise<AgentRecord> {
    if (!methods.has(input.method)) throw new PosternError('bad_request', `attestation method "${input.method}" is not one of join_token, jwt`);
    const name = checkString(input.name, 'name', { nonEmpty: true, max: 200 });
    const key = checkString(input.attestationKey, 'attestationKey', { nonEmpty: true, max: 1000 });
    const attributes = checkAttributes(input.attributes, 'attributes');
    const selfAsserted = checkAttributes(input.selfAsserted, 'selfAsserted');
    return this.ctx.write('create agent', async (tx, record) => {
      const now = this.ctx.now();
      const id = this.ctx.newId('agt_');
      const row = {
        id, name, method: input.method, attestation_key: key, attributes, self_asserted: selfAsserted, spiffe_id: `${input.spiffePrefix}${id}`,
        cert_serial: null, cert_not_after: null, last_attested_at: now, revoked_at: null, created_at: now,
      };
      await insertUnique(() => tx.insertInto('agents').values(row).execute(), 'an agent with this attestation already exists');
      await record('agent', id, 'create');
      return toAgent(row);
    });
  }

  async reattest(id: string, input: { attributes: Record<string, string>; selfAsserted: Record<string, string>; at: string }): Promise<AgentRecord> {
    const set = { attributes: checkAttributes(input.attributes, 'attributes'), self_asserted: checkAttributes(input.selfAsserted, 'selfAsserted'), last_attested_at: toTimestamp(input.at, 'at') };
    return this.ctx.write('re-attest agent', async (tx, record) => {
      const result = await tx.updateTable('agents').set(set).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
      const row = await tx.selectFrom('agents').selectAll().where('id', '=', id).executeTakeFirst();
      if (row === undefined) throw notFound(`agent "${id}" not found`);
      if (result.numUpdatedRows === 0n) throw new PosternError('certificate_invalid', `agent ${id} was revoked at ${row.revoked_at}`);
      await record('agent', id, 'update');
      return toAgent(row);
    });
  }

  recordCertificate(id: string, serial: string, notAfter: string): Promise<void> {
    // Bookkeeping only: nothing a snapshot or revocation list reads, so no change-feed traffic per renewal.
    return this.ctx.writeUnlogged('record agent certificate', async (tx) => {
      const result = await tx.updateTable('agents').set({ cert_serial: serial, cert_not_after: toTimestamp(notAfter, 'notAfter') }).where('id', '=', id).executeTakeFirst();
      if (result.numUpdatedRows === 0n) throw notFound(`agent "${id}" not found`);
    });
  }

  revoke(id: string, at: string): Promise<void> {
    const revokedAt = toTimestamp(at, 'at');
    return this.ctx.write('revoke agent', async (tx, record) => {
      const row = await tx.selectFrom('agents').select(['id', 'revoked_at']).where('id', '=', id).executeTakeFirst();
      if (row === undefined) throw notFound(`agent "${id}" not found`);
      if (row.revoked_at !== null) return;
      await tx.updateTable('agents').set({ revoked_at: revokedAt }).where('id', '=', id).execute();
      await record('agent', id, 'update');
    });
  }

  delete(id: string): Promise<void> {
    return this.ctx.write('delete agent', async (tx, record) => {
      const result = await tx.deleteFrom('agents').where('id', '=', id).executeTakeFirst();
      if (result.numDeletedRows === 0n) throw notFound(`agent "${id}" not found`);
      await record('agent', id, 'delete');
    });
  }
}

class KyselyAgentJoinTokenRepo implements AgentJoinTokenRepo {
  constructor(private readonly ctx: RepoContext) {}

  async create(input: NewAgentJoinToken): Promise<AgentJoinTokenRecord> {
    const row = {
      id: this.ctx.newId('ajt_'),
      token_hash: checkString(input.tokenHash, 'tokenHash', { nonEmpty: true, max: 200 }),
      agent_name: checkString(input.agentName, 'agentName', { nonEmpty: true, max: 200 }),
      attributes: checkAttributes(input.attributes ?? {}, 'attributes'),
      trust_facts: input.trustFacts === true ? 1 : 0,
      expires_at: toTimestamp(input.expiresAt, 'expiresAt'),
      used_at: null,
      agent_id: null,
      created_at: this.ctx.now(),
    };
    return this.ctx.write('create agent join token', async (tx, record) => {
      await insertUnique(() => tx.insertInto('agent_join_tokens').values(row).execute(), 'agent join token already exists');
      await record('agent_join_token', row.id, 'create');
      return toAgentJoinToken(row);
    });
  }

  findByHash(tokenHash: string): Promise<AgentJoinTokenRecord | undefined> {
    return this.ctx.read('find agent join token', async (db) => {
      const row = await db.selectFrom('agent_join_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
      return row === undefined ? undefined : toAgentJoinToken(row);
    });
  }

  consume(tokenHash: string, agentId: string, at: string): Promise<AgentJoinTokenRecord> {
    const usedAt = toTimestamp(at, 'at');
    return this.ctx.write('consume agent join token', async (tx, record) => {
      const result = await tx
        .updateTable('agent_join_tokens')
        .set({ used_at: usedAt, agent_id: agentId })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', usedAt)
        .executeTakeFirst();
      const row = await tx.selectFrom('agent_join_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
      if (row === undefined) throw new PosternError('token_invalid', 'agent join token is not valid');
      if (result.numUpdatedRows === 0n) {
        if (row.used_at !== null) throw new PosternError('token_used', `agent join token was already used (at ${row.used_at}): create a new one with \`postern agent token create\``);
        throw new PosternError('token_expired', `agent join token expired at ${row.expires_at}`);
      }
      await record('agent_join_token', row.id, 'update');
      return toAgentJoinToken(row);
    });
  }
}

class KyselyAgentIssuerRepo implements AgentIssuerRepo {
  constructor(private readonly ctx: RepoContext) {}

  list(): Promise<AgentIssuerRecord[]> {
    return this.ctx.read('list agent issuers', async (db) => (await db.selectFrom('agent_issuers').selectAll().orderBy('name').execute()).map(toAgentIssuer));
  }

  get(name: string): Promise<AgentIssuerRecord | undefined> {
    return this.ctx.read('get agent issuer', async (db) => {
      const row = await db.selectFrom('agent_issuers').selectAll().where('name', '=', name).executeTakeFirst();
      return row === undefined ? undefined : toAgentIssuer(row);
    });
  }

  async create(input: NewAgentIssuer): Promise<AgentIssuerRecord> {
    if (!Number.isInteger(input.maxSkewSeconds) || input.maxSkewSeconds < 0) throw new PosternError('bad_request', 'maxSkewSeconds must be a non-negative integer');
    const row = {
      id: this.ctx.newId('ais_'),
      name: checkString(input.name, 'name', { nonEmpty: true, max: 100 }),
      issuer: checkString(input.issuer, 'issuer', { nonEmpty: true, max: 1000 }),
      audience: checkString(input.audience, 'audience', { nonEmpty: true, max: 1000 }),
      jwks_url: checkString(input.jwksUrl, 'jwksUrl', { nonEmpty: true, max: 2000 }),
      claims: checkAttributes(input.claims ?? {}, 'claims'),
      algorithms: JSON.stringify(input.algorithms.map((a) => checkString(a, 'algorithms', { nonEmpty: true, max: 20 }))),
      max_skew_seconds: input.maxSkewSeconds,
      trust_facts: input.trustFacts === true ? 1 : 0,
      created_at: this.ctx.now(),
    };
    return this.ctx.write('create agent issuer', async (tx, record) => {
      await insertUnique(() => tx.insertInto('agent_issuers').values(row).execute(), `agent issuer "${row.name}" already exists`);
      await record('agent_issuer', row.id, 'create');
      return toAgentIssuer(row);
    });
  }

  delete(name: string): Promise<void> {
    return this.ctx.write('delete agent issuer', async (tx, record) => {
      const row = await tx.selectFrom('agent_issuers').select('id').where('name', '=', name).executeTakeFirst();
      if (row === undefined) throw notFound(`agent issuer "${name}" not found`);
      await tx.deleteFrom('agent_issuers').where('id', '=', row.id).execute();
      await record('agent_issuer', row.id, 'delete');
    });
  }
}

export function createKyselyAgentStore(ctx: RepoContext): AgentStore {
  return { agents: new KyselyAgentRepo(ctx), tokens: new KyselyAgentJoinTokenRepo(ctx), issuers: new KyselyAgentIssuerRepo(ctx), services: createKyselyServiceRepo(ctx) };
}
