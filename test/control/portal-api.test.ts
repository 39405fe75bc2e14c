// The user portal's API on a real server: a person's apps are exactly the sockets the policies
// (and allow-lists) let them reach, with links or commands; their own sign-ins are listed with
// the current one marked, and they can end their own but not someone else's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api, httpsFetch, takeCookies } from '../helpers/https.js';
import type { HttpsResponse } from '../helpers/https.js';
import type { AppList, MySessionList } from '../../src/control/portal-types.js';
import type { MeView } from '../../src/control/dashboard-types.js';
import { commandsFor } from '../../src/control/portal-api.js';

const PASSWORD = 'portal: correct horse battery staple';

/** A browser's cookies for the control host and its CSRF token. */
class Browser {
  readonly cookies = new Map<string, string>();
  csrf = '';

  constructor(private readonly server: ServerHandle) {}

  async fetch(path: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<HttpsResponse> {
    const body = init.form ? new URLSearchParams(init.form).toString() : undefined;
    const res = await httpsFetch({
      port: this.server.port, ca: this.server.caPem, path, method: init.method ?? 'GET',
      headers: {
        accept: 'application/json',
        ...(this.cookies.size ? { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } : {}),
        ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...(init.method && init.method !== 'GET' ? { 'x-csrf-token': this.csrf, origin: this.server.url } : {}),
        ...init.headers,
      },
      ...(body !== undefined ? { body } : {}),
    });
    return takeCookies(this.cookies, res);
  }

  static async signIn(server: ServerHandle, email: string): Promise<Browser> {
    const browser = new Browser(server);
    const form = await browser.fetch('/auth/login', { headers: { accept: 'text/html' } });
    const csrf = /name="csrf" value="([^"]*)"/.exec(form.text)?.[1];
    assert.ok(csrf, form.text);
    const posted = await browser.fetch('/auth/login', { method: 'POST', form: { csrf, email, password: PASSWORD } });
    assert.equal(posted.status, 303, posted.text);
    const me = await browser.fetch('/api/v1/me');
    assert.equal(me.status, 200, me.text);
    browser.csrf = me.json<MeView>().csrf ?? '';
    return browser;
  }
}

async function ok(res: Promise<HttpsResponse>, status = 200): Promise<HttpsResponse> {
  const done = await res;
  assert.equal(done.status, status, done.text);
  return done;
}

test('commands: a tls socket offers a local port, and SSH only where the policy names logins', () => {
  assert.deepEqual(commandsFor('tls', 'db.localhost', []).map((c) => c.command), ['postern client tls --host db.localhost --listen 127.0.0.1:5433']);
  assert.deepEqual(commandsFor('tls', 'box.localhost', ['ops']).map((c) => c.command), [
    'postern client tls --host box.localhost --listen 127.0.0.1:5433', 'postern client ssh-config >> ~/.ssh/config', 'ssh ops@box.localhost',
  ]);
  assert.deepEqual(commandsFor('ssh', 'prod.localhost', []).map((c) => c.command), ['postern client ssh-config >> ~/.ssh/config', 'ssh $USER@prod.localhost']);
  assert.deepEqual(commandsFor('postgres', 'orders.localhost', []).map((c) => c.command), ['postern client db --host orders.localhost --listen 127.0.0.1:5433']);
  assert.deepEqual(commandsFor('http', 'wiki.localhost', ['x']), []);
});

