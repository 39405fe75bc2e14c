// The webhook sink against a real loopback receiver: body formats, Authorization, the HMAC
// signature, non-2xx and timeouts as retryable failures, and URLs refused up front.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, test } from 'node:test';
import { isPosternError } from '../../src/errors.js';
import { createWebhookSink, SIGNATURE_HEADER } from '../../src/reporting/webhook.js';
import { freePort, withTimeout } from '../helpers/util.js';
import { auditEvent } from './helpers/audit.js';
import { WebhookReceiver } from './helpers/receiver.js';

const receivers: WebhookReceiver[] = [];
after(async () => {
  for (const receiver of receivers) await receiver.close();
});

async function receiver(): Promise<WebhookReceiver> {
  const r = new WebhookReceiver();
  await r.listen();
  receivers.push(r);
  return r;
}

const events = [auditEvent(1), auditEvent(2, { type: 'access.allowed', decision: 'allow' })];

test('webhook: JSON body, Authorization header and a signature the receiver can check', async () => {
  const r = await receiver();
  const secret = 'hmac-secret-value';
  const sink = createWebhookSink({ url: r.url, authorization: 'Bearer abc.def', secret });
  await sink.send(events);
  assert.equal(r.requests.length, 1);
  const [request] = r.requests;
  assert.equal(request!.headers['content-type'], 'application/json');
  assert.equal(request!.headers.authorization, 'Bearer abc.def');
  const expected = `sha256=${createHmac('sha256', secret).update(request!.body).digest('hex')}`;
  assert.equal(request!.headers[SIGNATURE_HEADER], expected);
  assert.deepEqual(JSON.parse(request!.body), { events });
  assert.deepEqual(r.events, events);
});

test('webhook: JSON lines, and no auth headers unless configured', async () => {
  const r = await receiver();
  await createWebhookSink({ url: r.url, format: 'jsonl' }).send(events);
  const [request] = r.requests;
  assert.equal(request!.headers['content-type'], 'application/x-ndjson');
  assert.equal(request!.body, `${JSON.stringify(events[0])}\n${JSON.stringify(events[1])}\n`);
  assert.equal(request!.headers.authorization, undefined);
  assert.equal(request!.headers[SIGNATURE_HEADER], undefined);
  assert.deepEqual(r.events, events);
});

test('webhook: any non-2xx answer is a retryable failure whose message holds no secret', async () => {
  const r = await receiver();
  const sink = createWebhookSink({ url: r.url, authorization: 'Bearer top-secret', secret: 'hmac-secret-value' });
  for (const status of [503, 500, 429, 404, 400, 301, 307]) {
    r.status = status;
    await assert.rejects(sink.send(events), (err: unknown) => {
      assert.ok(isPosternError(err, 'upstream_unreachable') && err.retryable, String(err));
      assert.equal(err.message, `webhook http://127.0.0.1:${r.port}/hooks/audit answered ${status}`);
      assert.ok(!/top-secret|hmac-secret|query-secret/.test(err.message));
      return true;
    });
  }
  assert.equal(r.events.length, 0);
  assert.equal(r.requests.length, 7, 'redirects were not followed');
  r.status = 204;
  await sink.send(events);
});

test('webhook: a closed port and a receiver that never answers fail, bounded by the timeout', async () => {
  const port = await freePort();
  await assert.rejects(createWebhookSink({ url: `http://127.0.0.1:${port}/` }).send(events), (err: unknown) => {
    assert.ok(isPosternError(err, 'upstream_unreachable'), String(err));
    assert.match(err.message, /ECONNREFUSED/);
    return true;
  });
  const r = await receiver();
  r.hang = true;
  const started = Date.now();
  await assert.rejects(
    withTimeout(createWebhookSink({ url: r.url, timeoutMs: 200 }).send(events), 5_000, 'the webhook timeout'),
    (err: unknown) => isPosternError(err, 'upstream_timeout') && err.message.includes('no answer within 200 ms'),
  );
  assert.ok(Date.now() - started < 4_000);
});

test('webhook: bad options are config errors at construction', () => {
  const cases = [
    { url: 'not a url' },
    { url: 'ftp://127.0.0.1/' },
    { url: 'http://user:pass@127.0.0.1/' },
    { url: 'http://127.0.0.1/', secret: '' },
    { url: 'http://127.0.0.1/', timeoutMs: 0 },
  ];
  for (const options of cases) {
    assert.throws(() => createWebhookSink(options), (err: unknown) => isPosternError(err, 'config_invalid'), JSON.stringify(options));
  }
  assert.throws(() => createWebhookSink({ url: 'http://user:hunter2@127.0.0.1/' }), (err: unknown) => !String(err).includes('hunter2'));
});
