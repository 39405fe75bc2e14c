// Login throttling: the sliding window, retry-after, reset on success, the key cap, and how
// client addresses group into keys; the sign-in throttle that counts before the password check.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPosternError } from '../../src/errors.js';
import { LoginRateLimiter, SignInThrottle, loginRateLimitKey, rateLimitedError } from '../../src/identity/rate-limit.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const at = (ms: number): Date => new Date(T0 + ms);

test('rate limit: the failure that fills the window blocks until the oldest one leaves it', () => {
  const limiter = new LoginRateLimiter({ maxFailures: 3, windowMs: 60_000 });
  const key = loginRateLimitKey('joe@corp.example', '203.0.113.7');
  assert.deepEqual(limiter.check(key, at(0)), { allowed: true, retryAfterMs: 0 });
  assert.equal(limiter.recordFailure(key, at(0)).allowed, true);
  assert.equal(limiter.recordFailure(key, at(10_000)).allowed, true);
  assert.deepEqual(limiter.recordFailure(key, at(20_000)), { allowed: false, retryAfterMs: 40_000 });
  assert.deepEqual(limiter.check(key, at(30_000)), { allowed: false, retryAfterMs: 30_000 });
  assert.deepEqual(limiter.check(key, at(59_999)), { allowed: false, retryAfterMs: 1 });
  assert.equal(limiter.check(key, at(60_000)).allowed, true, 'the first failure left the window');
  assert.equal(limiter.recordFailure(key, at(60_000)).allowed, false, 'two still inside, plus this one');
  assert.deepEqual(limiter.check(key, at(65_000)), { allowed: false, retryAfterMs: 5_000 });
});

test('rate limit: other keys are unaffected and a success resets the key', () => {
  const limiter = new LoginRateLimiter({ maxFailures: 2, windowMs: 60_000 });
  const joe = loginRateLimitKey('joe@corp.example', '203.0.113.7');
  const joeElsewhere = loginRateLimitKey('joe@corp.example', '198.51.100.1');
  const ann = loginRateLimitKey('ann@corp.example', '203.0.113.7');
  limiter.recordFailure(joe, at(0));
  limiter.recordFailure(joe, at(1));
  assert.equal(limiter.check(joe, at(2)).allowed, false);
  assert.equal(limiter.check(joeElsewhere, at(2)).allowed, true);
  assert.equal(limiter.check(ann, at(2)).allowed, true);
  limiter.reset(joe);
  assert.equal(limiter.check(joe, at(3)).allowed, true);
  assert.equal(limiter.size, 0);
});

test('rate limit: bounded; expired keys go first, then the idlest', () => {
  const limiter = new LoginRateLimiter({ maxFailures: 1, windowMs: 1_000, maxKeys: 3 });
  limiter.recordFailure('a', at(0));
  limiter.recordFailure('b', at(100));
  limiter.recordFailure('c', at(200));
  limiter.recordFailure('a', at(300)); // a is now the most recently failed
  limiter.recordFailure('d', at(400));
  assert.equal(limiter.size, 3);
  assert.equal(limiter.check('b', at(500)).allowed, true, 'b was idlest and evicted');
  assert.equal(limiter.check('a', at(500)).allowed, false);
  assert.equal(limiter.check('c', at(500)).allowed, false);
  assert.equal(limiter.check('d', at(500)).allowed, false);
  limiter.recordFailure('e', at(1_350));
  assert.equal(limiter.size, 2, 'c (expired at 1200) and a (at 1300) dropped while adding e');
  for (let i = 0; i < 10_000; i++) limiter.recordFailure(`flood-${i}`, at(2_000 + i));
  assert.equal(limiter.size, 3);
});

test('rate limit: options are validated', () => {
  for (const options of [{ maxFailures: 0 }, { windowMs: -1 }, { maxKeys: 1.5 }, { maxFailures: Number.NaN }]) {
    assert.throws(() => new LoginRateLimiter(options), (err) => isPosternError(err, 'config_invalid'));
  }
});

test('rate limit: keys fold the account\'s case and keep accounts and clients apart', () => {
  assert.equal(loginRateLimitKey(' Joe@Corp.Example ', '203.0.113.7'), loginRateLimitKey('joe@corp.example', '203.0.113.7'));
  assert.notEqual(loginRateLimitKey('joe', '1.2.3.4'), loginRateLimitKey('joe', '1.2.3.5'));
  assert.notEqual(loginRateLimitKey('a\u0000b', 'c'), loginRateLimitKey('a', 'b\u0000c'), 'no separator ambiguity');
});

