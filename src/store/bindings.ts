// Connector ↔ socket bindings as the store keeps them: connector id lists on sockets, socket
// name lists and tag selectors on join tokens and connectors. Validated on the way in; read
// back failing closed (a damaged column binds nothing); applied inside the repositories' writes.

import type { Kysely } from 'kysely';
import { PosternError } from '../errors.js';
import type { RecordChange } from './kysely-repos.js';
import type { Database } from './schema.js';
import { SOCKET_NAME_PATTERN } from './names.js';
import type { TagSelector } from './types.js';

const maxEntries = 1000;
const maxSelectorPairs = 20;
const TAG_KEY_PATTERN = /^[a-z0-9_.-]{1,63}$/i;

function checkStrings(value: unknown, field: string, check: (entry: string) => boolean, what: string): string[] {
  if (!Array.isArray(value)) throw new PosternError('bad_request', `${field} must be an array of strings`);
  if (value.length > maxEntries) throw new PosternError('bad_request', `${field} has more than ${maxEntries} entries`);
  const out: string[] = [];
  for (const entry of value) {
    if (typeof entry !== 'string' || !check(entry)) throw new PosternError('bad_request', `${field}: ${JSON.stringify(entry)} is not ${what}`);
    if (!out.includes(entry)) out.push(entry);
  }
  return out;
}

/** De-duplicated connector ids, in order. */
export function checkConnectorIds(value: unknown, field = 'connectors'): string[] {
  return checkStrings(value, field, (id) => id.length > 0 && id.length <= 100, 'a connector id');
}

/** De-duplicated socket names, in order. */
export function checkSocketNames(value: unknown, field = 'sockets'): string[] {
  return checkStrings(value, field, (name) => SOCKET_NAME_PATTERN.test(name), 'a socket name');
}

/**
 * A tag selector, or null for none. An empty selector would match every socket, so it is
 * refused rather than read as "all".
 */
export function checkTagSelector(value: unknown, field = 'socketTags'): Record<string, string> | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw new PosternError('bad_request', `${field} must be an object of tag names to values`);
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) throw new PosternError('bad_request', `${field} must name at least one tag (an empty selector would match every socket)`);
  if (entries.length > maxSelectorPairs) throw new PosternError('bad_request', `${field} has more than ${maxSelectorPairs} tags`);
  const out: Record<string, string> = {};
  for (const [key, tag] of entries) {
    if (!TAG_KEY_PATTERN.test(key) || typeof tag !== 'string' || tag.length > 255) {
      throw new PosternError('bad_request', `${field}: ${JSON.stringify(key)} must be a tag name with a string value`);
    }
    out[key] = tag;
  }
  return out;
}

function parseJson(text: string | null): unknown {
  if (text === null) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A stored string list; anything damaged reads as empty (binds nothing). */
export function parseStringList(text: string): string[] {
  const value = parseJson(text);
  return Array.isArray(value) ? value.filter((entry): entry is string => typeof entry === 'string') : [];
}

/** A stored selector; anything damaged or empty reads as none (binds nothing). */
export function parseTagSelector(text: string | null): TagSelector | null {
  try {
    return checkTagSelector(parseJson(text));
  } catch {
    return null;
  }
}

export function serializeTagSelector(selector: TagSelector | null): string | null {
  return selector === null ? null : JSON.stringify(selector);
}

/** Throws not_found for the first id that names no connector. */
export async function checkConnectorsExist(tx: Kysely<Database>, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  const found = new Set((await tx.selectFrom('connectors').select('id').where('id', 'in', ids).execute()).map((row) => row.id));
  const missing = ids.find((id) => !found.has(id));
  if (missing !== undefined) throw new PosternError('not_found', `connector "${missing}" not found`);
}

/** Applies a consumed token's binding to the connector it enrolled (inside the same transaction). */
export async function bindEnrolled(tx: Kysely<Database>, record: RecordChange, connectorId: string, token: { sockets: string; socket_tags: string | null }): Promise<void> {
  const names = parseStringList(token.sockets);
  const sockets = names.length === 0 ? [] : await tx.selectFrom('sockets').select(['id', 'connectors']).where('name', 'in', names).execute();
  for (const socket of sockets) {
    const connectors = parseStringList(socket.connectors);
    if (connectors.includes(connectorId)) continue;
    await tx.updateTable('sockets').set({ connectors: JSON.stringify([...connectors, connectorId]) }).where('id', '=', socket.id).execute();
    await record('socket', socket.id, 'update');
  }
  const selector = parseTagSelector(token.socket_tags);
  if (selector === null) return;
  const result = await tx.updateTable('connectors').set({ socket_tags: serializeTagSelector(selector) }).where('id', '=', connectorId).executeTakeFirst();
  if (result.numUpdatedRows === 0n) throw new PosternError('not_found', `connector "${connectorId}" not found`);
  await record('connector', connectorId, 'update');
}
