// From what a provider says (OIDC claims, SAML attributes, GitHub profile) to a Postern identity:
// email (required; whether the provider vouches for it), the stable (issuer, subject) pair,
// name, groups from a configurable claim path with an optional mapping.
import { PosternError } from '../errors.js';

export interface PosternIdentity {
  /** Lower-cased. */
  readonly email: string;
  readonly name: string | null;
  /** The provider's stable id for the user, when it sends one. */
  readonly subject: string | null;
  /** Who issued `subject` (OIDC `iss`); (issuer, subject) names one person for good. */
  readonly issuer: string | null;
  /** Only a literal `email_verified: true` counts: a missing claim or the string "true" does not. */
  readonly emailVerified: boolean;
  readonly groups: readonly string[];
}

export interface ClaimMapping {
  /** Default `email`. */
  readonly emailClaim?: string;
  /** Default `name`. */
  readonly nameClaim?: string;
  /** Default `sub`. */
  readonly subjectClaim?: string;
  /** Default `iss`. */
  readonly issuerClaim?: string;
  /** Default `email_verified`; null: this kind of provider never vouches in a claim (SAML). */
  readonly emailVerifiedClaim?: string | null;
  /** A claim name or dotted path (`groups`, `roles`, `realm_access.roles`); none means no groups. */
  readonly groupsClaim?: string;
  /** Provider group → Postern group(s). When given, unmapped groups are dropped unless `keepUnmappedGroups`. */
  readonly groupMap?: Readonly<Record<string, string | readonly string[]>>;
  readonly keepUnmappedGroups?: boolean;
  /** OIDC: refuse the email when the provider says `email_verified: false`. */
  readonly requireVerifiedEmail?: boolean;
}

const MAX_EMAIL_LENGTH = 254;
const MAX_GROUPS = 500;
const MAX_GROUP_LENGTH = 256;
const EMAIL = /^[^\s@\x00-\x1f\x7f]+@[^\s@\x00-\x1f\x7f]+$/;
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * The value at `path` in `claims`: the whole path as one key first (claim names may contain dots,
 * like `https://example.com/groups`), then dot by dot. Own properties only.
 */
export function claimAt(claims: unknown, path: string): unknown {
  if (isRecord(claims) && Object.hasOwn(claims, path)) return claims[path];
  let node: unknown = claims;
  for (const part of path.split('.')) {
    if (!isRecord(node) || !Object.hasOwn(node, part)) return undefined;
    node = node[part];
  }
  return node;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A string, or a one-element array of one (SAML attributes are lists). */
function single(value: unknown): string | undefined {
  if (Array.isArray(value) && value.length === 1) return single(value[0]);
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/** Throws PosternError('identity_invalid') when the claims carry no usable, verified email. */
export function mapClaims(claims: Readonly<Record<string, unknown>>, mapping: ClaimMapping = {}): PosternIdentity {
  const emailClaim = mapping.emailClaim ?? 'email';
  const raw = single(claimAt(claims, emailClaim));
  if (raw === undefined) {
    throw new PosternError('identity_invalid', `the identity provider sent no email address (claim "${emailClaim}")`);
  }
  const email = raw.toLowerCase();
  if (email.length > MAX_EMAIL_LENGTH || !EMAIL.test(email)) {
    throw new PosternError('identity_invalid', `the identity provider sent an invalid email address (claim "${emailClaim}")`);
  }
  const verifiedClaim = mapping.emailVerifiedClaim === undefined ? 'email_verified' : mapping.emailVerifiedClaim;
  const verified = verifiedClaim === null ? undefined : claimAt(claims, verifiedClaim);
  if (mapping.requireVerifiedEmail === true && (verified === false || verified === 'false')) {
    throw new PosternError('identity_invalid', `the identity provider has not verified the email address ${email}`);
  }
  const name = single(claimAt(claims, mapping.nameClaim ?? 'name'));
  const subject = single(claimAt(claims, mapping.subjectClaim ?? 'sub'));
  const issuer = single(claimAt(claims, mapping.issuerClaim ?? 'iss'));
  const providerGroups = mapping.groupsClaim === undefined ? [] : readGroups(claimAt(claims, mapping.groupsClaim));
  return {
    email,
    name: name !== undefined && !CONTROL.test(name) ? name : null,
    subject: subject ?? null,
    issuer: issuer ?? null,
    emailVerified: verified === true,
    groups: mapGroups(providerGroups, mapping),
  };
}

function readGroups(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value];
  return list.filter(
    (group): group is string =>
      typeof group === 'string' && group.trim() !== '' && group.length <= MAX_GROUP_LENGTH && !CONTROL.test(group),
  ).map((group) => group.trim());
}

function mapGroups(groups: readonly string[], mapping: ClaimMapping): string[] {
  const { groupMap } = mapping;
  const out = new Set<string>();
  for (const group of groups) {
    if (groupMap !== undefined && Object.hasOwn(groupMap, group)) {
      const target = groupMap[group]!;
      for (const mapped of typeof target === 'string' ? [target] : target) out.add(mapped);
    } else if (groupMap === undefined || mapping.keepUnmappedGroups === true) {
      out.add(group);
    }
    if (out.size >= MAX_GROUPS) break;
  }
  return [...out].slice(0, MAX_GROUPS);
}

/** URI SAN naming the sign-in a user certificate was issued under (checked by the edge). */
export const SESSION_URI_PREFIX = 'urn:postern:session:';
