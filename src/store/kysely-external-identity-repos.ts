// The external-identity repository of the Kysely store: which user a provider's stable
// (issuer, subject) pair belongs to. Links take the write lock (so they serialize with a user's
// delete, which removes them) but record no change: no snapshot holds them.

import type { Kysely, Selectable } from 'kysely';
import { conflict, insertUnique, notFound } from './kysely-repos.js';
import type { RepoContext } from './kysely-repos.js';
import { checkString } from './rows.js';
import { checkEmail } from './socket-auth.js';
import type { Database, ExternalIdentitiesTable } from './schema.js';
import type { ExternalIdentityRecord, ExternalIdentityRepo, NewExternalIdentity } from './types.js';

const MAX_FIELD = 2048;

function toExternalIdentity(row: Selectable<ExternalIdentitiesTable>): ExternalIdentityRecord {
  return { id: row.id, userId: row.user_id, issuer: row.issuer, subject: row.subject, provider: row.provider, email: row.email, createdAt: row.created_at };
}

type LinkRow = Omit<Selectable<ExternalIdentitiesTable>, 'user_id'>;

/** A link's row but its user, checked (throws 'bad_request'); shared with the user repo's create. */
export function externalIdentityRow(ctx: RepoContext, input: Omit<NewExternalIdentity, 'userId'>): LinkRow {
  return {
    id: ctx.newId('xid_'),
    issuer: checkString(input.issuer, 'issuer', { nonEmpty: true, max: MAX_FIELD }),
    subject: checkString(input.subject, 'subject', { nonEmpty: true, max: MAX_FIELD }),
    provider: checkString(input.provider, 'provider', { nonEmpty: true, max: 200 }),
    email: checkEmail(input.email),
    created_at: ctx.now(),
  };
}

/** Inserts a checked link row inside a write transaction; 'conflict' when the pair is taken. */
export async function insertExternalIdentity(tx: Kysely<Database>, link: LinkRow, userId: string): Promise<ExternalIdentityRecord> {
  const row = { ...link, user_id: userId };
  const message = `the identity ${row.subject} at ${row.issuer} is linked to a user already`;
  const taken = await tx.selectFrom('external_identities').select('id').where('issuer', '=', row.issuer).where('subject', '=', row.subject).executeTakeFirst();
  if (taken !== undefined) throw conflict(message);
  await insertUnique(() => tx.insertInto('external_identities').values(row).execute(), message);
  return toExternalIdentity(row);
}

export class KyselyExternalIdentityRepo implements ExternalIdentityRepo {
  constructor(private readonly ctx: RepoContext) {}

  find(issuer: string, subject: string): Promise<ExternalIdentityRecord | undefined> {
    return this.ctx.read('find external identity', async (db) => {
      const row = await db.selectFrom('external_identities').selectAll().where('issuer', '=', issuer).where('subject', '=', subject).executeTakeFirst();
      return row === undefined ? undefined : toExternalIdentity(row);
    });
  }

  listForUser(userId: string): Promise<ExternalIdentityRecord[]> {
    return this.ctx.read('list external identities', async (db) =>
      (await db.selectFrom('external_identities').selectAll().where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute()).map(toExternalIdentity),
    );
  }

  async link(input: NewExternalIdentity): Promise<ExternalIdentityRecord> {
    const userId = checkString(input.userId, 'userId', { nonEmpty: true });
    const row = externalIdentityRow(this.ctx, input);
    return this.ctx.write('link external identity', async (tx) => {
      const user = await tx.selectFrom('users').select('id').where('id', '=', userId).executeTakeFirst();
      if (user === undefined) throw notFound(`user "${userId}" not found`);
      return insertExternalIdentity(tx, row, userId);
    });
  }
}