test('rate limit: the refusal carries code rate_limited, 429 and the wait in seconds', () => {
  const err = rateLimitedError({ allowed: false, retryAfterMs: 40_001 });
  assert.equal(err.code, 'rate_limited');
  assert.equal(err.httpStatus, 429);
  assert.equal(err.retryable, true);
  assert.match(err.message, /try again in 41 s/);
});

test('sign-in throttle: attempts count when they begin, so parallel guesses cannot all get through', () => {
  const throttle = new SignInThrottle({ perAccountAndClient: 5, windowMs: 60_000 });
  const gates = Array.from({ length: 20 }, () => throttle.begin('joe@corp.example', '203.0.113.7', at(0)));
  assert.equal(gates.filter((g) => g.allowed).length, 5, 'five begun at once, none finished');
  const refused = gates.at(-1)!;
  assert.deepEqual(refused, { allowed: false, retryAfterMs: 60_000 });
  assert.equal(throttle.begin('joe@corp.example', '198.51.100.1', at(0)).allowed, true, 'another client on the same account');
  assert.equal(throttle.begin('joe@corp.example', '203.0.113.7', at(60_000)).allowed, true, 'the window moved on');
});

test('sign-in throttle: a refused attempt is not counted; a right password forgives this client on this account', () => {
  const throttle = new SignInThrottle({ perAccountAndClient: 2, perClient: 3, windowMs: 60_000 });
  const first = throttle.begin('joe', '203.0.113.7', at(0));
  assert.ok(first.allowed);
  assert.ok(throttle.begin('joe', '203.0.113.7', at(1)).allowed);
  for (let i = 0; i < 5; i++) assert.equal(throttle.begin('joe', '203.0.113.7', at(2 + i)).allowed, false);
  const ok = throttle.begin('ann', '203.0.113.7', at(10));
  assert.ok(ok.allowed, 'refusals did not fill the per-client window');
  throttle.succeeded(ok.attempt);
  assert.ok(throttle.begin('ann', '203.0.113.7', at(11)).allowed);
  assert.equal(throttle.begin('bob', '203.0.113.7', at(12)).allowed, false, 'joe x2 + ann: the client is full; the success was taken back only once');
  throttle.succeeded(first.attempt);
  assert.ok(throttle.begin('joe', '203.0.113.7', at(13)).allowed, 'joe\'s failures here are forgiven and one attempt left the per-client window');
  assert.equal(throttle.begin('joe', '203.0.113.7', at(14)).allowed, false, 'but the client is full again');
});

test('sign-in throttle: per client across accounts (spraying) and per account across clients', () => {
  const spray = new SignInThrottle({ perClient: 3, windowMs: 60_000 });
  for (const account of ['a', 'b', 'c']) assert.ok(spray.begin(account, '203.0.113.7', at(0)).allowed);
  const refused = spray.begin('d', '203.0.113.7', at(30_000));
  assert.deepEqual(refused, { allowed: false, retryAfterMs: 30_000 });
  assert.ok(spray.begin('d', '203.0.113.8', at(30_000)).allowed, 'another client');

  const crowd = new SignInThrottle({ perAccount: 3, windowMs: 60_000 });
  for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) assert.ok(crowd.begin('joe', ip, at(0)).allowed);
  assert.equal(crowd.begin('joe', '192.0.2.4', at(1)).allowed, false);
  assert.ok(crowd.begin('ann', '192.0.2.4', at(1)).allowed);
});

test('rate limit: withdraw takes back exactly one attempt', () => {
  const limiter = new LoginRateLimiter({ maxFailures: 2, windowMs: 60_000 });
  limiter.recordFailure('k', at(0));
  limiter.recordFailure('k', at(0));
  limiter.withdraw('k', at(0));
  assert.equal(limiter.check('k', at(1)).allowed, true);
  limiter.withdraw('k', at(5));
  limiter.recordFailure('k', at(2));
  assert.equal(limiter.check('k', at(3)).allowed, false, 'withdrawing an attempt never counted changes nothing');
  limiter.withdraw('k', at(0));
  limiter.withdraw('k', at(2));
  assert.equal(limiter.size, 0);
});
