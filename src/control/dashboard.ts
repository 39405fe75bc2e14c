// The dashboard on the control host: the built web app (index.html and assets/, read into
// memory once at start, so no request path ever reaches the file system), its pages answered
// with index.html, `GET /api/v1/me` (who the caller is, and the browser's CSRF token), and
// the first-admin setup pages. Without a built app, `/` keeps the plain landing page.
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendPage } from './html-page.js';
import type { Store } from '../store/index.js';
import type { NewAuditEvent } from '../reporting/index.js';
import { PosternError } from '../errors.js';
import { isDashboardPath } from '../identity/index.js';
import type { RouteTable } from './routes.js';
import type { SessionService } from './sessions.js';
import { csrfToken } from './csrf.js';
import { principalOf, scopesAllow } from './principal.js';
import { meView } from './dashboard-types.js';
import type { MeView } from './dashboard-types.js';
import { renderHome } from './home.js';
import { registerSetupRoutes } from './setup-routes.js';

/** Where the build puts the web app: dist/ui beside dist/src. */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../ui/', import.meta.url));
/** The whole app is held in memory: a build larger than this is refused at start. */
export const MAX_DASHBOARD_BYTES = 20 * 1024 * 1024;
const MAX_ASSET_FILES = 5000;
const MAX_ASSET_DEPTH = 8;

/** Scripts from the package only; 'wasm-unsafe-eval' lets the recording player compile its WebAssembly terminal (JavaScript eval stays refused). */
export const DASHBOARD_CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";


const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.wasm': 'application/wasm',
};

export interface DashboardAsset {
  readonly body: Buffer;
  readonly contentType: string;
  readonly etag: string;
}

export interface DashboardFiles {
  readonly index: Buffer;
  /** By request path (`/assets/index-1a2b.js`). */
  readonly assets: ReadonlyMap<string, DashboardAsset>;
}

export function contentTypeOf(path: string): string {
  return CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/** The built app under `webRoot`, or undefined when it has no index.html; PosternError('config_invalid') when it is too large. */
export async function loadDashboard(webRoot: string, maxBytes = MAX_DASHBOARD_BYTES): Promise<DashboardFiles | undefined> {
  const indexFile = join(webRoot, 'index.html');
  const indexStat = await stat(indexFile).catch(() => undefined);
  if (!indexStat?.isFile()) return undefined;
  let total = indexStat.size;
  const tooLarge = () => new PosternError('config_invalid', `the dashboard in ${webRoot} is larger than ${maxBytes / 1024 / 1024} MiB (or has more than ${MAX_ASSET_FILES} files): is that the built app?`);
  if (total > maxBytes) throw tooLarge();
  const index = await readFile(indexFile);
  const assets = new Map<string, DashboardAsset>();
  // Regular files only: symbolic links and anything else are left out.
  const walk = async (dir: string, urlPath: string, depth: number): Promise<void> => {
    if (depth > MAX_ASSET_DEPTH) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const file = join(dir, entry.name);
      if (entry.isDirectory()) {
        await walk(file, `${urlPath}${entry.name}/`, depth + 1);
        continue;
      }
      if (!entry.isFile()) continue;
      total += (await stat(file)).size;
      if (total > maxBytes || assets.size >= MAX_ASSET_FILES) throw tooLarge();
      const body = await readFile(file);
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
      assets.set(`${urlPath}${entry.name}`, { body, contentType: contentTypeOf(entry.name), etag });
    }
  };
  await walk(join(webRoot, 'assets'), '/assets/', 0);
  return { index, assets };
}

export interface DashboardOptions {
  store: Store;
  sessions: SessionService;
  inviteKey: Buffer;
  adminGroup: string;
  audit: (event: NewAuditEvent) => void;
  version: string;
  /** The built app's folder (default DEFAULT_WEB_ROOT). */
  webRoot?: string;
  now?: () => Date;
}

/** Headers of every answer that is part of the app. */
function uiHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', DASHBOARD_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY');
}

function pathOf(request: FastifyRequest): string {
  const url = request.url;
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}

/** Who the caller is, for the dashboard; a browser also gets its CSRF token (set as a cookie when it had none). */
function me(request: FastifyRequest, reply: FastifyReply): MeView {
  const principal = principalOf(request);
  if (principal.kind === 'token') {
    const { token } = principal;
    return { email: `token:${token.name}`, displayName: token.name, groups: [], admin: scopesAllow(token.scopes, 'admin'), kind: 'token' };
  }
  const { user } = principal;
  return {
    email: user.email,
    ...(user.name ? { displayName: user.name } : {}),
    groups: [...user.groups],
    admin: scopesAllow(principal.scopes, 'admin'),
    kind: principal.kind,
    ...(principal.kind === 'browser' ? { csrf: csrfToken(request, reply) } : {}),
  };
}

export async function registerDashboard(app: FastifyInstance, routes: RouteTable, options: DashboardOptions): Promise<void> {
  const files = await loadDashboard(options.webRoot ?? DEFAULT_WEB_ROOT);
  const sendIndex = (reply: FastifyReply, index: Buffer) => uiHeaders(reply).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(index);

  routes.add({ method: 'GET', url: '/api/v1/me', summary: 'Who is calling: email, groups, whether admin routes are open, and (for a browser) the CSRF token its changes send', auth: 'user',
    response: meView,
    handler: async ({ request, reply }) => {
      void reply.header('cache-control', 'no-store');
      return me(request, reply);
    } });
  registerSetupRoutes(app, {
    store: options.store, sessions: options.sessions, inviteKey: options.inviteKey, adminGroup: options.adminGroup, audit: options.audit,
    ...(options.now ? { now: options.now } : {}),
  });

  app.get('/', async (_request, reply) => (files
    ? sendIndex(reply, files.index)
    : sendPage(reply, renderHome(options.version))));
  if (!files) return;

  app.get('/assets/*', async (request, reply) => {
    const asset = files.assets.get(pathOf(request));
    if (!asset) return reply.callNotFound();
    uiHeaders(reply).header('cache-control', 'public, max-age=31536000, immutable').header('etag', asset.etag);
    if (String(request.headers['if-none-match'] ?? '').split(',').some((tag) => tag.trim() === asset.etag)) return reply.code(304).send();
    return reply.type(asset.contentType).send(asset.body);
  });
  // The app's own pages (/sessions, /sockets/grafana…) load index.html, which routes in the browser.
  app.get('/*', async (request, reply) => {
    const accept = String(request.headers.accept ?? '').toLowerCase();
    if (!isDashboardPath(pathOf(request)) || !accept.includes('text/html')) return reply.callNotFound();
    return sendIndex(reply, files.index);
  });
}
