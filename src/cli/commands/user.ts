// `postern user …` and `postern sessions …`: local accounts and their sign-in sessions.
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { printFields, printJson, printTable } from '../output.js';
import { PosternError } from '../../errors.js';
import { readSecretFromStdin } from '../stdin.js';
import { registerSessionWatch } from './recordings.js';

interface UserView {
  id: string;
  email: string;
  name: string;
  groups: string[];
  hasPassword: boolean;
  disabled: boolean;
  createdAt: string;
}

const list = (value: string) => value.split(',').map((item) => item.trim()).filter(Boolean);

/** A live connection's activity as `sessions ls` lists it: the statement with its start, `idle since …`, or '' where the protocol reports none. */
export function describeActivity(connection: { activity?: string; activitySince?: string | null }): string {
  if (!connection.activitySince) return '';
  return connection.activity ? `${connection.activity} (since ${connection.activitySince})` : `idle since ${connection.activitySince}`;
}

function showUser(ctx: CliContext, user: UserView): void {
  if (ctx.json) return printJson(user);
  printFields({ ...user, password: user.hasPassword ? 'set' : 'none', disabled: user.disabled ? 'yes' : 'no' }, ['email', 'name', 'groups', 'password', 'disabled', 'id', 'createdAt']);
}

export function registerUser(program: Command, context: () => CliContext): void {
  const user = program.command('user').description('local accounts (people who sign in with a password)');
  user.command('create')
    .description('create a user')
    .requiredOption('--email <email>', 'their email (the identity upstreams see)')
    .option('--name <name>', 'display name')
    .option('--groups <a,b>', 'groups, comma-separated', list)
    .option('--password-stdin', 'read a password from standard input (otherwise an invitation link is printed)')
    .action(async (options: { email: string; name?: string; groups?: string[]; passwordStdin?: boolean }) => {
      const ctx = context();
      const password = await readSecretFromStdin(options.passwordStdin, '--password-stdin');
      const client = ctx.client();
      const created = await client.post<UserView>('/api/v1/users', {
        email: options.email, ...(options.name ? { name: options.name } : {}), ...(options.groups ? { groups: options.groups } : {}), ...(password ? { password } : {}),
      });
      const invite = password ? undefined : await client.post<{ url: string; expiresAt: string }>(`/api/v1/users/${created.id}/invite`);
      if (ctx.json) return printJson({ ...created, ...(invite ? { invite } : {}) });
      showUser(ctx, created);
      if (invite) process.stdout.write(`\nSend this link to ${created.email} to set a password (one use, until ${invite.expiresAt}):\n  ${invite.url}\n`);
    });
  user.command('invite <email>')
    .description('a new link for the user to set their own password')
    .action(async (email: string) => {
      const ctx = context();
      const invite = await ctx.client().post<{ url: string; expiresAt: string }>(`/api/v1/users/${encodeURIComponent(email)}/invite`);
      if (ctx.json) return printJson(invite);
      process.stdout.write(`${invite.url}\n`);
    });
  user.command('ls').description('list users').action(async () => {
    const ctx = context();
    const { users } = await ctx.client().get<{ users: UserView[] }>('/api/v1/users');
    if (ctx.json) return printJson(users);
    printTable(users.map((u) => ({ ...u, password: u.hasPassword ? 'set' : 'none', disabled: u.disabled ? 'yes' : 'no' })), ['email', 'name', 'groups', 'password', 'disabled']);
  });
  user.command('update <email>')
    .description('change a user')
    .option('--name <name>', 'display name')
    .option('--groups <a,b>', 'replace groups', list)
    .option('--password-stdin', 'set a new password read from standard input')
    .option('--disable', 'refuse sign-in and end their sessions')
    .option('--enable', 'allow sign-in again')
    .action(async (email: string, options: { name?: string; groups?: string[]; passwordStdin?: boolean; disable?: boolean; enable?: boolean }) => {
      const ctx = context();
      const password = await readSecretFromStdin(options.passwordStdin, '--password-stdin');
      const patch = {
        ...(options.name !== undefined ? { name: options.name } : {}),
        ...(options.groups ? { groups: options.groups } : {}),
        ...(password ? { password } : {}),
        ...(options.disable ? { disabled: true } : options.enable ? { disabled: false } : {}),
      };
      if (Object.keys(patch).length === 0) throw new PosternError('bad_request', 'nothing to change: pass --name, --groups, --password-stdin, --disable or --enable');
      showUser(ctx, await ctx.client().patch<UserView>(`/api/v1/users/${encodeURIComponent(email)}`, patch));
    });
  user.command('show <email>').description('show a user and the provider identities it is linked to').action(async (email: string) => {
    const ctx = context();
    const shown = await ctx.client().get<UserView & { identities: { provider: string; issuer: string; subject: string; email: string; linkedAt: string }[] }>(`/api/v1/users/${encodeURIComponent(email)}`);
    if (ctx.json) return printJson(shown);
    showUser(ctx, shown);
    if (shown.identities.length > 0) {
      process.stdout.write('\nLinked identities:\n');
      printTable(shown.identities, ['provider', 'issuer', 'subject', 'email', 'linkedAt']);
    }
  });
  user.command('delete <email>').description('delete a user and end their sessions').action(async (email: string) => {
    const ctx = context();
    await ctx.client().delete(`/api/v1/users/${encodeURIComponent(email)}`);
    if (ctx.json) printJson({ deleted: email });
    else process.stdout.write(`deleted user ${email}\n`);
  });

  const sessions = program.command('sessions').description('sign-in sessions (browser and CLI) and the live connections they hold');
  sessions.command('ls')
    .description('list sessions with their live connections')
    .option('--user <email>', 'only this user\'s')
    .option('--socket <name>', 'only connections to this socket')
    .option('--all', 'include ended sessions')
    .action(async (options: { user?: string; socket?: string; all?: boolean }) => {
      const ctx = context();
      const query = options.user ? `?user=${encodeURIComponent(options.user)}` : '';
      const connectionQuery = new URLSearchParams({ ...(options.user ? { user: options.user } : {}), ...(options.socket ? { socket: options.socket } : {}) }).toString();
      const [{ sessions: rows }, { connections }] = await Promise.all([
        ctx.client().get<{ sessions: (Record<string, unknown> & { id: string; active: boolean })[] }>(`/api/v1/sessions${query}`),
        ctx.client().get<{ connections: (Record<string, unknown> & { sessionId: string; activity?: string; activitySince?: string | null })[] }>(`/api/v1/connections${connectionQuery ? `?${connectionQuery}` : ''}`),
      ]);
      const bySession = new Map<string, Record<string, unknown>[]>();
      for (const c of connections) bySession.set(c.sessionId, [...(bySession.get(c.sessionId) ?? []), c]);
      const shown = (options.all ? rows : rows.filter((s) => s.active)).filter((s) => !options.socket || bySession.has(s.id));
      // Connections opened with a certificate issued outside a sign-in (by an admin) belong to no session; they are listed all the same.
      const known = new Set(rows.map((s) => s.id));
      const unattached = connections.filter((c) => !known.has(c.sessionId));
      if (ctx.json) {
        return printJson([
          ...shown.map((s) => ({ ...s, connections: bySession.get(s.id) ?? [] })),
          ...(unattached.length > 0 ? [{ id: null, kind: 'certificate', active: true, connections: unattached }] : []),
        ]);
      }
      printTable(shown.map((s) => ({ ...s, live: bySession.get(s.id)?.length ?? 0 })), ['id', 'user', 'kind', 'provider', 'clientIp', 'createdAt', 'lastSeenAt', 'expiresAt', 'live']);
      if (connections.length === 0) return;
      process.stdout.write('\nlive connections:\n');
      printTable(connections.map((c) => ({ ...c, doing: describeActivity(c) })), ['id', 'sessionId', 'email', 'socket', 'protocol', 'clientIp', 'country', 'startedAt', 'bytesUp', 'bytesDown', 'doing', 'edgeId']);
    });
  registerSessionWatch(sessions, context);
  sessions.command('revoke [id]')
    .alias('kill')
    .description('end a session (its browser goes back to sign-in, its connections are cut) or kill one live connection (conn_…)')
    .option('--user <email>', 'instead: cut every live connection of this person')
    .action(async (id: string | undefined, options: { user?: string }) => {
      const ctx = context();
      if (options.user) {
        const { killed } = await ctx.client().post<{ killed: number }>('/api/v1/connections/kill', { user: options.user });
        if (ctx.json) return printJson({ user: options.user, killed });
        return void process.stdout.write(`killed ${killed} live connection${killed === 1 ? '' : 's'} of ${options.user}\n`);
      }
      if (!id) throw new PosternError('bad_request', 'give a session or connection id, or --user <email>');
      if (id.startsWith('conn_')) {
        await ctx.client().delete(`/api/v1/connections/${encodeURIComponent(id)}`);
        if (ctx.json) return printJson({ killed: id });
        return void process.stdout.write(`killed connection ${id}\n`);
      }
      await ctx.client().delete(`/api/v1/sessions/${encodeURIComponent(id)}`);
      if (ctx.json) printJson({ revoked: id });
      else process.stdout.write(`revoked session ${id}\n`);
    });
}
