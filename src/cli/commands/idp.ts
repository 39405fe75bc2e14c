// `postern idp …`: sign-in providers (generic OIDC with google/microsoft presets, GitHub, SAML).
// Client secrets never go on the command line (shell history, ps): they are read from stdin.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { printFields, printJson, printTable } from '../output.js';
import { PosternError } from '../../errors.js';
import { readSecretFromStdin } from '../stdin.js';

interface ProviderView {
  id: string;
  name: string;
  kind: string;
  displayName: string;
  config: Record<string, unknown>;
  hasSecret: boolean;
  disabled: boolean;
  redirectUri: string;
  createdAt: string;
}

const list = (value: string) => value.split(',').map((item) => item.trim()).filter(Boolean);

/** `a=b,c=d` → { a: 'b', c: 'd' } (provider group → Postern group). */
function groupMap(value: string): Record<string, string> {
  const map: Record<string, string> = {};
  for (const pair of list(value)) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) throw new PosternError('bad_request', `--group-map: "${pair}" is not provider-group=postern-group`);
    map[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return map;
}

function showCreated(ctx: CliContext, created: ProviderView): void {
  if (ctx.json) return printJson(created);
  printFields({ ...created, secret: created.hasSecret ? 'set' : 'none' }, ['name', 'kind', 'displayName', 'secret', 'id']);
  process.stdout.write(`\nRegister this redirect URI with the provider:\n  ${created.redirectUri}\n`);
}

interface CommonOptions {
  name: string;
  displayName?: string;
  clientId: string;
  clientSecretStdin?: boolean;
  groupMap?: Record<string, string>;
  keepUnmappedGroups?: boolean;
  trustedEmailDomains?: string[];
  allowedEmailDomains?: string[];
}

const TRUSTED_HELP = 'domains this provider is authoritative for: an existing user there is matched by email even without email_verified';
const ALLOWED_HELP = 'the only email domains of the users this provider may sign in (and create)';

/** The account-linking settings of a provider's config (see src/identity/account-link.ts). */
function linkingConfig(options: Pick<CommonOptions, 'trustedEmailDomains' | 'allowedEmailDomains'>): Record<string, string[]> {
  return {
    ...(options.trustedEmailDomains ? { trusted_email_domains: options.trustedEmailDomains } : {}),
    ...(options.allowedEmailDomains ? { allowed_email_domains: options.allowedEmailDomains } : {}),
  };
}

