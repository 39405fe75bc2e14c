// The dashboard's one way to the control API: same-origin fetch with the session cookie (never a
// token in storage), the CSRF token on every state-changing call, and problem+json turned into ApiError.

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The header the API compares with the CSRF cookie on calls that change state. */
const CSRF_HEADER = 'x-csrf-token';
let csrfToken = '';

/** Set once from /api/v1/me, which hands the browser its CSRF token. */
export function useCsrfToken(token: string): void {
  csrfToken = token;
}

async function problemOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const problem = JSON.parse(text) as { code?: string; detail?: string; title?: string };
    return new ApiError(res.status, problem.code ?? 'error', problem.detail ?? problem.title ?? res.statusText);
  } catch {
    return new ApiError(res.status, 'error', text.slice(0, 200) || res.statusText);
  }
}

export async function api<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers[CSRF_HEADER] = csrfToken;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}), ...(signal ? { signal } : {}) });
  if (!res.ok) throw await problemOf(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** A query string from the set fields only. */
export function query(params: Readonly<Record<string, string | number | boolean | undefined | null>>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
