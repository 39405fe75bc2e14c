// The control host's CLI-login pages: enter a user code, approve or deny a device or a loopback
// (`--browser`) sign-in, and the outcome. Small HTML, no scripts; every value is escaped.
import { escapeHtml } from './login-page.js';

export type DevicePageModel =
  | { view: 'enter'; csrf: string; email: string; error?: string; userCode?: string }
  | { view: 'confirm'; csrf: string; email: string; userCode: string; clientName: string; clientIp: string; requestedAt: string; expiresAt: string }
  | { view: 'loopback'; csrf: string; email: string; port: number; state: string; challenge: string; checkCode: string }
  | { view: 'done'; email: string; approved: boolean }
  | { view: 'problem'; message: string };

const STYLE = 'body{font:16px system-ui,sans-serif;max-width:30rem;margin:4rem auto;padding:0 1rem;color:#222}label{display:block;margin:.8rem 0}input{display:block;width:100%;padding:.4rem;margin-top:.2rem}button{padding:.5rem 1rem;margin-right:.5rem}.error{color:#a00}.code{font:600 1.6rem ui-monospace,monospace;letter-spacing:.1em}dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem}dt{color:#666}';

export function renderDevicePage(model: DevicePageModel): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>CLI sign-in · Postern</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${STYLE}</style>
</head><body><h1>Sign in the Postern CLI</h1>${body(model)}</body></html>
`;
}

function body(model: DevicePageModel): string {
  const csrf = (value: string) => `<input type="hidden" name="csrf" value="${escapeHtml(value)}">`;
  switch (model.view) {
    case 'enter':
      return `<p>Signed in as <strong>${escapeHtml(model.email)}</strong>.</p>
${model.error ? `<p class="error" role="alert">${escapeHtml(model.error)}</p>` : ''}
<form method="get" action="/device">
<label>Code shown by <code>postern login</code> <input name="user_code" autocomplete="off" autocapitalize="characters" required value="${escapeHtml(model.userCode ?? '')}" placeholder="XXXX-XXXX"></label>
<button type="submit">Continue</button>
</form>`;
    case 'confirm':
      return `<p>A command line asks to sign in as <strong>${escapeHtml(model.email)}</strong>.</p>
<p class="code">${escapeHtml(model.userCode)}</p>
<p>Approve only if you ran <code>postern login</code> yourself and your terminal shows this same code.</p>
<dl><dt>client</dt><dd>${escapeHtml(model.clientName || 'postern')}</dd><dt>from</dt><dd>${escapeHtml(model.clientIp || 'unknown')}</dd>
<dt>asked at</dt><dd>${escapeHtml(model.requestedAt)}</dd><dt>code expires</dt><dd>${escapeHtml(model.expiresAt)}</dd></dl>
<form method="post" action="/device">${csrf(model.csrf)}<input type="hidden" name="user_code" value="${escapeHtml(model.userCode)}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`;
    case 'loopback':
      return `<p>A command line asks to sign in as <strong>${escapeHtml(model.email)}</strong> and to receive the sign-in at <code>http://127.0.0.1:${model.port}</code> on this computer.</p>
<p class="code">${escapeHtml(model.checkCode)}</p>
<p>Approve only if you just ran <code>postern login --browser</code> yourself and your terminal shows this same check code. If you followed a link someone sent you, choose Deny.</p>
<form method="post" action="/auth/cli/start">${csrf(model.csrf)}<input type="hidden" name="port" value="${model.port}">
<input type="hidden" name="state" value="${escapeHtml(model.state)}"><input type="hidden" name="code_challenge" value="${escapeHtml(model.challenge)}">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`;
    case 'done':
      return model.approved
        ? `<p>Approved: the command line is now signed in as <strong>${escapeHtml(model.email)}</strong>. You can close this page and return to your terminal.</p>`
        : '<p>Denied: the command line was not signed in. You can close this page.</p>';
    case 'problem':
      return `<p class="error" role="alert">${escapeHtml(model.message)}</p><p><a href="/device">Enter another code</a></p>`;
  }
}
