// Certificate renewal on a fake clock: at half life of each certificate in turn, a minute after a
// failure, far-off renewals through several timer waits, and nothing once stopped. No real waiting.
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { test } from 'node:test';
import { BACKDATE_MS } from '../../src/ca/x509.js';
import { ECDSA_P256, SIGNING, x509 } from '../../src/ca/x509.js';
import { RENEWAL_RETRY_MS, RenewalScheduler } from '../../src/connector/renewal.js';
import { FakeClock } from '../helpers/fake-clock.js';

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const T0 = Date.parse('2026-03-01T12:00:00Z');

/** A certificate issued at `issuedAt` (backdated as the CA does) that lives `lifetimeMs`. */
async function certificate(issuedAt: number, lifetimeMs: number): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(ECDSA_P256, false, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01', name: 'CN=connector', keys, signingAlgorithm: SIGNING,
    notBefore: new Date(issuedAt - BACKDATE_MS), notAfter: new Date(issuedAt + lifetimeMs),
  });
  return cert.toString('pem');
}

function harness(firstPem: string, clock: FakeClock) {
  let pem = firstPem;
  const renewals: number[] = [];
  const failures: unknown[] = [];
  let next: () => Promise<string> = async () => certificate(clock.now(), 2 * HOUR);
  const scheduler = new RenewalScheduler({
    clock,
    certificatePem: () => pem,
    renew: async () => {
      renewals.push(clock.now());
      pem = await next();
    },
    onFailure: (err) => failures.push(err),
  });
  return { scheduler, renewals, failures, setNext: (fn: () => Promise<string>) => (next = fn) };
}

/**
 * Lets a renewal in flight finish (key generation and signing run on libuv's thread pool, so a
 * count of event-loop turns is no bound on a loaded machine); bounded by 10 s of real time.
 */
async function settleUntil(clock: FakeClock, waiting: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (clock.pending().length !== waiting && Date.now() < deadline) await new Promise<void>((resolve) => setTimeout(resolve, 5));
  assert.equal(clock.pending().length, waiting, 'the renewal settled');
}

test('renewal: at half life of the certificate, then at half life of the renewed one', async () => {
  const clock = new FakeClock(T0);
  const { scheduler, renewals, failures } = harness(await certificate(T0, 2 * HOUR), clock);
  scheduler.start();
  assert.deepEqual(clock.pending(), [HOUR], 'planned for half of the two hours');
  clock.advance(HOUR - 1);
  assert.deepEqual(renewals, [], 'not before half life');
  clock.advance(1);
  assert.deepEqual(renewals, [T0 + HOUR]);
  await settleUntil(clock, 1);
  assert.deepEqual(clock.pending(), [HOUR], 'the new certificate is renewed at its own half life');
  clock.advance(HOUR);
  assert.deepEqual(renewals, [T0 + HOUR, T0 + 2 * HOUR]);
  await settleUntil(clock, 1);
  assert.deepEqual(failures, []);
  scheduler.stop();
  assert.deepEqual(clock.pending(), []);
});

test('renewal: a failure is retried a minute later, and success returns to half life', async () => {
  const clock = new FakeClock(T0);
  const { scheduler, renewals, failures, setNext } = harness(await certificate(T0, 2 * HOUR), clock);
  setNext(async () => {
    throw new Error('control plane unreachable');
  });
  scheduler.start();
  clock.advance(HOUR);
  await settleUntil(clock, 1);
  assert.equal(failures.length, 1);
  assert.deepEqual(clock.pending(), [RENEWAL_RETRY_MS]);
  setNext(async () => certificate(clock.now(), 4 * HOUR));
  clock.advance(RENEWAL_RETRY_MS);
  assert.deepEqual(renewals, [T0 + HOUR, T0 + HOUR + RENEWAL_RETRY_MS]);
  await settleUntil(clock, 1);
  assert.deepEqual(clock.pending(), [2 * HOUR]);
  scheduler.stop();
});

test('renewal: a certificate past its half life is renewed after a second; a far one after several waits', async () => {
  const late = new FakeClock(T0 + 90 * 60 * 1000);
  const first = harness(await certificate(T0, 2 * HOUR), late);
  first.scheduler.start();
  assert.deepEqual(late.pending(), [1_000]);
  first.scheduler.stop();

  // 120 days: half life is 60 days away, more than one Node timer can wait (about 24.8 days).
  const clock = new FakeClock(T0);
  const far = harness(await certificate(T0, 120 * DAY), clock);
  far.scheduler.start();
  clock.advance(60 * DAY - 1);
  assert.deepEqual(far.renewals, [], 'an early wake-up only plans the next wait');
  clock.advance(1);
  assert.deepEqual(far.renewals, [T0 + 60 * DAY]);
  await settleUntil(clock, 1);
  far.scheduler.stop();
});

test('renewal: stop() cancels the planned renewal and a renewal finishing after it plans nothing', async () => {
  const clock = new FakeClock(T0);
  const { scheduler, renewals, setNext } = harness(await certificate(T0, 2 * HOUR), clock);
  const renewed = await certificate(T0 + HOUR, 2 * HOUR);
  let finish: () => void = () => assert.fail('no renewal started');
  const inFlight = new Promise<string>((resolve) => (finish = () => resolve(renewed)));
  setNext(() => inFlight);
  scheduler.start();
  clock.advance(HOUR);
  assert.equal(renewals.length, 1);
  scheduler.stop();
  finish();
  await inFlight;
  for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  assert.deepEqual(clock.pending(), []);
  clock.advance(10 * DAY);
  assert.equal(renewals.length, 1);
});
