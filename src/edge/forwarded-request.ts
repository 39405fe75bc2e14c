// The original request another proxy asks Postern about, read from how that proxy describes it:
// nginx `auth_request` (X-Original-Method / X-Original-URI, set in its config), Traefik
// `forwardAuth` (X-Forwarded-Method / X-Forwarded-Uri / X-Forwarded-Host) and Envoy `ext_authz`
// over HTTP (the original method, and the original path appended to the authorize path). Pure:
// whether to believe these headers at all (a trusted proxy's) is the caller's decision.
import { METHODS } from 'node:http';
import { SOCKET_NAME_PATTERN } from '../store/index.js';

/** On the control host: `/_postern/authz/<socket>`, for Envoy followed by the original path. */
export const AUTHORIZE_PREFIX = '/_postern/authz/';

/** What the proxy said about the original request; its target is still as the client spelled it. */
export interface ForwardedRequest {
  readonly socket: string;
  readonly method: string;
  /** Origin-form target (path and query), not yet canonical. */
  readonly rawTarget: string;
  /** The host the client addressed, when the proxy says (for the request log only). */
  readonly host: string | undefined;
}

export type ForwardedRequestResult =
  | { readonly ok: true; readonly request: ForwardedRequest }
  | { readonly ok: false; readonly status: 400 | 404; readonly detail: string };

const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);

export function isAuthorizePath(url: string | undefined): boolean {
  return (url ?? '').startsWith(AUTHORIZE_PREFIX);
}

/** The one value of a header, or an error when a proxy (or a client through it) sent several. */
function single(headers: NodeJS.Dict<string[]>, name: string): { value: string | undefined } | { duplicate: string } {
  const values = headers[name];
  if (values === undefined || values.length === 0) return { value: undefined };
  return values.length === 1 ? { value: values[0] } : { duplicate: name };
}

/**
 * `url` is the authorize request's own target, `method` its method, `headers` its headers with
 * every repetition kept (Node's `headersDistinct`): a repeated description is ambiguous and refused.
 */
export function parseForwardedRequest(url: string, method: string, headers: NodeJS.Dict<string[]>): ForwardedRequestResult {
  const rest = url.slice(AUTHORIZE_PREFIX.length);
  const end = rest.search(/[/?]/);
  const socket = end === -1 ? rest : rest.slice(0, end);
  if (!SOCKET_NAME_PATTERN.test(socket)) return { ok: false, status: 404, detail: `"${socket}" is not a socket name: ask ${AUTHORIZE_PREFIX}<socket>` };
  // Envoy appends the original path (always starting with "/"); a query on the authorize URL itself is no path.
  const suffix = end !== -1 && rest[end] === '/' ? rest.slice(end) : undefined;
  const read = ['x-original-method', 'x-forwarded-method', 'x-original-uri', 'x-forwarded-uri', 'x-forwarded-host'].map((name) => single(headers, name));
  const duplicate = read.find((r): r is { duplicate: string } => 'duplicate' in r);
  if (duplicate) return { ok: false, status: 400, detail: `${duplicate.duplicate} was sent more than once` };
  const [originalMethod, forwardedMethod, originalUri, forwardedUri, forwardedHost] = read.map((r) => (r as { value: string | undefined }).value);
  const claimedMethod = originalMethod ?? forwardedMethod ?? method;
  if (!KNOWN_METHODS.has(claimedMethod)) return { ok: false, status: 400, detail: `"${claimedMethod.slice(0, 40)}" is not an HTTP method` };
  const rawTarget = originalUri ?? forwardedUri ?? suffix;
  if (rawTarget === undefined) {
    return { ok: false, status: 400, detail: 'the original request target is missing: set X-Original-URI (nginx), X-Forwarded-Uri (Traefik), or append it to the authorize path (Envoy path_prefix)' };
  }
  return { ok: true, request: { socket, method: claimedMethod, rawTarget, host: forwardedHost } };
}

