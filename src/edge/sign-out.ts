// The one path every HTTP socket host keeps for itself: `/_postern/logout` ends this browser's
// session. It is never passed to the upstream. A GET only shows a confirmation form, so a link
// or an image on another site cannot sign anyone out; the form posts a token derived from the
// session cookie, which another site can neither read nor guess (and SameSite=Lax keeps the
// cookie off its cross-site POSTs). Without that token nothing changes, not even the cookie.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';

export const SIGN_OUT_PATH = '/_postern/logout';

/** Compared with the canonical path (dot segments, `//` and %-escapes of letters resolved already); case and one trailing slash do not matter. */
export function isSignOutPath(path: string): boolean {
  const lower = path.toLowerCase();
  return lower === SIGN_OUT_PATH || lower === `${SIGN_OUT_PATH}/`;
}

/** The form's token: bound to the cookie's secret, so only a page that the cookie's holder loaded has it. */
export function signOutToken(cookieSecret: string): string {
  return createHmac('sha256', cookieSecret).update('postern sign-out v1').digest('base64url');
}

export function signOutTokenValid(cookieSecret: string, submitted: string | null): boolean {
  if (submitted === null) return false;
  const expected = Buffer.from(signOutToken(cookieSecret));
  const given = Buffer.from(submitted);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export type SignOutPage =
  | { readonly kind: 'confirm'; readonly email: string; readonly socket: string; readonly token: string; readonly retry?: boolean }
  | { readonly kind: 'done'; readonly socket: string }
  | { readonly kind: 'not-signed-in'; readonly socket: string };

/** A small page of our own: never framed (no clickjacked "Sign out" press), no referrer, no script. */
export function sendSignOutPage(res: ServerResponse, status: number, page: SignOutPage, extraHeaders: Record<string, string> = {}): void {
  const body = renderSignOutPage(page);
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    ...extraHeaders,
  });
  res.end(body);
}

export function renderSignOutPage(page: SignOutPage): string {
  const socket = escapeHtml(page.socket);
  const content = page.kind === 'confirm'
    ? `<h1>Sign out of ${socket}?</h1>`
      + `<p>${page.retry ? 'That sign-out did not come from this page. ' : ''}You are signed in as <b>${escapeHtml(page.email)}</b>. Signing out ends this sign-in everywhere it is used.</p>`
      + `<form method="post" action="${SIGN_OUT_PATH}?token=${encodeURIComponent(page.token)}"><button type="submit">Sign out</button></form>`
      + '<p><a href="/">Stay signed in</a></p>'
    : page.kind === 'done'
      ? `<h1>Signed out</h1><p>You are signed out of ${socket}.</p><p><a href="/">Sign in again</a>, with the same or another account.</p>`
      : `<h1>Not signed in</h1><p>This browser is not signed in to ${socket}.</p><p><a href="/">Sign in</a></p>`;
  return '<!doctype html><html><head><meta charset="utf-8"><title>Sign out · Postern</title>'
    + '<style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}button{font:inherit;padding:.4em 1.2em}</style></head>'
    + `<body>${content}</body></html>\n`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
