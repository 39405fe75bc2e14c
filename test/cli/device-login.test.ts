// Unit tests for CLI sign-in's pure parts: the polling loop (interval, slow_down, denial,
// expiry, network blips) with a fake clock, user-code normalizing, control-host return_to,
// and the credentials file (0600, keyed by server origin).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pollForToken } from '../../src/cli/cli-login.js';
import type { DeviceAuthorization, JsonReply, PostJson } from '../../src/cli/cli-login.js';
import { deleteLogin, loadLogin, saveLogin } from '../../src/cli/credentials.js';
import { normalizeUserCode } from '../../src/control/device-routes.js';
import { controlReturnTo } from '../../src/identity/redirects.js';
import { PosternError, isPosternError } from '../../src/errors.js';

const device: DeviceAuthorization = {
  device_code: 'pdc1_x', user_code: 'BDWP-HQPK', verification_uri: 'https://h/device', verification_uri_complete: 'https://h/device?user_code=BDWP-HQPK', expires_in: 60, interval: 5,
};

/** A fake clock the sleeps advance, and a server that answers from a script. */
function scripted(replies: (JsonReply | Error)[]) {
  let clock = 0;
  const polls: number[] = [];
  const post: PostJson = async () => {
    polls.push(clock);
    const next = replies.shift() ?? { status: 400, body: { error: 'authorization_pending' } };
    if (next instanceof Error) throw next;
    return next;
  };
  return { post, polls, options: { now: () => clock, sleep: async (ms: number) => void (clock += ms) } };
}

const error = (name: string): JsonReply => ({ status: 400, body: { error: name } });
const token: JsonReply = { status: 200, body: { access_token: 'pst1_t', token_type: 'Bearer', expires_in: 3600, session_id: 'ses_1', email: 'a@b.c' } };

test('polls every interval, adds 5 s on slow_down, keeps going through a network blip', async () => {
  const blip = new PosternError('store_unavailable', 'cannot reach', { retryable: true });
  const { post, polls, options } = scripted([error('authorization_pending'), error('slow_down'), blip, error('authorization_pending'), token]);
  const got = await pollForToken(post, device, options);
  assert.equal(got.access_token, 'pst1_t');
  assert.deepEqual(polls, [5000, 10_000, 20_000, 35_000, 50_000]);
});

test('denied and expired end the loop with a typed error; the deadline bounds it', async () => {
  await assert.rejects(pollForToken(scripted([error('access_denied')]).post, device, scripted([]).options), (err) => isPosternError(err, 'forbidden'));
  const expired = scripted([error('expired_token')]);
  await assert.rejects(pollForToken(expired.post, device, expired.options), (err) => isPosternError(err, 'token_expired'));
  const forever = scripted([]);
  await assert.rejects(pollForToken(forever.post, device, forever.options), /expired before it was approved/);
  assert.equal(forever.polls.length, 12, 'no poll past expires_in');
  const odd = scripted([{ status: 400, body: { error: 'invalid_grant', error_description: 'unknown device code' } }]);
  await assert.rejects(pollForToken(odd.post, device, odd.options), /unknown device code/);
});

test('user codes normalize to XXXX-XXXX over the consonant alphabet', () => {
  assert.equal(normalizeUserCode('bdwp-hqpk'), 'BDWP-HQPK');
  assert.equal(normalizeUserCode(' BDWP HQPK '), 'BDWP-HQPK');
  assert.equal(normalizeUserCode('BDWPHQPK'), 'BDWP-HQPK');
  for (const bad of ['BDWP-HQPA', 'BDWP-HQP', 'BDWP-HQPKK', '', 'loopback-0011223344556677', 12345678, undefined]) assert.equal(normalizeUserCode(bad), undefined, String(bad));
});

test('control-host return_to: only dashboard pages, /device and /auth/cli/start, only relative', () => {
  assert.equal(controlReturnTo('/'), '/');
  assert.equal(controlReturnTo('/sessions?user=ada%40corp.example'), '/sessions?user=ada%40corp.example', 'a deep link into the dashboard survives the sign-in');
  assert.equal(controlReturnTo('/recordings/abc'), '/recordings/abc');
  assert.equal(controlReturnTo('/device?user_code=BDWP-HQPK'), '/device?user_code=BDWP-HQPK');
  assert.equal(controlReturnTo('/auth/cli/start?port=5000&state=abc'), '/auth/cli/start?port=5000&state=abc');
  assert.equal(controlReturnTo('/x/../device'), '/device');
  for (const bad of ['https://evil.example/device', '//evil.example/device', '/\\evil.example/device', '/auth/login', '/api/v1/sockets', '/assets/index.js', '/setup', '/metrics', 'device', '/device#x\n', 42]) {
    assert.equal(controlReturnTo(bad), undefined, String(bad));
  }
});

test('credentials: 0600, keyed by server origin, deleted per server', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'postern-creds-'));
  try {
    const configDir = join(dir, 'nested', 'config');
    const login = { token: 'pst1_a', email: 'a@b.c', sessionId: 'ses_1', expiresAt: '2030-01-01T00:00:00.000Z', savedAt: '2029-01-01T00:00:00.000Z' };
    const path = saveLogin(configDir, 'https://LocalHost:8443/some/path', login);
    saveLogin(configDir, 'https://other.example', { ...login, token: 'pst1_b' });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(configDir)).mode & 0o777, 0o700);
    assert.deepEqual(loadLogin(configDir, 'https://localhost:8443'), login);
    assert.deepEqual(Object.keys((JSON.parse(await readFile(path, 'utf8')) as { servers: object }).servers), ['https://localhost:8443', 'https://other.example']);
    assert.equal(deleteLogin(configDir, 'https://localhost:8443/'), true);
    assert.equal(deleteLogin(configDir, 'https://localhost:8443/'), false);
    assert.equal(loadLogin(configDir, 'https://localhost:8443'), undefined);
    assert.equal(loadLogin(configDir, 'https://other.example')?.token, 'pst1_b');
    assert.equal(loadLogin(join(dir, 'missing'), 'https://x'), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
