// Which OpenID issuers Postern talks to: https always; plain http only to this machine
// (127.0.0.0/8, ::1, localhost) and only when the provider says `allow_insecure_issuer`, for a
// provider run beside Postern to try it out. Over http to anywhere else, whoever sits on the path
// could read the codes and forge the sign-ins, so no flag allows that.
import { isIP } from 'node:net';
import { PosternError } from '../errors.js';

const LOOPBACK_HELP = '127.0.0.0/8, ::1, localhost';

/** `hostname` as URL spells it (IPv6 in brackets). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return isIP(host) === 6 && host === '::1';
}

/** The issuer as a URL; PosternError('config_invalid') with one line saying what to change. */
export function checkIssuerUrl(issuer: string, allowInsecure: boolean): URL {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new PosternError('config_invalid', `issuer "${issuer}" is not a URL`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol !== 'http:') throw new PosternError('config_invalid', `issuer "${issuer}" must be an https:// URL`);
  if (!isLoopbackHost(url.hostname)) {
    throw new PosternError('config_invalid', `issuer "${issuer}" must be an https:// URL: plain http is allowed only for a provider on this machine (${LOOPBACK_HELP})`);
  }
  if (!allowInsecure) {
    throw new PosternError('config_invalid', `issuer "${issuer}" uses plain http: add --allow-insecure-issuer (allow_insecure_issuer: true) to use a provider on this machine without TLS`);
  }
  return url;
}

/**
 * The fetch for a provider reached over plain http: its discovery document may name other
 * endpoints, and those must stay on this machine too (or be https).
 */
export function loopbackOnlyFetch(base: typeof fetch): (url: string, init: RequestInit) => Promise<Response> {
  return async (url, init) => {
    const target = new URL(url);
    if (target.protocol !== 'https:' && !isLoopbackHost(target.hostname)) {
      throw new PosternError('identity_invalid', `the provider named ${target.origin} over plain http, which is allowed only on this machine (${LOOPBACK_HELP})`);
    }
    return base(url, init);
  };
}
