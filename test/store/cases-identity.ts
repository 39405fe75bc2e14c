// Store suite cases for identity: users, sessions, session grants, hand-off codes, socket
// auth settings, the changes they record (or deliberately do not), and what snapshots hold.

import assert from 'node:assert/strict';
import { ChangeFeed, SnapshotCache, createSnapshot, loadSnapshot, noSocketAuth } from '../../src/store/index.js';
import type { NewSession, Store } from '../../src/store/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { MemoryLogger, inFuture, isoRe, rejectsWith } from './helpers.js';
import type { StoreCase } from './helpers.js';

/** [entity, entityId, op] of every change after `revision`. */
async function changesAfter(store: Store, revision: number): Promise<Array<[string, string, string]>> {
  return (await store.changesSince(revision, 10_000)).map((c) => [c.entity, c.entityId, c.op]);
}

function sessionInput(userId: string, secretHash: string, extra: Partial<NewSession> = {}): NewSession {
  return {
    userId,
    kind: 'browser',
    provider: 'local',
    clientIp: '192.0.2.7',
    userAgent: 'test-agent',
    secretHash,
    expiresAt: inFuture(),
    ...extra,
  };
}

async function userWithSession(store: Store, email: string, secretHash: string) {
  const user = await store.users.create({ email });
  const session = await store.sessions.create(sessionInput(user.id, secretHash));
  return { user, session };
}

const now = () => new Date().toISOString();

