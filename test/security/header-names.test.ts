// Header names: CGI, WSGI and PHP servers read `X_Auth_Email` and `X-Auth-Email` as one header
// (HTTP_X_AUTH_EMAIL) and merge them, so a client-sent spelling with `_` or odd case must never
// reach the upstream beside the edge's own identity headers. Postern's cookies stay Postern's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { curl } from '../helpers/https.js';
import type { WsgiEcho } from '../helpers/wsgi.js';
import { startEdgeFixture, USER } from './edge-fixture.js';
import type { EdgeFixture } from './edge-fixture.js';

const SPOOFED = [
  'X_Auth_Email: admin@corp.com', 'X-Auth_Email: admin@corp.com', 'x_auth-email: admin@corp.com', 'X-AUTH-EMAIL: admin@corp.com',
  'X_Auth_User: usr_admin', 'X_Auth_Groups: admins', 'x-auth_groups: admins', 'X_Postern_Jwt_Assertion: forged.jwt.value',
  'X_Forwarded_For: 6.6.6.6', 'X-Forwarded_Host: evil.example', 'X_Real_IP: 6.6.6.6', 'Forwarded: for=6.6.6.6', 'Postern_Socket: other',
];

describe('security: identity header names and cookies', () => {
  let f: EdgeFixture;

  before(async () => {
    f = await startEdgeFixture();
  });

  after(async () => {
    await f?.close();
  });

  const echo = async (socket: string, extra: readonly string[]) => {
    const cookie = await f.cookieFor(socket);
    const args = ['-sS', '-H', `Cookie: ${cookie}; theme=dark`, ...extra.flatMap((h) => ['-H', h]), `https://${socket}.localhost:${f.server.port}/whoami`];
    const result = await curl(args, { caFile: f.server.caFile });
    assert.equal(result.code, 0, result.stderr);
    return result.stdout;
  };

  test('wsgiref sees only the edge\'s identity, whatever spelling the client used', async () => {
    const seen = JSON.parse(await echo('wsgi', SPOOFED)) as WsgiEcho;
    assert.equal(seen.environ.HTTP_X_AUTH_EMAIL, USER);
    assert.match(seen.environ.HTTP_X_AUTH_USER ?? '', /^usr_/);
    assert.equal(seen.environ.HTTP_X_AUTH_GROUPS, '');
    assert.doesNotMatch(seen.environ.HTTP_X_POSTERN_JWT_ASSERTION ?? '', /forged/);
    assert.equal(seen.environ.HTTP_X_FORWARDED_FOR, '127.0.0.1');
    assert.equal(seen.environ.HTTP_X_REAL_IP, '127.0.0.1');
    assert.equal(seen.environ.HTTP_FORWARDED, undefined);
    assert.equal(seen.environ.HTTP_POSTERN_SOCKET, undefined);
    assert.doesNotMatch(JSON.stringify(seen.environ), /admin@corp\.com|6\.6\.6\.6|evil\.example|usr_admin/);
  });

  test('a Node upstream gets no header whose name folds to an identity header', async () => {
    const seen = JSON.parse(await echo('app', SPOOFED)) as { headers: Record<string, string> };
    const folded = Object.keys(seen.headers).map((name) => name.toLowerCase().replace(/_/g, '-'));
    for (const name of ['x-auth-email', 'x-auth-user', 'x-auth-groups', 'x-postern-jwt-assertion', 'x-forwarded-for', 'x-real-ip']) {
      assert.equal(folded.filter((n) => n === name).length, 1, `${name} once, from the edge`);
    }
    assert.equal(seen.headers['x-auth-email'], USER);
  });

  test('Postern\'s session cookie never reaches the upstream; the upstream\'s other cookies do', async () => {
    const wsgi = JSON.parse(await echo('wsgi', [])) as WsgiEcho;
    assert.equal(wsgi.environ.HTTP_COOKIE, 'theme=dark');
    const node = JSON.parse(await echo('app', ['Cookie: __Host-postern_csrf=x; lang=en'])) as { headers: Record<string, string> };
    assert.doesNotMatch(node.headers.cookie ?? '', /postern/i);
    assert.match(node.headers.cookie ?? '', /theme=dark/);
  });

  test('an upstream cannot plant or clear Postern\'s session cookie', async () => {
    const cookie = await f.cookieFor('app');
    const result = await curl(['-sS', '-D', '-', '-o', '/dev/null', '-H', `Cookie: ${cookie}`, `https://app.localhost:${f.server.port}/`], { caFile: f.server.caFile });
    assert.equal(result.code, 0, result.stderr);
    const setCookies = result.stdout.split('\r\n').filter((line) => /^set-cookie:/i.test(line));
    assert.deepEqual(setCookies.map((line) => line.replace(/^set-cookie:\s*/i, '')), ['app=1']);
  });
});
