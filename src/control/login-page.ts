// The control host's sign-in page (local accounts): one small HTML form, no scripts.

export interface LoginPageModel {
  csrf: string;
  socket?: string;
  returnTo?: string;
  email?: string;
  error?: string;
  signedInAs?: string;
  /** Enabled external sign-in sources: one button each, to `/auth/<kind>/<name>/start`. */
  providers?: readonly { kind: string; name: string; displayName: string }[];
}

export function renderLoginPage(model: LoginPageModel): string {
  const hidden = (name: string, value: string | undefined) => (value ? `<input type="hidden" name="${name}" value="${escapeHtml(value)}">` : '');
  const target = model.socket ? `<p>to continue to <strong>${escapeHtml(model.socket)}</strong></p>` : '';
  const error = model.error ? `<p class="error" role="alert">${escapeHtml(model.error)}</p>` : '';
  const startQuery = new URLSearchParams({ ...(model.socket ? { socket: model.socket } : {}), ...(model.returnTo ? { return_to: model.returnTo } : {}) }).toString();
  const providerButtons = (model.providers ?? []).length === 0 || model.signedInAs ? '' : `<ul class="providers">${(model.providers ?? []).map((p) =>
    `<li><a class="provider" href="/auth/${encodeURIComponent(p.kind)}/${encodeURIComponent(p.name)}/start${startQuery ? `?${escapeHtml(startQuery)}` : ''}">Sign in with ${escapeHtml(p.displayName || p.name)}</a></li>`).join('')}</ul><p class="or">or with a Postern password:</p>`;
  const signedIn = model.signedInAs
    ? `<p>Signed in as <strong>${escapeHtml(model.signedInAs)}</strong>.</p><form method="post" action="/auth/logout">${hidden('csrf', model.csrf)}<button type="submit">Sign out</button></form>`
    : `<form method="post" action="/auth/login">
${hidden('csrf', model.csrf)}${hidden('socket', model.socket)}${hidden('return_to', model.returnTo)}
<label>Email <input type="email" name="email" autocomplete="username" required value="${escapeHtml(model.email ?? '')}"></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>Sign in · Postern</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem;color:#222}label{display:block;margin:.8rem 0}input{display:block;width:100%;padding:.4rem;margin-top:.2rem}button{padding:.5rem 1rem}.error{color:#a00}.providers{list-style:none;padding:0}.provider{display:block;margin:.5rem 0;padding:.5rem 1rem;border:1px solid #888;border-radius:4px;text-decoration:none;color:#222}</style>
</head><body><h1>Sign in to Postern</h1>${target}${error}${providerButtons}${signedIn}</body></html>
`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
