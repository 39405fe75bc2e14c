// Just enough of a browser for sign-in flows over real HTTPS (and plain http to a test identity
// provider on loopback): one cookie jar per host, form posts, redirects followed by hand.
import assert from 'node:assert/strict';
import { httpsFetch, takeCookies } from './https.js';
import type { HttpsResponse } from './https.js';

export class CookieBrowser {
  private readonly jars = new Map<string, Map<string, string>>();

  constructor(protected readonly server: { caPem: string }) {}

  cookies(host: string): Map<string, string> {
    let jar = this.jars.get(host);
    if (!jar) this.jars.set(host, (jar = new Map()));
    return jar;
  }

  async request(url: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<HttpsResponse> {
    const target = new URL(url);
    const jar = this.cookies(target.hostname);
    const body = init.form ? new URLSearchParams(init.form).toString() : undefined;
    const method = init.method ?? 'GET';
    const headers = {
      ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
      ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      ...init.headers,
    };
    const res = target.protocol === 'http:'
      ? await plainHttp(target, method, headers, body)
      : await httpsFetch({ port: Number(target.port), ca: this.server.caPem, host: target.hostname, path: target.pathname + target.search, method, headers, ...(body ? { body } : {}) });
    return takeCookies(jar, res);
  }
}

/** A plain-http hop (a test identity provider on 127.0.0.1), shaped like an HTTPS response. */
async function plainHttp(target: URL, method: string, headers: Record<string, string>, body: string | undefined): Promise<HttpsResponse> {
  const res = await fetch(target, { method, headers, redirect: 'manual', ...(body ? { body } : {}), signal: AbortSignal.timeout(30_000) });
  const buffer = Buffer.from(await res.arrayBuffer());
  const text = buffer.toString('utf8');
  const head: Record<string, string | string[]> = Object.fromEntries(res.headers);
  head['set-cookie'] = res.headers.getSetCookie();
  return { status: res.status, headers: head, body: buffer, text, json: <T>() => JSON.parse(text) as T };
}

/** The cookie-jar browser plus the local sign-in form of the control host at `server.url`. */
export class SignInBrowser extends CookieBrowser {
  constructor(private readonly handle: { caPem: string; url: string }, private readonly password: string) {
    super(handle);
  }

  /** Opens a socket URL and signs in on the control host's form; returns the final response. */
  async signIn(url: string, email: string): Promise<HttpsResponse> {
    const first = await this.request(url);
    assert.equal(first.status, 302, first.text);
    const login = await this.request(first.headers.location!);
    assert.equal(login.status, 200);
    const hidden = (name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(login.text)?.[1]?.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)));
    const posted = await this.request(`${this.handle.url}/auth/login`, {
      method: 'POST',
      form: { csrf: hidden('csrf')!, socket: hidden('socket') ?? '', return_to: hidden('return_to') ?? '', email, password: this.password },
    });
    if (posted.status !== 303) return posted;
    const callback = await this.request(posted.headers.location!);
    if (callback.status !== 303) return callback;
    return this.request(new URL(callback.headers.location!, url).toString());
  }
}
