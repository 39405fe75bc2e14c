// Signs a person in the way `postern login` does — the device flow, with the browser part
// (sign-in form, Approve with CSRF) scripted — and stores the login in the CLI's credentials file;
// and a minimal cookie-jar browser for the control host's pages.
import assert from 'node:assert/strict';
import { saveLogin } from '../../src/cli/credentials.js';
import { httpsFetch, takeCookies } from './https.js';
import type { HttpsResponse } from './https.js';
import { join } from 'node:path';
import { baseEnv } from './processes.js';
import type { ServerHandle } from './processes.js';
import { tempDir } from './util.js';

type Post = (path: string, form: Record<string, string>, cookie?: string) => ReturnType<typeof httpsFetch>;

function clients(server: ServerHandle): { post: Post; get: (path: string, cookie?: string) => ReturnType<typeof httpsFetch> } {
  return {
    post: (path, form, cookie = '') => httpsFetch({
      port: server.port, ca: server.caPem, path, method: 'POST', body: new URLSearchParams(form).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
    }),
    get: (path, cookie = '') => httpsFetch({ port: server.port, ca: server.caPem, path, headers: cookie ? { cookie } : {} }),
  };
}

/** The browser part of the device flow: signs `email` in on the form, then presses Approve for `userCode`. */
export async function approveDeviceCode(server: ServerHandle, userCode: string, email: string, password: string): Promise<void> {
  const { post, get } = clients(server);
  const cookies = new Map<string, string>();
  const remember = (res: { headers: { 'set-cookie'?: string[] } }) => {
    for (const line of res.headers['set-cookie'] ?? []) {
      const [pair] = line.split(';');
      cookies.set(pair!.slice(0, pair!.indexOf('=')), pair!.slice(pair!.indexOf('=') + 1));
    }
    return [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  };
  const form = await get('/auth/login');
  let jar = remember(form);
  const field = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)![1]!;
  jar = remember(await post('/auth/login', { csrf: field(form.text, 'csrf'), email, password }, jar));
  const confirm = await get(`/device?user_code=${userCode}`, jar);
  assert.equal(confirm.status, 200, confirm.text);
  jar = remember(confirm);
  assert.equal((await post('/device', { csrf: field(confirm.text, 'csrf'), user_code: field(confirm.text, 'user_code'), decision: 'approve' }, jar)).status, 200);
}

/** Signs `email` in through the device flow (the browser part scripted) and stores the CLI login like `postern login` does. */
export async function deviceLogin(server: ServerHandle, configDir: string, email: string, password: string): Promise<void> {
  const { post } = clients(server);
  const device = (await post('/api/v1/auth/device', { client_name: 'e2e' })).json<{ device_code: string; user_code: string }>();
  await approveDeviceCode(server, device.user_code, email, password);
  const token = (await post('/api/v1/auth/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code }))
    .json<{ access_token: string; session_id: string; expires_in: number }>();
  saveLogin(configDir, server.url, {
    token: token.access_token, email, sessionId: token.session_id, caPem: server.caPem,
    expiresAt: new Date(Date.now() + token.expires_in * 1000).toISOString(), savedAt: new Date().toISOString(),
  });
}

/** A person's machine: its own config and data dirs, pointed at the server (not signed in yet). */
export async function laptopFor(server: ServerHandle): Promise<{ env: NodeJS.ProcessEnv; configDir: string }> {
  const home = (await tempDir('postern-laptop-')).path;
  const configDir = join(home, 'config');
  return { env: baseEnv({ POSTERN_SERVER: server.url, POSTERN_CA: server.caFile, POSTERN_CONFIG_DIR: configDir, POSTERN_DATA_DIR: join(home, 'data') }), configDir };
}

/** A laptop on which `email` has signed in with `postern login`. */
export async function signedInLaptop(server: ServerHandle, email: string, password: string): Promise<NodeJS.ProcessEnv> {
  const machine = await laptopFor(server);
  await deviceLogin(server, machine.configDir, email, password);
  return machine.env;
}

/** Just enough of a browser for the control host: one cookie jar, manual redirects; signs in as `email` when sent to the form. */
export class ControlBrowser {
  readonly jar = new Map<string, string>();

  constructor(private readonly server: ServerHandle, private readonly email: string, private readonly password: string) {}

  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<HttpsResponse> {
    const target = new URL(url, this.server.url);
    const body = init.form ? new URLSearchParams(init.form).toString() : undefined;
    const res = await httpsFetch({
      port: Number(target.port), ca: this.server.caPem, host: target.hostname, path: target.pathname + target.search, method: init.method ?? 'GET',
      headers: {
        ...(this.jar.size ? { cookie: [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(body ? { body } : {}),
    });
    return takeCookies(this.jar, res);
  }

  /** Opens `url` (a page that needs sign-in), signs in on the form it is sent to, returns the page it lands on. */
  async openSigningIn(url: string): Promise<HttpsResponse> {
    const first = await this.request(url);
    if (first.status !== 303 || !first.headers.location!.startsWith('/auth/login')) return first;
    const login = await this.request(first.headers.location!);
    assert.equal(login.status, 200, login.text);
    const posted = await this.request('/auth/login', {
      method: 'POST', form: { csrf: hidden(login.text, 'csrf')!, return_to: hidden(login.text, 'return_to') ?? '', email: this.email, password: this.password },
    });
    assert.equal(posted.status, 303, posted.text);
    return this.request(posted.headers.location!);
  }

  /** From the confirmation page, presses Approve or Deny. */
  async decide(page: HttpsResponse, decision: 'approve' | 'deny'): Promise<HttpsResponse> {
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, /Approve/);
    return this.request('/device', { method: 'POST', form: { csrf: hidden(page.text, 'csrf')!, user_code: hidden(page.text, 'user_code')!, decision } });
  }
}

export function hidden(html: string, name: string): string | undefined {
  return new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1]?.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)));
}
