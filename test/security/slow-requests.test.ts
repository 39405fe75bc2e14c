// Slow and broken requests: a body that announces gigabytes and sends nothing, a head that never
// ends, an idle keep-alive connection and a flood from one address must not hold upstream
// connections forever; a chunked body whose end is malformed must never reach the upstream
// as a complete request.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { curl } from '../helpers/https.js';
import { waitFor } from '../helpers/util.js';
import { head, startEdgeFixture, statuses } from './edge-fixture.js';
import type { EdgeFixture, Parsed } from './edge-fixture.js';

const CAP = 4;

describe('security: slow bodies, timeouts and broken chunked bodies', () => {
  let f: EdgeFixture;
  let serial = 0;

  before(async () => {
    f = await startEdgeFixture({
      serverArgs: ['--body-idle-timeout', '1s', '--header-timeout', '1s', '--keep-alive-timeout', '1s', '--max-streams-per-client', String(CAP)],
    });
  });

  after(async () => {
    await f?.close();
  });

  const sinkPath = () => `/sink/${++serial}`;
  const parsed = (path: string): Parsed | undefined => f.node.seen.find((r) => r.url === path);
  const healthy = async () => {
    const result = await curl(['-sS', '-o', '/dev/null', '-w', '%{http_code}', `https://pub.localhost:${f.server.port}/after`], { caFile: f.server.caFile });
    assert.equal(result.stdout, '200', result.stderr);
  };

  test('50 requests that announce 10 GiB and send nothing are cut, and release their upstream connections', async () => {
    const paths = Array.from({ length: 50 }, sinkPath);
    const results = await Promise.all(paths.map((path) => f.raw('pub', [head(f, 'pub', `POST ${path} HTTP/1.1`, ['Content-Length: 10737418240'])], { waitMs: 10_000 })));
    for (const result of results) {
      assert.ok(result.closed, 'the edge closed the connection');
      const [status] = statuses(result.text);
      assert.ok(status === 408 || status === 429, result.text);
    }
    assert.equal(results.filter((r) => statuses(r.text)[0] === 408).length, CAP, `only the capped number reached the upstream: ${JSON.stringify(results.map((r) => r.text.slice(0, 120)))}`);
    const reached = paths.map(parsed).filter((r): r is Parsed => r !== undefined);
    assert.equal(reached.length, CAP);
    await waitFor(() => reached.every((r) => r.aborted), { what: 'upstream requests aborted', timeoutMs: 10_000 });
    assert.ok(reached.every((r) => !r.complete));
    await healthy();
  });

  test('a client over the per-address cap gets 429 until its streams close', async () => {
    const holders = Array.from({ length: CAP }, () => f.raw('pub', [head(f, 'pub', `POST ${sinkPath()} HTTP/1.1`, ['Content-Length: 100']), 'x'], { waitMs: 10_000 }));
    await waitFor(() => f.node.seen.filter((r) => r.url.startsWith('/sink/') && !r.aborted && !r.complete).length === CAP, { what: 'the cap in use', timeoutMs: 10_000 });
    const over = await curl(['-sS', '-w', '\n%{http_code}', `https://pub.localhost:${f.server.port}/over`], { caFile: f.server.caFile });
    assert.match(over.stdout, /too_many_streams[\s\S]*\n429$/);
    await Promise.all(holders);
    await healthy();
  });

  test('a request head that never ends is answered 408 and closed', async () => {
    const result = await f.raw('pub', [`GET /slow-head HTTP/1.1\r\nHost: pub.localhost:${f.server.port}\r\nX-Slow: 1\r\n`], { waitMs: 10_000 });
    assert.ok(result.closed);
    assert.deepEqual(statuses(result.text), [408], result.text);
    assert.equal(parsed('/slow-head'), undefined);
  });

  test('an idle keep-alive connection is closed', async () => {
    const result = await f.raw('pub', [head(f, 'pub', 'GET /keep HTTP/1.1')], { waitMs: 10_000 });
    assert.deepEqual(statuses(result.text), [200]);
    assert.ok(result.closed, 'closed after the keep-alive timeout');
  });

  for (const [name, body] of [
    ['a chunk size that is not hex', '5\r\nhello\r\nZZ\r\n\r\n'],
    ['a chunk longer than its size', '5\r\nhelloEXTRA\r\n0\r\n\r\n'],
    ['a last chunk with a broken trailer', '5\r\nhello\r\n0\r\nno colon here\r\n\r\n'],
    ['a last chunk with a control byte in its extension', '5\r\nhello\r\n0;x=\x01\r\n\r\n'],
    ['a last chunk cut short', '5\r\nhello\r\n0\r\n'],
    ['a connection closed inside the last chunk', '5\r\nhello\r\n0'],
  ] as const) {
    test(`${name}: the upstream never sees a complete request`, async () => {
      const path = sinkPath();
      const result = await f.raw('pub', [head(f, 'pub', `POST ${path} HTTP/1.1`, ['Transfer-Encoding: chunked']), body], { gapMs: 200, waitMs: 5_000 });
      assert.doesNotMatch(result.text, /got \d+ bytes/, 'no answer from a completed upstream request');
      const seen = parsed(path);
      if (seen) await waitFor(() => seen.aborted || seen.complete, { what: `${path} ended`, timeoutMs: 10_000 });
      assert.ok(!seen?.complete, `${path} reached the upstream complete: ${JSON.stringify(seen)}`);
    });
  }

  test('a well-formed chunked body arrives whole (the control case)', async () => {
    const path = sinkPath();
    const result = await f.raw('pub', [head(f, 'pub', `POST ${path} HTTP/1.1`, ['Transfer-Encoding: chunked', 'Connection: close']), '5\r\nhello\r\n', '0\r\n\r\n'], { gapMs: 200 });
    assert.match(result.text, /got 5 bytes/);
    assert.ok(parsed(path)?.complete);
  });

  for (const [name, headers, body] of [
    ['Content-Length with Transfer-Encoding', ['Content-Length: 5', 'Transfer-Encoding: chunked'], '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['Transfer-Encoding that does not end in chunked', ['Transfer-Encoding: chunked, identity'], '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['two Content-Length values', ['Content-Length: 0', 'Content-Length: 44'], 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'],
  ] as const) {
    test(`${name} is refused, nothing smuggled`, async () => {
      const result = await f.raw('pub', [head(f, 'pub', `POST ${sinkPath()} HTTP/1.1`, headers) + body]);
      assert.deepEqual(statuses(result.text), [400], result.text);
      assert.equal(parsed('/smuggled'), undefined);
    });
  }
});