export const identityCases: Record<string, StoreCase> = {
  'users: create, get, list, find case-insensitively, update, delete, one change each': async ({ store }) => {
    const base = await store.currentRevision();
    const alice = await store.users.create({ email: '  Alice@Example.COM ', name: 'Alice', groups: ['ops', 'dev'], passwordHash: 'scrypt$x' });
    assert.match(alice.id, /^usr_[a-z2-7]{16}$/);
    assert.equal(alice.email, 'alice@example.com');
    assert.deepEqual(alice.groups, ['ops', 'dev']);
    assert.equal(alice.passwordHash, 'scrypt$x');
    assert.equal(alice.disabledAt, null);
    assert.match(alice.createdAt, isoRe);
    assert.equal(alice.updatedAt, alice.createdAt);
    assert.deepEqual(await store.users.get(alice.id), alice);
    assert.deepEqual(await store.users.findByEmail('ALICE@example.com'), alice);
    assert.deepEqual(await store.users.findByEmail(' alice@EXAMPLE.com  '), alice);
    assert.equal(await store.users.findByEmail('bob@example.com'), undefined);
    assert.equal(await store.users.get('usr_missing'), undefined);

    const bob = await store.users.create({ email: 'bob@example.com' });
    assert.deepEqual([bob.name, bob.groups, bob.passwordHash], ['', [], null]);
    assert.deepEqual((await store.users.list()).map((u) => u.email), ['alice@example.com', 'bob@example.com']);
    assert.deepEqual((await store.users.list({ limit: 1 })).map((u) => u.email), ['alice@example.com'], 'a page, by email');
    assert.deepEqual((await store.users.list({ after: 'alice@example.com', limit: 5 })).map((u) => u.email), ['bob@example.com']);

    const renamed = await store.users.update(alice.id, { name: 'Alice A.', groups: ['ops'] });
    assert.equal(renamed.name, 'Alice A.');
    assert.deepEqual(renamed.groups, ['ops']);
    assert.equal(renamed.passwordHash, 'scrypt$x', 'untouched fields are kept');
    assert.ok(renamed.updatedAt >= alice.updatedAt);
    assert.deepEqual(await store.users.get(alice.id), renamed);
    const disabled = await store.users.update(alice.id, { disabledAt: '2030-01-01T00:00:00Z', passwordHash: null });
    assert.equal(disabled.disabledAt, '2030-01-01T00:00:00.000Z');
    assert.equal(disabled.passwordHash, null);
    assert.equal(disabled.name, 'Alice A.');
    const enabled = await store.users.update(alice.id, { disabledAt: null });
    assert.equal(enabled.disabledAt, null);
    assert.deepEqual(await store.users.get(alice.id), enabled);

    await store.users.delete(bob.id);
    assert.equal(await store.users.get(bob.id), undefined);
    await rejectsWith(store.users.delete(bob.id), 'not_found');
    await rejectsWith(store.users.update(bob.id, { name: 'x' }), 'not_found', /not found/);

    assert.deepEqual(await changesAfter(store, base), [
      ['user', alice.id, 'create'],
      ['user', bob.id, 'create'],
      ['user', alice.id, 'update'],
      ['user', alice.id, 'update'],
      ['user', alice.id, 'update'],
      ['user', bob.id, 'delete'],
    ]);
  },

  'users: duplicate email is a conflict in any case, also when racing': async ({ store, openPeer }) => {
    await store.users.create({ email: 'carol@example.com' });
    const before = await store.currentRevision();
    await rejectsWith(store.users.create({ email: 'Carol@Example.com' }), 'conflict', /already exists/);
    await rejectsWith(store.users.create({ email: ' carol@example.com' }), 'conflict');
    assert.equal(await store.currentRevision(), before, 'a conflict records nothing');

    const peer = openPeer === undefined ? store : await openPeer();
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? store : peer).users.create({ email: i % 3 === 0 ? 'RACE@x.io' : 'race@x.io' })),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'conflict');
    }
    assert.equal((await store.users.list()).length, 2);
  },

  'users: invalid input is bad_request and records nothing': async ({ store }) => {
    const before = await store.currentRevision();
    for (const email of ['', '   ', 'no-at-sign', 'two@@example.com', 'a b@example.com', '@example.com', 'a@']) {
      await rejectsWith(store.users.create({ email }), 'bad_request', /e-mail/);
    }
    await rejectsWith(store.users.create({ email: 'x@y.z', groups: 'ops' as unknown as string[] }), 'bad_request');
    await rejectsWith(store.users.create({ email: 'x@y.z', groups: [1] as unknown as string[] }), 'bad_request');
    await rejectsWith(store.users.create({ email: 'x@y.z', passwordHash: '' }), 'bad_request');
    const u = await store.users.create({ email: 'x@y.z' });
    await rejectsWith(store.users.update(u.id, { disabledAt: 'soon' }), 'bad_request');
    await rejectsWith(store.users.update(u.id, { groups: [null] as unknown as string[] }), 'bad_request');
    assert.equal((await store.changesSince(before)).length, 1);
  },

  'users: delete revokes the user\'s sessions in the same transaction, one change': async ({ store }) => {
    const { user, session } = await userWithSession(store, 'dave@example.com', 'd1');
    const second = await store.sessions.create(sessionInput(user.id, 'd2', { kind: 'cli' }));
    await store.sessions.revoke(second.id, '2030-01-01T00:00:00Z');
    const other = await userWithSession(store, 'erin@example.com', 'e1');
    const before = await store.currentRevision();

    await store.users.delete(user.id);
    assert.deepEqual(await changesAfter(store, before), [['user', user.id, 'delete']]);
    const revoked = await store.sessions.get(session.id);
    assert.match(revoked?.revokedAt ?? '', isoRe);
    assert.equal((await store.sessions.get(second.id))?.revokedAt, '2030-01-01T00:00:00.000Z', 'an earlier revocation is kept');
    assert.equal((await store.sessions.get(other.session.id))?.revokedAt, null, 'other users are untouched');
    await rejectsWith(store.sessions.create(sessionInput(user.id, 'd3')), 'not_found');
  },

  'sessions: create, get, find, list by user; touch records no change': async ({ store }) => {
    const { user, session } = await userWithSession(store, 'frank@example.com', 'f1');
    assert.match(session.id, /^ses_[a-z2-7]{16}$/);
    assert.equal(session.userId, user.id);
    assert.equal(session.kind, 'browser');
    assert.equal(session.provider, 'local');
    assert.equal(session.clientIp, '192.0.2.7');
    assert.equal(session.userAgent, 'test-agent');
    assert.equal(session.secretHash, 'f1');
    assert.match(session.createdAt, isoRe);
    assert.equal(session.lastSeenAt, session.createdAt);
    assert.match(session.expiresAt, isoRe);
    assert.equal(session.revokedAt, null);
    assert.deepEqual(await store.sessions.get(session.id), session);
    assert.deepEqual(await store.sessions.findBySecretHash('f1'), session);
    assert.equal(await store.sessions.findBySecretHash('nope'), undefined);
    assert.equal(await store.sessions.get('ses_missing'), undefined);

    const cli = await store.sessions.create(sessionInput(user.id, 'f2', { kind: 'cli', provider: 'okta', expiresAt: '2040-01-01T00:00:00Z' }));
    assert.equal(cli.expiresAt, '2040-01-01T00:00:00.000Z');
    const other = await userWithSession(store, 'gina@example.com', 'g1');
    assert.deepEqual((await store.sessions.list({ userId: user.id })).map((s) => s.id).sort(), [session.id, cli.id].sort());
    assert.equal((await store.sessions.list()).length, 3);
    assert.deepEqual(await store.sessions.list({ userId: 'usr_nobody' }), []);

    const before = await store.currentRevision();
    let notified = 0;
    const off = store.onLocalChange(() => notified++);
    await store.sessions.touch(session.id, '2035-01-01T00:00:00Z');
    assert.equal((await store.sessions.get(session.id))?.lastSeenAt, '2035-01-01T00:00:00.000Z');
    await store.sessions.touch(session.id, '2034-01-01T00:00:00Z');
    assert.equal((await store.sessions.get(session.id))?.lastSeenAt, '2035-01-01T00:00:00.000Z', 'never moves back');
    await store.sessions.touch(session.id, '2035-01-01T00:00:00Z');
    off();
    assert.equal(await store.currentRevision(), before, 'touch records no change');
    assert.equal(notified, 0, 'touch wakes no feed');
    assert.equal((await store.sessions.get(other.session.id))?.lastSeenAt, other.session.lastSeenAt);
    await rejectsWith(store.sessions.touch('ses_missing', now()), 'not_found');
    await rejectsWith(store.sessions.touch(session.id, 'later'), 'bad_request');
  },

  'sessions: create checks user, kind, expiry and secret; one change': async ({ store }) => {
    const user = await store.users.create({ email: 'hank@example.com' });
    const before = await store.currentRevision();
    await rejectsWith(store.sessions.create(sessionInput('usr_missing', 'h0')), 'not_found');
    await rejectsWith(store.sessions.create(sessionInput(user.id, 'h0', { kind: 'robot' as 'cli' })), 'bad_request');
    await rejectsWith(store.sessions.create(sessionInput(user.id, 'h0', { expiresAt: 'never' })), 'bad_request');
    await rejectsWith(store.sessions.create(sessionInput(user.id, '')), 'bad_request');
    await rejectsWith(store.sessions.create(sessionInput(user.id, 'h0', { provider: '' })), 'bad_request');
    assert.equal(await store.currentRevision(), before);

    const s = await store.sessions.create(sessionInput(user.id, 'h1'));
    assert.deepEqual(await changesAfter(store, before), [['session', s.id, 'create']]);
    await rejectsWith(store.sessions.create(sessionInput(user.id, 'h1')), 'conflict');

    await store.users.update(user.id, { disabledAt: now() });
    await rejectsWith(store.sessions.create(sessionInput(user.id, 'h2')), 'forbidden', /disabled/);
    assert.equal((await store.sessions.list({ userId: user.id })).length, 1);
  },

  'sessions: revoke is idempotent (first time kept, one change), not_found when absent': async ({ store }) => {
    const { session } = await userWithSession(store, 'ivy@example.com', 'i1');
    const before = await store.currentRevision();
    await store.sessions.revoke(session.id, '2030-01-03T00:00:00Z');
    await store.sessions.revoke(session.id, '2030-02-01T00:00:00Z');
    assert.equal((await store.sessions.get(session.id))?.revokedAt, '2030-01-03T00:00:00.000Z');
    assert.deepEqual(await changesAfter(store, before), [['session', session.id, 'update']]);
    await rejectsWith(store.sessions.revoke('ses_missing', now()), 'not_found');
    await rejectsWith(store.sessions.revoke(session.id, 'nope'), 'bad_request');
  },

  'sessions: revokeAllForUser revokes that user\'s live sessions, one change per session': async ({ store }) => {
    const { user, session: s1 } = await userWithSession(store, 'jack@example.com', 'j1');
    const s2 = await store.sessions.create(sessionInput(user.id, 'j2', { kind: 'cli' }));
    const s3 = await store.sessions.create(sessionInput(user.id, 'j3'));
    await store.sessions.revoke(s3.id, '2030-01-01T00:00:00Z');
    const other = await userWithSession(store, 'kate@example.com', 'k1');
    const before = await store.currentRevision();

    assert.equal(await store.sessions.revokeAllForUser(user.id, '2031-01-01T00:00:00Z'), 2);
    const changes = await changesAfter(store, before);
    assert.deepEqual(changes.sort(), [['session', s1.id, 'update'], ['session', s2.id, 'update']].sort());
    for (const id of [s1.id, s2.id]) assert.equal((await store.sessions.get(id))?.revokedAt, '2031-01-01T00:00:00.000Z');
    assert.equal((await store.sessions.get(s3.id))?.revokedAt, '2030-01-01T00:00:00.000Z');
    assert.equal((await store.sessions.get(other.session.id))?.revokedAt, null);

    const after = await store.currentRevision();
    assert.equal(await store.sessions.revokeAllForUser(user.id, '2032-01-01T00:00:00Z'), 0);
    assert.equal(await store.sessions.revokeAllForUser('usr_nobody', '2032-01-01T00:00:00Z'), 0);
    assert.equal(await store.currentRevision(), after, 'nothing revoked, nothing recorded');
    await rejectsWith(store.sessions.revokeAllForUser(user.id, 'x'), 'bad_request');
  },

  'session grants: create, list, find; session checked; conflict; one change': async ({ store }) => {
    const { user, session } = await userWithSession(store, 'leo@example.com', 'l1');
    const before = await store.currentRevision();
    const grant = await store.sessionGrants.create({ sessionId: session.id, socket: 'grafana', secretHash: 'g-1' });
    assert.match(grant.id, /^sg_[a-z2-7]{16}$/);
    assert.deepEqual([grant.sessionId, grant.socket, grant.secretHash], [session.id, 'grafana', 'g-1']);
    assert.match(grant.createdAt, isoRe);
    assert.deepEqual(await changesAfter(store, before), [['session_grant', grant.id, 'create']]);
    assert.deepEqual(await store.sessionGrants.findBySecretHash('g-1'), grant);
    assert.equal(await store.sessionGrants.findBySecretHash('g-x'), undefined);

    const mid = await store.currentRevision();
    await rejectsWith(store.sessionGrants.create({ sessionId: session.id, socket: 'other', secretHash: 'g-1' }), 'conflict');
    await rejectsWith(store.sessionGrants.create({ sessionId: 'ses_missing', socket: 'grafana', secretHash: 'g-2' }), 'not_found');
    await rejectsWith(store.sessionGrants.create({ sessionId: session.id, socket: 'Bad.Name', secretHash: 'g-2' }), 'bad_request');
    const revoked = await store.sessions.create(sessionInput(user.id, 'l2'));
    await store.sessions.revoke(revoked.id, now());
    const mid2 = await store.currentRevision();
    await rejectsWith(store.sessionGrants.create({ sessionId: revoked.id, socket: 'grafana', secretHash: 'g-3' }), 'unauthenticated');
    assert.equal(await store.currentRevision(), mid2);
    assert.ok(mid2 > mid);

    const second = await store.sessionGrants.create({ sessionId: session.id, socket: 'wiki', secretHash: 'g-4' });
    assert.deepEqual((await store.sessionGrants.list()).map((g) => g.id).sort(), [grant.id, second.id].sort());
  },

  'handoff codes: consume once; invalid, used, expired, wrong socket; no changes': async ({ store }) => {
    const { session } = await userWithSession(store, 'mia@example.com', 'm1');
    const before = await store.currentRevision();
    let notified = 0;
    const off = store.onLocalChange(() => notified++);

    const code = await store.handoffCodes.create({ codeHash: 'c1', sessionId: session.id, socket: 'grafana', returnTo: '/d?x=1', expiresAt: inFuture(60_000) });
    assert.deepEqual([code.codeHash, code.sessionId, code.socket, code.returnTo, code.usedAt], ['c1', session.id, 'grafana', '/d?x=1', null]);
    assert.match(code.expiresAt, isoRe);
    await rejectsWith(store.handoffCodes.create({ codeHash: 'c1', sessionId: session.id, socket: 'grafana', returnTo: '/', expiresAt: inFuture() }), 'conflict');
    await rejectsWith(store.handoffCodes.create({ codeHash: 'c9', sessionId: 'ses_missing', socket: 'grafana', returnTo: '/', expiresAt: inFuture() }), 'not_found');
    await rejectsWith(store.handoffCodes.create({ codeHash: 'c9', sessionId: session.id, socket: 'grafana', returnTo: '/', expiresAt: 'x' }), 'bad_request');
    await rejectsWith(store.handoffCodes.create({ codeHash: 'c9', sessionId: session.id, socket: '-bad', returnTo: '/', expiresAt: inFuture() }), 'bad_request');

    const at = now();
    await rejectsWith(store.handoffCodes.consume('c1', 'wiki', at), 'token_invalid', /not valid/);
    await rejectsWith(store.handoffCodes.consume('unknown', 'grafana', at), 'token_invalid');
    const used = await store.handoffCodes.consume('c1', 'grafana', at);
    assert.deepEqual(used, { ...code, usedAt: at });
    await rejectsWith(store.handoffCodes.consume('c1', 'grafana', at), 'token_used', /already been used/);
    await rejectsWith(store.handoffCodes.consume('c1', 'wiki', at), 'token_invalid');

    await store.handoffCodes.create({ codeHash: 'c2', sessionId: session.id, socket: 'grafana', returnTo: '/', expiresAt: new Date(Date.now() - 1000).toISOString() });
    await rejectsWith(store.handoffCodes.consume('c2', 'grafana', now()), 'token_expired', /expired/);
    const edge = await store.handoffCodes.create({ codeHash: 'c3', sessionId: session.id, socket: 'grafana', returnTo: '/', expiresAt: inFuture() });
    await rejectsWith(store.handoffCodes.consume('c3', 'grafana', edge.expiresAt), 'token_expired');
    await rejectsWith(store.handoffCodes.consume('c3', 'grafana', 'whenever'), 'bad_request');
    // The expired code is still unused, and the wrong-socket attempt did not burn c3 either.
    assert.equal((await store.handoffCodes.consume('c3', 'grafana', now())).codeHash, 'c3');

    off();
    assert.equal(await store.currentRevision(), before, 'hand-off codes record no change');
    assert.equal(notified, 0);
  },

  'handoff codes: long-expired codes are pruned when a new one is created': async ({ store }) => {
    const { session } = await userWithSession(store, 'nia@example.com', 'n1');
    const longAgo = new Date(Date.now() - 3 * 24 * 3_600_000).toISOString();
    await store.handoffCodes.create({ codeHash: 'old', sessionId: session.id, socket: 'grafana', returnTo: '/', expiresAt: longAgo });
    await rejectsWith(store.handoffCodes.consume('old', 'grafana', now()), 'token_expired');
    await store.handoffCodes.create({ codeHash: 'new', sessionId: session.id, socket: 'grafana', returnTo: '/', expiresAt: inFuture() });
    await rejectsWith(store.handoffCodes.consume('old', 'grafana', now()), 'token_invalid');
    // Codes that expired recently are kept (a late exchange still reads token_expired).
    await store.handoffCodes.create({ codeHash: 'recent', sessionId: session.id, socket: 'grafana', returnTo: '/', expiresAt: new Date(Date.now() - 60_000).toISOString() });
    await store.handoffCodes.create({ codeHash: 'newer', sessionId: session.id, socket: 'grafana', returnTo: '/', expiresAt: inFuture() });
    await rejectsWith(store.handoffCodes.consume('recent', 'grafana', now()), 'token_expired');
  },

  'handoff codes: concurrent consume, only one wins': async ({ store, openPeer }) => {
    const peer = openPeer === undefined ? store : await openPeer();
    const { session } = await userWithSession(store, 'olga@example.com', 'o1');
    for (let round = 0; round < 5; round++) {
      const hash = `race-${round}`;
      await store.handoffCodes.create({ codeHash: hash, sessionId: session.id, socket: 'grafana', returnTo: `/r${round}`, expiresAt: inFuture() });
      const at = now();
      const results = await Promise.allSettled([
        store.handoffCodes.consume(hash, 'grafana', at),
        peer.handoffCodes.consume(hash, 'grafana', at),
        store.handoffCodes.consume(hash, 'grafana', at),
        peer.handoffCodes.consume(hash, 'grafana', at),
      ]);
      const winners = results.filter((r) => r.status === 'fulfilled');
      assert.equal(winners.length, 1, `round ${round}: exactly one consumer wins`);
      for (const r of results) {
        if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'token_used');
      }
    }
  },

  'sockets: auth defaults to noSocketAuth, round-trips normalized, validated': async ({ store }) => {
    const plain = await store.sockets.create({ name: 'plain', type: 'http' });
    assert.deepEqual(plain.auth, noSocketAuth);
    assert.deepEqual((await store.sockets.get('plain'))?.auth, noSocketAuth);

    const guarded = await store.sockets.create({
      name: 'guarded',
      type: 'https',
      auth: { cloudauth: true, allowedEmailDomains: [' Example.COM', 'corp.example.org', 'example.com'], allowedEmailAddresses: ['Boss@Partner.IO '] },
    });
    const expected = { cloudauth: true, allowedEmailDomains: ['example.com', 'corp.example.org'], allowedEmailAddresses: ['boss@partner.io'] };
    assert.deepEqual(guarded.auth, expected);
    assert.deepEqual((await store.sockets.get('guarded'))?.auth, expected);
    assert.deepEqual((await store.sockets.list()).find((s) => s.name === 'guarded')?.auth, expected);

    const untouched = await store.sockets.update('guarded', { description: 'x' });
    assert.deepEqual(untouched.auth, expected, 'an update without auth keeps it');
    const opened = await store.sockets.update('guarded', { auth: noSocketAuth });
    assert.deepEqual(opened.auth, noSocketAuth);
    assert.deepEqual((await store.sockets.get('guarded'))?.auth, noSocketAuth);
    const closed = await store.sockets.update('plain', { auth: { cloudauth: true, allowedEmailDomains: [], allowedEmailAddresses: [] } });
    assert.equal(closed.auth.cloudauth, true);
    assert.equal((await store.sockets.get('plain'))?.auth.cloudauth, true);

    const before = await store.currentRevision();
    const bad: unknown[] = [
      null,
      [],
      { cloudauth: 'yes', allowedEmailDomains: [], allowedEmailAddresses: [] },
      { cloudauth: true, allowedEmailDomains: 'example.com', allowedEmailAddresses: [] },
      { cloudauth: true, allowedEmailDomains: [42], allowedEmailAddresses: [] },
      { cloudauth: true, allowedEmailDomains: ['@example.com'], allowedEmailAddresses: [] },
      { cloudauth: true, allowedEmailDomains: ['exa mple.com'], allowedEmailAddresses: [] },
      { cloudauth: true, allowedEmailDomains: ['-x.com'], allowedEmailAddresses: [] },
      { cloudauth: true, allowedEmailDomains: [''], allowedEmailAddresses: [] },
      { cloudauth: true, allowedEmailDomains: [], allowedEmailAddresses: ['not-an-address'] },
      { cloudauth: true, allowedEmailDomains: [], allowedEmailAddresses: ['a@b@c'] },
    ];
    for (const auth of bad) {
      await rejectsWith(store.sockets.create({ name: 'bad', type: 'http', auth: auth as typeof noSocketAuth }), 'bad_request', /auth/);
      await rejectsWith(store.sockets.update('plain', { auth: auth as typeof noSocketAuth }), 'bad_request', /auth/);
    }
    assert.equal(await store.currentRevision(), before, 'invalid auth records nothing');
    assert.equal(await store.sockets.get('bad'), undefined);
  },

  'snapshot: users, live sessions and their grants; revoked sessions and their grants are dropped': async ({ store }) => {
    await store.sockets.create({ name: 'grafana', type: 'http', auth: { cloudauth: true, allowedEmailDomains: ['example.com'], allowedEmailAddresses: [] } });
    const { user, session: live } = await userWithSession(store, 'pat@example.com', 'p-live');
    const doomed = await store.sessions.create(sessionInput(user.id, 'p-doomed'));
    const expired = await store.sessions.create(sessionInput(user.id, 'p-expired', { expiresAt: '2001-01-01T00:00:00Z' }));
    const liveGrant = await store.sessionGrants.create({ sessionId: live.id, socket: 'grafana', secretHash: 'sg-live' });
    await store.sessionGrants.create({ sessionId: doomed.id, socket: 'grafana', secretHash: 'sg-doomed' });
    const disabled = await store.users.create({ email: 'quin@example.com', groups: ['a'] });
    await store.users.update(disabled.id, { disabledAt: now() });

    const feed = new ChangeFeed(store, { pollIntervalMs: 50, clock: new FakeClock(), logger: new MemoryLogger() });
    const cache = new SnapshotCache(store, feed, { clock: new FakeClock(), logger: new MemoryLogger() });
    await feed.start();
    const first = await cache.start();
    assert.equal(first.revision, await store.currentRevision());
    assert.deepEqual(first.sockets.get('grafana')?.auth, { cloudauth: true, allowedEmailDomains: ['example.com'], allowedEmailAddresses: [] });
    assert.ok(Object.isFrozen(first.sockets.get('grafana')?.auth));
    assert.ok(Object.isFrozen(first.sockets.get('grafana')?.auth.allowedEmailDomains));
    assert.deepEqual([...first.users.keys()].sort(), [user.id, disabled.id].sort());
    assert.equal(first.users.get(user.id)?.email, 'pat@example.com');
    assert.match(first.users.get(disabled.id)?.disabledAt ?? '', isoRe, 'disabled users are there for the reader to check');
    assert.ok(Object.isFrozen(first.users.get(disabled.id)?.groups));
    assert.deepEqual([...first.sessionsById.keys()].sort(), [live.id, doomed.id, expired.id].sort(), 'expired sessions may stay');
    assert.equal(first.sessionsBySecret.get('p-live')?.id, live.id);
    assert.equal(first.sessionsBySecret.get('p-expired')?.id, expired.id);
    assert.deepEqual([...first.grantsBySecret.keys()].sort(), ['sg-doomed', 'sg-live']);
    assert.deepEqual(first.grantsBySecret.get('sg-live'), liveGrant);
    assert.ok(Object.isFrozen(first.sessionsById.get(live.id)));

    await store.sessions.revoke(doomed.id, now());
    const afterRevoke = await cache.waitForRevision(await store.currentRevision());
    assert.equal(afterRevoke.sessionsById.has(doomed.id), false);
    assert.equal(afterRevoke.sessionsBySecret.has('p-doomed'), false);
    assert.equal(afterRevoke.grantsBySecret.has('sg-doomed'), false, 'a revoked session takes its grants with it');
    assert.ok(afterRevoke.grantsBySecret.has('sg-live'));
    assert.ok(first.grantsBySecret.has('sg-doomed'), 'the old snapshot is untouched');

    await store.users.delete(user.id);
    const afterDelete = await cache.waitForRevision(await store.currentRevision());
    assert.equal(afterDelete.users.has(user.id), false);
    assert.equal(afterDelete.sessionsById.size, 0, 'deleting the user revoked its sessions');
    assert.equal(afterDelete.grantsBySecret.size, 0);
    cache.stop();
    await feed.stop();

    const direct = await loadSnapshot(store);
    assert.equal(direct.revision, afterDelete.revision);
    assert.deepEqual([...direct.users.keys()], [disabled.id]);
  },

  'snapshot: createSnapshot keeps its old call forms and filters what it is given': async ({ store }) => {
    const legacy = createSnapshot(3, [], [], '2030-01-01T00:00:00.000Z');
    assert.equal(legacy.loadedAt, '2030-01-01T00:00:00.000Z');
    assert.deepEqual([legacy.users.size, legacy.sessionsById.size, legacy.sessionsBySecret.size, legacy.grantsBySecret.size], [0, 0, 0, 0]);
    assert.match(createSnapshot(1, [], []).loadedAt, isoRe);

    const { user, session } = await userWithSession(store, 'rae@example.com', 'r1');
    const gone = await store.sessions.create(sessionInput(user.id, 'r2'));
    await store.sessions.revoke(gone.id, now());
    await store.sessionGrants.create({ sessionId: session.id, socket: 'a', secretHash: 'ga' });
    const orphan = { id: 'sg_orphan', sessionId: 'ses_unknown', socket: 'a', secretHash: 'gx', createdAt: now() };
    const snap = createSnapshot(9, [], [], {
      users: await store.users.list(),
      sessions: await store.sessions.list(),
      grants: [...(await store.sessionGrants.list()), orphan],
    });
    assert.match(snap.loadedAt, isoRe);
    assert.deepEqual([...snap.sessionsById.keys()], [session.id]);
    assert.deepEqual([...snap.grantsBySecret.keys()], ['ga']);
    assert.equal(snap.users.get(user.id)?.email, 'rae@example.com');
  },
};
