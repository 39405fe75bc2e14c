// Turns an edge error into what the client asked for: problem+json for API clients, a short
// HTML page for browsers, plain text for curl. Each carries its stable code.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import type { ErrorCode } from '../errors.js';

export interface EdgeProblem {
  readonly status: number;
  readonly code: ErrorCode;
  readonly detail: string;
  /** A signed-in user was refused: where to sign out or switch accounts (src/edge/sign-out.ts). */
  readonly signOutPath?: string;
}

const titles: Partial<Record<ErrorCode, string>> = {
  socket_not_found: 'No such socket',
  connector_offline: 'The service is offline',
  upstream_unreachable: 'The service did not answer',
  upstream_timeout: 'The service took too long',
  tunnel_closed: 'The connection to the service was lost',
};

export function problemTitle(problem: EdgeProblem): string {
  return titles[problem.code] ?? STATUS_CODES[problem.status] ?? 'Error';
}

export function sendProblem(req: IncomingMessage, res: ServerResponse, problem: EdgeProblem): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const title = problemTitle(problem);
  const accept = String(req.headers.accept ?? '');
  let body: string;
  let type: string;
  if (accept.includes('text/html')) {
    type = 'text/html; charset=utf-8';
    body = `<!doctype html><html><head><meta charset="utf-8"><title>${problem.status} ${escapeHtml(title)} · Postern</title>`
      + '<style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#eee;padding:0 .3em}</style></head>'
      + `<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(problem.detail)}</p>`
      + (problem.signOutPath ? `<p><a href="${escapeHtml(problem.signOutPath)}">Sign out</a> · <a href="${escapeHtml(problem.signOutPath)}">Use another account</a></p>` : '')
      + `<p><small>HTTP ${problem.status} · <code>${problem.code}</code> · Postern edge</small></p></body></html>\n`;
  } else if (accept.includes('json')) {
    type = 'application/problem+json';
    body = JSON.stringify({ type: `https://postern.dev/errors/${problem.code}`, title, status: problem.status, detail: problem.detail, code: problem.code, ...(problem.signOutPath ? { sign_out: problem.signOutPath } : {}) }) + '\n';
  } else {
    type = 'text/plain; charset=utf-8';
    body = `${problem.status} ${title}: ${problem.detail} (${problem.code})\n${problem.signOutPath ? `Sign out or use another account: ${problem.signOutPath}\n` : ''}`;
  }
  res.writeHead(problem.status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', 'postern-error': problem.code });
  res.end(body);
}

/** For raw sockets (a failed WebSocket upgrade): a minimal HTTP/1.1 answer, then close. */
export function sendRawProblem(socket: Duplex, problem: EdgeProblem): void {
  const body = `${problem.status} ${problemTitle(problem)}: ${problem.detail} (${problem.code})\n`;
  socket.end(`HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? 'Error'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\npostern-error: ${problem.code}\r\nconnection: close\r\n\r\n${body}`);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
