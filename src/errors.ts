// The one error class of Postern: a stable `code` to classify by (never the message),
// an optional `cause`, and whether retrying may help. Transports map codes to answers.

export type ErrorCode =
  | 'bad_request'
  | 'config_invalid'
  | 'not_found'
  | 'conflict'
  | 'unauthenticated'
  | 'forbidden'
  /** A person signed in, but is not in the admin group and the route is for admins. */
  | 'admin_required'
  /** A browser's cookie-authenticated change without the CSRF token (or from another origin). */
  | 'csrf_failed'
  | 'token_invalid'
  | 'token_used'
  | 'token_expired'
  | 'socket_not_found'
  | 'connector_offline'
  | 'upstream_unreachable'
  | 'upstream_timeout'
  | 'tunnel_closed'
  | 'store_unavailable'
  | 'certificate_invalid'
  | 'internal'
  | 'rate_limited'
  | 'identity_invalid'
  | 'request_target_invalid'
  | 'path_ambiguous'
  | 'upgrade_not_supported'
  | 'request_timeout'
  | 'too_many_streams'
  /** A connector dialed with a tunnel protocol version this edge no longer speaks. */
  | 'tunnel_version_unsupported'
  /** The upstream sshd of a managed SSH socket showed another host key than the one pinned. */
  | 'ssh_host_key_changed'
  /** The upstream sshd refused the certificate login Postern made for the session. */
  | 'ssh_login_failed';

const httpStatusByCode: Record<ErrorCode, number> = {
  bad_request: 400,
  config_invalid: 400,
  not_found: 404,
  conflict: 409,
  unauthenticated: 401,
  forbidden: 403,
  admin_required: 403,
  csrf_failed: 403,
  token_invalid: 401,
  token_used: 401,
  token_expired: 401,
  socket_not_found: 404,
  connector_offline: 503,
  upstream_unreachable: 502,
  upstream_timeout: 504,
  tunnel_closed: 502,
  store_unavailable: 503,
  certificate_invalid: 401,
  internal: 500,
  rate_limited: 429,
  identity_invalid: 403,
  request_target_invalid: 400,
  path_ambiguous: 400,
  upgrade_not_supported: 400,
  request_timeout: 408,
  tunnel_version_unsupported: 426,
  too_many_streams: 429,
  ssh_host_key_changed: 502,
  ssh_login_failed: 502,
};

export class PosternError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** Extension members of the API's problem+json answer (RFC 9457 §3.2), e.g. `errors` with a line per problem. */
  readonly problem: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryable?: boolean; problem?: Readonly<Record<string, unknown>> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PosternError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.problem = options.problem;
  }

  get httpStatus(): number {
    return httpStatusByCode[this.code];
  }
}

export function isPosternError(err: unknown, code?: ErrorCode): err is PosternError {
  return err instanceof PosternError && (code === undefined || err.code === code);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
