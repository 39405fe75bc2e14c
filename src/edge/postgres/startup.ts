// What a postgres session's startup becomes: the database it opens, from the client's
// StartupMessage and the socket's default (the role the client asks for is read by
// src/pgwire/options.ts), and the StartupMessage the edge sends upstream in its place.
import type { StartupPacket } from '../../pgwire/index.js';

/** Client startup parameters carried upstream; `options` and every other GUC are dropped (they could lift read-only or pick a role). */
const CARRIED_PARAMETERS = ['application_name', 'client_encoding', 'DateStyle', 'TimeZone', 'extra_float_digits'];

/**
 * The database a session opens. A client that names none sends its user name (libpq's default,
 * and PostgreSQL's for a missing `database`), so that, too, reads as "none" when the socket has
 * a default database.
 */
export function sessionDatabase(parameters: Readonly<Record<string, string>>, socketDefault: string | null): string {
  const user = parameters.user ?? '';
  const named = parameters.database;
  const unnamed = named === undefined || named === '' || named === user;
  if (unnamed && socketDefault) return socketDefault;
  return named || user;
}

/**
 * The upstream startup for an admitted session: database, the carried parameters, read-only
 * pinned. `user` is the role policy decided (the connector logs in as it with the credentials
 * its configuration names); without one it is left out and the connector uses its default login.
 */
export function upstreamStartup(parameters: Readonly<Record<string, string>>, database: string, readOnly: boolean, role?: string): StartupPacket {
  const carried = Object.fromEntries(CARRIED_PARAMETERS.filter((name) => parameters[name] !== undefined).map((name) => [name, parameters[name]!]));
  return {
    type: 'StartupMessage', major: 3, minor: 0,
    parameters: { ...(role !== undefined ? { user: role } : {}), database, ...carried, ...(readOnly ? { default_transaction_read_only: 'on' } : {}) },
  };
}
