// `postern login`, `postern whoami`, `postern logout`: a person's CLI sign-in, kept 0600 in
// the config dir per server (see credentials.ts and the token order in context.ts).
import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import type { CliContext } from '../context.js';
import { printFields, printJson } from '../output.js';
import { PosternError, isPosternError } from '../../errors.js';
import { deleteLogin, loadLogin, saveLogin } from '../credentials.js';
import { exchangeLoopbackCode, httpsPostJson, loopbackCode, pollForToken, requestDeviceCode } from '../cli-login.js';
import type { TokenResponse } from '../cli-login.js';
import { ApiClient } from '../../api-client/index.js';
import { VERSION } from '../server-runtime.js';

interface WhoAmI {
  kind: 'cli' | 'token';
  email?: string;
  name: string;
  groups?: string[];
  sessionId?: string;
  provider?: string;
  expiresAt?: string;
  role?: string;
  scopes?: string[];
  tokenId?: string;
}

/** Best effort, only for a person at a terminal: never fails the login. */
function openBrowser(url: string): void {
  if (!process.stdout.isTTY) return;
  const command = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(command, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // no browser here: the printed URL is enough
  }
}

/** The device flow: prints the link and code through `say`, polls until approved. */
async function deviceCodeToken(ctx: CliContext, say: (text: string) => void): Promise<TokenResponse> {
  const post = httpsPostJson(ctx.server, ctx.caPem);
  const device = await requestDeviceCode(post, `postern ${VERSION} on ${hostname()}`);
  say(`To sign in, open this page in any browser:\n\n  ${device.verification_uri_complete}\n\n`
    + `and check that it shows the code: ${device.user_code}\n`
    + `(or open ${device.verification_uri} and type the code). Waiting for approval; the code expires in ${Math.round(device.expires_in / 60) || 1} min.\n`);
  return pollForToken(post, device);
}

function storeLogin(ctx: CliContext, token: TokenResponse): { path: string; expiresAt: string } {
  const expiresAt = new Date(Date.now() + token.expires_in * 1000).toISOString();
  const path = saveLogin(ctx.configDir, ctx.server, {
    token: token.access_token, email: token.email, sessionId: token.session_id, expiresAt,
    ...(ctx.caPem ? { caPem: ctx.caPem } : {}), savedAt: new Date().toISOString(),
  });
  return { path, expiresAt };
}

/**
 * Signs in with a device code when this CLI holds no sign-in for the server (messages on stderr,
 * so stdout stays free for a ProxyCommand's bytes); returns the context to use afterwards.
 */
export async function signedIn(context: () => CliContext): Promise<CliContext> {
  const ctx = context();
  if (ctx.tokenSource === 'login' || ctx.token?.startsWith('pst1_')) return ctx;
  const token = await deviceCodeToken(ctx, (text) => process.stderr.write(text));
  storeLogin(ctx, token);
  process.stderr.write(`Signed in to ${ctx.server} as ${token.email}.\n`);
  return context();
}

export function registerLogin(program: Command, context: () => CliContext): void {
  program.command('login')
    .description('sign in as yourself (device code by default: works over SSH with no browser here)')
    .option('--browser', 'sign in with a browser on this machine (loopback redirect) instead of a code')
    .action(async (options: { browser?: boolean }) => {
      const ctx = context();
      const post = httpsPostJson(ctx.server, ctx.caPem);
      const say = (text: string) => (ctx.json ? process.stderr : process.stdout).write(text);
      let token: TokenResponse;
      if (options.browser) {
        const loopback = await loopbackCode({
          server: ctx.server,
          onUrl: (url, checkCode) => {
            say(`Open this page in a browser on this machine to sign in:\n\n  ${url}\n\nApprove there if it shows the check code: ${checkCode}\nWaiting for the browser…\n`);
            openBrowser(url);
          },
        });
        token = await exchangeLoopbackCode(post, loopback);
      } else {
        token = await deviceCodeToken(ctx, say);
      }
      const { path, expiresAt } = storeLogin(ctx, token);
      if (ctx.json) return printJson({ server: ctx.server, email: token.email, sessionId: token.session_id, expiresAt, credentials: path });
      process.stdout.write(`Signed in to ${ctx.server} as ${token.email} (session ${token.session_id}, until ${expiresAt}).\n`);
    });

  program.command('whoami')
    .description('show who the CLI acts as on the server')
    .action(async () => {
      const ctx = context();
      if (!ctx.token) throw new PosternError('unauthenticated', `not signed in to ${ctx.server}: run \`postern login\``);
      const me = await ctx.client().get<WhoAmI>('/api/v1/auth/whoami');
      if (ctx.json) return printJson({ ...me, server: ctx.server, source: ctx.tokenSource });
      if (me.kind === 'token') return printFields({ token: me.name, role: me.role, scopes: me.scopes?.join(', '), id: me.tokenId, server: ctx.server }, ['token', 'role', 'scopes', 'id', 'server']);
      printFields({ email: me.email, name: me.name, groups: me.groups, role: me.role, session: me.sessionId, expires: me.expiresAt, server: ctx.server }, ['email', 'name', 'groups', 'role', 'session', 'expires', 'server']);
    });

  program.command('logout')
    .description('end this CLI sign-in on the server and forget it here')
    .action(async () => {
      const ctx = context();
      const stored = loadLogin(ctx.configDir, ctx.server);
      const explicit = (ctx.tokenSource === 'flag' || ctx.tokenSource === 'env') && ctx.token?.startsWith('pst1_') ? ctx.token : undefined;
      const token = explicit ?? stored?.token;
      if (!token) throw new PosternError('unauthenticated', `not signed in to ${ctx.server}`);
      const caPem = ctx.caPem ?? stored?.caPem;
      try {
        await new ApiClient({ server: ctx.server, token, ...(caPem ? { caPem } : {}) }).post('/api/v1/auth/logout');
      } catch (err) {
        // Already revoked or expired on the server: forgetting it here is all that is left to do.
        if (!isPosternError(err, 'unauthenticated')) throw err;
      }
      if (!explicit || token === stored?.token) deleteLogin(ctx.configDir, ctx.server);
      if (ctx.json) return printJson({ server: ctx.server, signedOut: true });
      process.stdout.write(`Signed out of ${ctx.server}${stored?.email ? ` (${stored.email})` : ''}.\n`);
    });
}
