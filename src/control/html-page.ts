// The control host's server-rendered pages (sign-in, setup, invites, device approval, errors):
// one way to send them, with a Content-Security-Policy that allows exactly the page's own
// <style> blocks by their hashes, so no script and no injected style ever runs on them.
import { createHash } from 'node:crypto';
import type { FastifyReply } from 'fastify';

const STYLE_BLOCK = /<style>([\s\S]*?)<\/style>/g;

/**
 * The policy for `html`: nothing but its inline styles (by SHA-256) and same-origin images.
 * No `form-action`: sign-in forms continue through redirects to socket hosts and to the CLI's
 * loopback listener, which a form-action source list would block.
 */
export function pageCsp(html: string): string {
  const hashes = [...html.matchAll(STYLE_BLOCK)].map((m) => `'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`);
  return `default-src 'none'; style-src ${hashes.length ? hashes.join(' ') : "'none'"}; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'`;
}

/** Sends a server-rendered page: never cached, never framed, no referrer, and its own strict CSP. */
export function sendPage(reply: FastifyReply, html: string, status = 200): FastifyReply {
  return reply.code(status)
    .header('cache-control', 'no-store')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', pageCsp(html))
    .type('text/html; charset=utf-8')
    .send(html);
}
