// Just enough of a browser for sign-in flows over real HTTPS: one cookie jar per host,
// form posts, redirects followed by hand (so each hop can be checked).
import { httpsFetch } from './https.js';
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
    const res = await httpsFetch({
      port: Number(target.port), ca: this.server.caPem, host: target.hostname, path: target.pathname + target.search, method: init.method ?? 'GET',
      headers: {
        ...(jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...init.headers,
      },
      ...(body ? { body } : {}),
    });
    for (const line of ([] as string[]).concat(res.headers['set-cookie'] ?? [])) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const value = pair!.slice(eq + 1);
      if (/Max-Age=0/i.test(line) || value === '') jar.delete(pair!.slice(0, eq));
      else jar.set(pair!.slice(0, eq), value);
    }
    return res;
  }
}