export function registerIdp(program: Command, context: () => CliContext): void {
  const idp = program.command('idp').description('sign-in providers: OpenID Connect (Google, Microsoft Entra ID, any issuer), GitHub and SAML 2.0');
  const add = idp.command('add').description('add a sign-in provider');

  add.command('oidc')
    .description('an OpenID Connect provider (by issuer URL, or --preset google|microsoft)')
    .requiredOption('--name <name>', 'short name, used in URLs (/auth/oidc/<name>/callback)')
    .option('--display-name <text>', 'button text on the sign-in page')
    .option('--issuer <url>', 'issuer URL (discovery at <issuer>/.well-known/openid-configuration)')
    .option('--preset <preset>', 'google or microsoft (sets the issuer)')
    .option('--tenant <tenant>', 'Entra ID tenant for --preset microsoft (required: its id or domain; never common, organizations or consumers)')
    .requiredOption('--client-id <id>', 'OAuth client id')
    .option('--client-secret-stdin', 'read the client secret from standard input')
    .option('--allow-insecure-issuer', 'allow a plain http:// issuer on this machine (127.0.0.0/8, ::1, localhost only), e.g. a local test provider')
    .option('--scopes <a,b>', 'the scopes to request (default openid,email,profile, plus groups with --groups-claim; openid is always sent)', list)
    .option('--email-claim <claim>', 'claim holding the email (default email)')
    .option('--groups-claim <claim>', 'claim (or dotted path) holding the groups, e.g. groups or roles')
    .option('--group-map <a=b,...>', 'map provider groups to Postern groups (others dropped unless --keep-unmapped-groups)', groupMap)
    .option('--keep-unmapped-groups', 'keep provider groups that --group-map does not name')
    .option('--trusted-email-domains <a,b>', TRUSTED_HELP, list)
    .option('--allowed-email-domains <a,b>', ALLOWED_HELP, list)
    .action(async (options: CommonOptions & { issuer?: string; preset?: string; tenant?: string; allowInsecureIssuer?: boolean; scopes?: string[]; emailClaim?: string; groupsClaim?: string }) => {
      const ctx = context();
      if (!options.issuer && !options.preset) throw new PosternError('bad_request', 'give --issuer URL or --preset google|microsoft');
      if (options.preset !== undefined && options.preset !== 'google' && options.preset !== 'microsoft') throw new PosternError('bad_request', `--preset must be google or microsoft, not "${options.preset}"`);
      if (options.tenant && options.preset !== 'microsoft') throw new PosternError('bad_request', '--tenant goes with --preset microsoft');
      const secret = await readSecretFromStdin(options.clientSecretStdin, '--client-secret-stdin');
      const created = await ctx.client().post<ProviderView>('/api/v1/identity-providers', {
        name: options.name,
        kind: 'oidc',
        ...(options.displayName ? { display_name: options.displayName } : {}),
        ...(secret ? { client_secret: secret } : {}),
        config: {
          client_id: options.clientId,
          ...(options.issuer ? { issuer: options.issuer } : {}),
          ...(options.preset ? { preset: options.preset } : {}),
          ...(options.tenant ? { tenant: options.tenant } : {}),
          ...(options.allowInsecureIssuer ? { allow_insecure_issuer: true } : {}),
          ...(options.scopes ? { scopes: options.scopes } : {}),
          ...(options.emailClaim ? { email_claim: options.emailClaim } : {}),
          ...(options.groupsClaim ? { groups_claim: options.groupsClaim } : {}),
          ...(options.groupMap ? { group_map: options.groupMap } : {}),
          ...(options.keepUnmappedGroups ? { keep_unmapped_groups: true } : {}),
          ...linkingConfig(options),
        },
      });
      showCreated(ctx, created);
    });

  add.command('github')
    .description('GitHub (OAuth app; the email is the verified primary address)')
    .requiredOption('--name <name>', 'short name, used in URLs')
    .option('--display-name <text>', 'button text on the sign-in page', 'GitHub')
    .requiredOption('--client-id <id>', 'OAuth app client id')
    .option('--client-secret-stdin', 'read the client secret from standard input')
    .option('--groups-from-orgs', 'groups from the user\'s organisations (org) and teams (org/team)')
    .option('--orgs <a,b>', 'only these organisations become groups', list)
    .option('--group-map <a=b,...>', 'map GitHub groups to Postern groups', groupMap)
    .option('--keep-unmapped-groups', 'keep groups that --group-map does not name')
    .option('--allowed-email-domains <a,b>', ALLOWED_HELP, list)
    .action(async (options: CommonOptions & { groupsFromOrgs?: boolean; orgs?: string[] }) => {
      const ctx = context();
      const secret = await readSecretFromStdin(options.clientSecretStdin, '--client-secret-stdin');
      const created = await ctx.client().post<ProviderView>('/api/v1/identity-providers', {
        name: options.name,
        kind: 'github',
        ...(options.displayName ? { display_name: options.displayName } : {}),
        ...(secret ? { client_secret: secret } : {}),
        config: {
          client_id: options.clientId,
          ...(options.groupsFromOrgs ? { groups_from_orgs: true } : {}),
          ...(options.orgs ? { orgs: options.orgs } : {}),
          ...(options.groupMap ? { group_map: options.groupMap } : {}),
          ...(options.keepUnmappedGroups ? { keep_unmapped_groups: true } : {}),
          ...linkingConfig(options),
        },
      });
      showCreated(ctx, created);
    });

  add.command('saml')
    .description('SAML 2.0 identity provider (signed assertions required)')
    .requiredOption('--name <name>', 'short name, used in URLs')
    .option('--display-name <text>', 'button text on the sign-in page')
    .requiredOption('--entry-point <url>', 'the IdP\'s single sign-on URL (redirect binding)')
    .requiredOption('--idp-cert-file <file>', 'PEM certificate the IdP signs assertions with')
    .option('--idp-issuer <entity-id>', 'the IdP\'s entity id (checked when given)')
    .option('--email-attribute <name>', 'attribute holding the email (default email, else an email NameID)')
    .option('--groups-attribute <name>', 'attribute holding the groups')
    .option('--group-map <a=b,...>', 'map IdP groups to Postern groups', groupMap)
    .option('--keep-unmapped-groups', 'keep groups that --group-map does not name')
    .option('--trusted-email-domains <a,b>', `${TRUSTED_HELP} (SAML sends none: without this, only new users)`, list)
    .option('--allowed-email-domains <a,b>', ALLOWED_HELP, list)
    .action(async (options: Omit<CommonOptions, 'clientId'> & { entryPoint: string; idpCertFile: string; idpIssuer?: string; emailAttribute?: string; groupsAttribute?: string }) => {
      const ctx = context();
      let idpCert: string;
      try {
        idpCert = await readFile(options.idpCertFile, 'utf8');
      } catch (cause) {
        throw new PosternError('bad_request', `cannot read --idp-cert-file ${options.idpCertFile}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`);
      }
      const created = await ctx.client().post<ProviderView>('/api/v1/identity-providers', {
        name: options.name,
        kind: 'saml',
        ...(options.displayName ? { display_name: options.displayName } : {}),
        config: {
          entry_point: options.entryPoint,
          idp_cert: idpCert,
          ...(options.idpIssuer ? { idp_issuer: options.idpIssuer } : {}),
          ...(options.emailAttribute ? { email_attribute: options.emailAttribute } : {}),
          ...(options.groupsAttribute ? { groups_attribute: options.groupsAttribute } : {}),
          ...(options.groupMap ? { group_map: options.groupMap } : {}),
          ...(options.keepUnmappedGroups ? { keep_unmapped_groups: true } : {}),
          ...linkingConfig(options),
        },
      });
      if (ctx.json) return printJson(created);
      printFields({ ...created }, ['name', 'kind', 'displayName', 'id']);
      const metadata = created.redirectUri.replace(/\/acs$/, '/metadata');
      process.stdout.write(`\nGive the IdP this service provider:\n  metadata:  ${metadata}\n  ACS URL:   ${created.redirectUri}\n  entity id: ${metadata}\n`);
    });

  idp.command('ls').description('list sign-in providers').action(async () => {
    const ctx = context();
    const { providers } = await ctx.client().get<{ providers: ProviderView[] }>('/api/v1/identity-providers');
    if (ctx.json) return printJson(providers);
    printTable(providers.map((p) => ({
      ...p, issuer: String(p.config.issuer ?? p.config.preset ?? (p.kind === 'github' ? 'github.com' : '')), secret: p.hasSecret ? 'set' : 'none', disabled: p.disabled ? 'yes' : 'no',
    })), ['name', 'kind', 'displayName', 'issuer', 'secret', 'disabled', 'redirectUri']);
  });

  idp.command('show <name>').description('show a sign-in provider (never its secret)').action(async (name: string) => {
    const ctx = context();
    const provider = await ctx.client().get<ProviderView>(`/api/v1/identity-providers/${encodeURIComponent(name)}`);
    if (ctx.json) return printJson(provider);
    printFields({ ...provider, secret: provider.hasSecret ? 'set' : 'none', disabled: provider.disabled ? 'yes' : 'no', config: JSON.stringify(provider.config) }, ['name', 'kind', 'displayName', 'config', 'secret', 'disabled', 'redirectUri', 'id', 'createdAt']);
  });

  idp.command('rm <name>').alias('delete').description('remove a sign-in provider').action(async (name: string) => {
    const ctx = context();
    await ctx.client().delete(`/api/v1/identity-providers/${encodeURIComponent(name)}`);
    if (ctx.json) return printJson({ deleted: name });
    process.stdout.write(`identity provider ${name} removed\n`);
  });
}
