// Roles of people: members of the admin group (`admins` unless the server is told otherwise)
// are admins with their own sign-in and get every scope; everyone else keeps the user-level
// routes. Read from the user's groups on every request, so removing the group ends admin
// rights at once. The dashboard asks the same question of a browser session's user.
import type { ApiTokenScope, UserRecord } from '../store/index.js';
import { PosternError } from '../errors.js';

export const DEFAULT_ADMIN_GROUP = 'admins';

export function isAdmin(user: UserRecord, adminGroup: string): boolean {
  return user.groups.includes(adminGroup);
}

/** What a signed-in person may do through the API: everything for an admin, user-level routes only otherwise. */
export function personScopes(user: UserRecord, adminGroup: string): readonly ApiTokenScope[] {
  return isAdmin(user, adminGroup) ? ['admin'] : [];
}

/** The refusal of an admin route to a signed-in person who is not an admin (the CLI may fall back to the admin token file on it). */
export function adminRequired(user: UserRecord, adminGroup: string): PosternError {
  return new PosternError('admin_required', `${user.email} is signed in but is not in the admin group "${adminGroup}": ask an admin to add you to it, or pass an admin token (--token)`);
}
