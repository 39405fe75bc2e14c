// The mysocket-style sign-in flags shared by `socket create|update` and `connect`
// (dash and underscore spellings both work).
import type { Command } from 'commander';

export interface AuthFlags {
  cloudauth?: boolean;
  allowedEmailDomains?: string;
  allowed_email_domains?: string;
  allowedEmailAddresses?: string;
  allowed_email_addresses?: string;
}

export function addAuthFlags(command: Command): Command {
  return command
    .option('--cloudauth', 'require sign-in through Postern before anything reaches the upstream')
    .option('--allowed-email-domains <a.com,b.com>', 'only users of these email domains (implies --cloudauth)')
    .option('--allowed_email_domains <a.com,b.com>')
    .option('--allowed-email-addresses <a@x.com,b@y.com>', 'only these users (implies --cloudauth)')
    .option('--allowed_email_addresses <a@x.com,b@y.com>');
}

const list = (value: string | undefined) => value?.split(',').map((item) => item.trim()).filter(Boolean);

/** The API body fields for the flags given (none when no flag was given). */
export function authBody(flags: AuthFlags): Record<string, unknown> {
  const domains = list(flags.allowedEmailDomains ?? flags.allowed_email_domains);
  const addresses = list(flags.allowedEmailAddresses ?? flags.allowed_email_addresses);
  return {
    ...(flags.cloudauth ? { cloudauth: true } : {}),
    ...(domains ? { allowed_email_domains: domains } : {}),
    ...(addresses ? { allowed_email_addresses: addresses } : {}),
  };
}
