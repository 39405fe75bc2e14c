// Which Postern user an external sign-in is, decided before anything is written. The "nOAuth"
// rule: an email claim alone never makes someone an existing user. A returning person is found
// by the provider's stable (issuer, subject) link, whatever their email claim says now; a first
// sign-in through a provider matches an existing user by email only when that provider vouches
// for the address (`email_verified: true`, or it is authoritative for the address's domain).
// An email nobody has yet may make a new user even unvouched (SAML and Entra ID send no
// email_verified), within the provider's allowed domains: it links only to that new user.

import { z } from 'zod';

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';

/** `trusted_email_domains` / `allowed_email_domains` in a provider's config: exact domains, no wildcards. */
export const emailDomainsSchema = z.array(
  z.string().trim().toLowerCase().regex(new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})+$`), 'must be a domain name such as corp.example'),
).max(100);

/** A provider's account-linking settings (config keys `trusted_email_domains`, `allowed_email_domains`). */
export interface AccountLinkSettings {
  /** Domains the provider is authoritative for: its addresses there count as verified. */
  readonly trustedEmailDomains: readonly string[];
  /** When set, the provider signs in (and creates) only users whose email is in these domains. */
  readonly allowedEmailDomains: readonly string[] | undefined;
}

export interface AccountCandidate {
  readonly id: string;
  readonly email: string;
}

export interface AccountLinkInput {
  readonly provider: string;
  readonly email: string;
  readonly emailVerified: boolean;
  readonly issuer: string | null;
  readonly subject: string | null;
  /** The user (issuer, subject) is linked to, if any. */
  readonly linkedUser: AccountCandidate | undefined;
  /** The user who has `email`, if any (looked up only when there is no link). */
  readonly emailUser: AccountCandidate | undefined;
  readonly settings: AccountLinkSettings;
}

export type AccountLinkRefusal = 'no-subject' | 'domain-not-allowed' | 'email-not-vouched';

export type AccountLinkDecision =
  /** Found by the link. */
  | { readonly action: 'sign-in'; readonly userId: string }
  /** An existing user whose email the provider vouches for: link, then sign in. */
  | { readonly action: 'link'; readonly userId: string }
  /** Nobody has this email: create the user together with its link. */
  | { readonly action: 'create' }
  | { readonly action: 'refuse'; readonly reason: AccountLinkRefusal; readonly message: string };

export function emailDomain(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1).toLowerCase();
}

/** Reads the settings from a provider's (already validated) config; anything malformed counts as unset. */
export function accountLinkSettings(config: Readonly<Record<string, unknown>>): AccountLinkSettings {
  const domains = (value: unknown): string[] | undefined =>
    Array.isArray(value) ? value.filter((d): d is string => typeof d === 'string').map((d) => d.trim().toLowerCase()) : undefined;
  return { trustedEmailDomains: domains(config.trusted_email_domains) ?? [], allowedEmailDomains: domains(config.allowed_email_domains) };
}

export function decideAccountLink(input: AccountLinkInput): AccountLinkDecision {
  const { provider, email, settings } = input;
  const allowed = (address: string) => settings.allowedEmailDomains === undefined || settings.allowedEmailDomains.includes(emailDomain(address));
  const outside = (address: string): AccountLinkDecision => ({
    action: 'refuse', reason: 'domain-not-allowed',
    message: `${provider} may not sign in ${address}: its email domain is not one of ${settings.allowedEmailDomains!.join(', ')}`,
  });
  if (input.linkedUser) return allowed(input.linkedUser.email) ? { action: 'sign-in', userId: input.linkedUser.id } : outside(input.linkedUser.email);
  if (!input.issuer || !input.subject) {
    return { action: 'refuse', reason: 'no-subject', message: `${provider} sent no stable subject (issuer and sub) to recognise you by` };
  }
  if (!allowed(email)) return outside(email);
  if (!input.emailUser) return { action: 'create' };
  if (input.emailVerified || settings.trustedEmailDomains.includes(emailDomain(email))) return { action: 'link', userId: input.emailUser.id };
  return {
    action: 'refuse', reason: 'email-not-vouched',
    message: `${provider} does not vouch for ${email} (no email_verified: true, and it is not trusted for ${emailDomain(email)}), so it cannot sign in to the existing account with that address`,
  };
}
