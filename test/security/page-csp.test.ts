// The control host's server-rendered pages once carried inline styles and no
// Content-Security-Policy, so an injection into any of them could run script. Each page now
// answers with a policy that allows only its own <style> blocks by hash; a real browser renders
// them styled and reports no violation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { httpsFetch } from '../helpers/https.js';
import { dashboardContext, launchChromium, needsChromium } from '../helpers/dashboard.js';
import { pageCsp } from '../../src/control/html-page.js';

test('pageCsp allows exactly the page\'s style blocks, by hash, and nothing else', () => {
  const csp = pageCsp('<html><head><style>body{color:red}</style><style>p{}</style></head></html>');
  // sha256("body{color:red}") and sha256("p{}"), base64.
  assert.match(csp, /style-src 'sha256-[A-Za-z0-9+/]{43}=' 'sha256-[A-Za-z0-9+/]{43}='/);
  assert.doesNotMatch(csp, /unsafe-inline|script-src/);
  assert.match(csp, /default-src 'none'/);
  assert.match(pageCsp('<p>no style</p>'), /style-src 'none'/);
  assert.notEqual(pageCsp('<style>a{}</style>'), pageCsp('<style>b{}</style>'));
});

describe('server-rendered pages on the control host', () => {
  let server: ServerHandle;
  let setupPath: string;

  before(async () => {
    server = await startServer();
    const printed = /First admin +(https:\/\/\S+)/.exec(server.process.stdout);
    assert.ok(printed, server.process.stdout);
    const url = new URL(printed[1]!);
    setupPath = url.pathname + url.search;
  });

  after(async () => {
    await cleanupAll();
  });

  test('every page answers with its own strict policy', async () => {
    for (const path of ['/auth/login', '/auth/login?return_to=%2Fdevice', () => setupPath, '/setup?token=forged', '/auth/set-password?token=forged', '/auth/oidc/nope/start']) {
      const target = typeof path === 'function' ? path() : path;
      const res = await httpsFetch({ port: server.port, ca: server.caPem, path: target, headers: { accept: 'text/html' } });
      assert.match(String(res.headers['content-type']), /text\/html/, target);
      const csp = String(res.headers['content-security-policy'] ?? '');
      assert.equal(csp, pageCsp(res.text), `${target}: the policy is the page's own`);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, target);
      assert.equal(res.headers['x-frame-options'], 'DENY', target);
    }
  });

  test('a real browser renders the sign-in page with its style and reports no violation', { ...needsChromium, timeout: 60_000 }, async () => {
    const browser = await launchChromium();
    try {
      const page = await (await dashboardContext(browser)).newPage();
      const violations: string[] = [];
      page.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
      });
      await page.goto(`${server.url}/auth/login`);
      const maxWidth = await page.evaluate(() => getComputedStyle(document.body).maxWidth);
      assert.equal(maxWidth, '384px', 'the page\'s own style applied (24rem)');
      const injected = await page.evaluate(() => {
        const style = document.createElement('style');
        style.textContent = 'body{max-width:1px}';
        document.head.append(style);
        return getComputedStyle(document.body).maxWidth;
      });
      assert.equal(injected, '384px', 'a style that is not the page\'s own is refused');
      assert.ok(violations.length >= 1, 'the refused style shows as a violation');
      assert.ok(violations.every((v) => /style/i.test(v)), violations.join('\n'));
    } finally {
      await browser.close();
    }
  });
});
