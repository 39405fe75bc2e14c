// The user behind an external sign-in (OIDC, GitHub, SAML): looks up the (issuer, subject) link
// and the email's user, lets decideAccountLink choose, then links or creates (the user with its
// link in one transaction) and keeps name and groups in step with the provider.
import type { IdentityProviderRecord, Store, UserRecord } from '../store/index.js';
import { accountLinkSettings, decideAccountLink } from '../identity/index.js';
import type { PosternIdentity } from '../identity/index.js';
import { PosternError, isPosternError } from '../errors.js';

export interface ExternalSignIn {
  readonly identity: PosternIdentity;
  readonly provider: IdentityProviderRecord;
  /** The provider sends groups: the user's groups follow them. */
  readonly syncGroups: boolean;
}

/** Throws PosternError('forbidden') with the reason a person reads when the sign-in is refused. */
export async function userForExternalSignIn(store: Store, signIn: ExternalSignIn): Promise<UserRecord> {
  let user: UserRecord;
  try {
    user = await resolve(store, signIn);
  } catch (err) {
    // Another sign-in of the same person (or address) won the race: decide again on what it wrote.
    if (!isPosternError(err, 'conflict')) throw err;
    user = await resolve(store, signIn);
  }
  const { identity } = signIn;
  if (user.disabledAt) throw new PosternError('forbidden', `the account ${user.email} is disabled`);
  const sameGroups = user.groups.length === identity.groups.length && user.groups.every((g, i) => g === identity.groups[i]);
  const patch = {
    ...(signIn.syncGroups && !sameGroups ? { groups: [...identity.groups] } : {}),
    ...(!user.name && identity.name ? { name: identity.name } : {}),
  };
  return Object.keys(patch).length > 0 ? store.users.update(user.id, patch) : user;
}

async function resolve(store: Store, { identity, provider }: ExternalSignIn): Promise<UserRecord> {
  const { issuer, subject } = identity;
  const link = issuer && subject ? await store.externalIdentities.find(issuer, subject) : undefined;
  const linkedUser = link ? await store.users.get(link.userId) : undefined;
  const emailUser = linkedUser ? undefined : await store.users.findByEmail(identity.email);
  const decision = decideAccountLink({
    provider: provider.displayName || provider.name, email: identity.email, emailVerified: identity.emailVerified, issuer, subject,
    linkedUser, emailUser, settings: accountLinkSettings(provider.config),
  });
  const linkInput = { issuer: issuer!, subject: subject!, provider: provider.name, email: identity.email };
  switch (decision.action) {
    case 'refuse':
      throw new PosternError('forbidden', decision.message);
    case 'sign-in':
      return linkedUser!;
    case 'link':
      await store.externalIdentities.link({ ...linkInput, userId: decision.userId });
      return emailUser!;
    case 'create':
      return store.users.create({ email: identity.email, name: identity.name ?? '', groups: [...identity.groups], externalIdentity: linkInput });
  }
}