describe('the user portal API', () => {
  let server: ServerHandle;

  before(async () => {
    server = await startServer();
    await ok(api(server, '/api/v1/users', { method: 'POST', body: { email: 'ana@corp.example', password: PASSWORD, groups: ['support'] } }), 201);
    await ok(api(server, '/api/v1/users', { method: 'POST', body: { email: 'bo@corp.example', password: PASSWORD } }), 201);
    const sockets = [
      { name: 'grafana', type: 'http', upstream: 'http://127.0.0.1:9', cloudauth: true, allowed_email_addresses: ['bo@corp.example'] },
      { name: 'wiki', type: 'http', upstream: 'http://127.0.0.1:9', cloudauth: true },
      { name: 'blog', type: 'http', upstream: 'http://127.0.0.1:9' },
      { name: 'prod', type: 'ssh', upstream: 'tcp://127.0.0.1:22' },
      { name: 'db', type: 'tls', upstream: 'tcp://127.0.0.1:5432', allowed_email_domains: ['elsewhere.example'] },
      { name: 'docs', type: 'http', upstream: 'http://127.0.0.1:9', cloudauth: true, allowed_email_addresses: ['nobody@corp.example'] },
    ];
    for (const socket of sockets) await ok(api(server, '/api/v1/sockets', { method: 'POST', body: socket }), 201);
    // support may use prod as `support`; docs only under /handbook/* for support.
    const policies = [
      'name: prod-ssh\nsockets: [prod]\nrules:\n  - effect: allow\n    who: { group: [support] }\n    what: { ssh: { logins: [support], shell: true } }\n',
      'name: handbook\nsockets: [docs]\nrules:\n  - effect: allow\n    who: { group: [support] }\n    what: { http: { paths: ["/handbook/*"] } }\n',
    ];
    for (const text of policies) await ok(api(server, '/api/v1/policies', { method: 'PUT', body: { text } }));
  });

  after(async () => {
    await cleanupAll();
  });

  test('a person sees exactly the sockets policy allows them, with links and commands', async () => {
    const ana = await Browser.signIn(server, 'ana@corp.example');
    const { apps } = (await ok(ana.fetch('/api/v1/me/apps'))).json<AppList>();
    assert.deepEqual(apps.map((a) => a.name), ['blog', 'docs', 'prod', 'wiki']);
    const byName = new Map(apps.map((a) => [a.name, a]));
    assert.equal(byName.get('blog')!.access, 'public');
    assert.match(byName.get('wiki')!.url!, /^https:\/\/wiki\.localhost:\d+\/$/);
    const prod = byName.get('prod')!;
    assert.deepEqual(prod.logins, ['support']);
    assert.equal(prod.terminal, '/terminal/prod');
    assert.deepEqual(prod.commands.map((c) => c.command), ['postern client ssh-config >> ~/.ssh/config', 'ssh support@prod.localhost']);

    const bo = await Browser.signIn(server, 'bo@corp.example');
    const boApps = (await ok(bo.fetch('/api/v1/me/apps'))).json<AppList>().apps;
    assert.deepEqual(boApps.map((a) => a.name), ['blog', 'grafana', 'wiki'], 'no ssh login, not the handbook group, db is for another domain');

    const paged = (await ok(ana.fetch('/api/v1/me/apps?limit=2'))).json<AppList>();
    assert.deepEqual(paged.apps.map((a) => a.name), ['blog', 'docs']);
    const rest = (await ok(ana.fetch(`/api/v1/me/apps?after=${paged.next!}`))).json<AppList>();
    assert.deepEqual(rest.apps.map((a) => a.name), ['prod', 'wiki']);
    assert.equal(rest.next, undefined);

    // A policy change shows at once: the group loses prod.
    await ok(api(server, '/api/v1/policies/prod-ssh', { method: 'DELETE' }), 204);
    assert.deepEqual((await ok(ana.fetch('/api/v1/me/apps'))).json<AppList>().apps.map((a) => a.name), ['blog', 'docs', 'wiki']);
  });

  test('a person lists and ends their own sign-ins, never someone else\'s', async () => {
    const first = await Browser.signIn(server, 'bo@corp.example');
    const second = await Browser.signIn(server, 'bo@corp.example');
    const other = await Browser.signIn(server, 'ana@corp.example');
    const listed = (await ok(second.fetch('/api/v1/me/sessions'))).json<MySessionList>().sessions;
    const current = listed.filter((s) => s.current);
    assert.equal(current.length, 1);
    assert.ok(listed.length >= 2);
    const firstId = listed.find((s) => !s.current)!.id;
    assert.ok(!('secretHash' in listed[0]!), 'no secrets leave the server');

    const anaSessions = (await ok(other.fetch('/api/v1/me/sessions'))).json<MySessionList>().sessions;
    assert.ok(anaSessions.every((s) => !listed.some((b) => b.id === s.id)), 'only one\'s own');
    const foreign = await other.fetch(`/api/v1/me/sessions/${firstId}`, { method: 'DELETE' });
    assert.equal(foreign.status, 404, foreign.text);
    assert.equal((await first.fetch('/api/v1/me')).status, 200, 'still signed in');
    assert.equal((await second.fetch(`/api/v1/me/sessions/${firstId}`, { method: 'DELETE', headers: { 'x-csrf-token': '' } })).status, 403, 'a change needs the CSRF header');

    // Ending every other sign-in of bo (earlier tests signed in too) leaves only this one.
    for (const session of listed.filter((s) => !s.current)) await ok(second.fetch(`/api/v1/me/sessions/${session.id}`, { method: 'DELETE' }), 204);
    assert.equal((await first.fetch('/api/v1/me')).status, 401, 'the other browser is signed out');
    assert.deepEqual((await ok(second.fetch('/api/v1/me/sessions'))).json<MySessionList>().sessions.map((s) => s.id), current.map((s) => s.id));

    const own = await ok(second.fetch(`/api/v1/me/sessions/${current[0]!.id}`, { method: 'DELETE' }), 204);
    assert.match(String(own.headers['set-cookie']), /Max-Age=0/);
    assert.equal((await second.fetch('/api/v1/me')).status, 401);
  });
});
