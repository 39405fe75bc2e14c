// The policy editor in a real Chromium against a real server: an admin opens a policy, a typo is
// marked on its line and Save stores nothing, the fix is saved as a new version that history and
// its diff show, and the test panel explains allow for a matching user (naming the rule) and deny
// for another (with the reason), in the words of `postern policy test`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { cleanupAll, startServer } from '../helpers/processes.js';
import type { ServerHandle } from '../helpers/processes.js';
import { api } from '../helpers/https.js';
import { createPerson, dashboardContext, launchChromium, needsChromium, screenshot, signInToDashboard } from '../helpers/dashboard.js';
import type { PolicyView } from '../../src/control/policy-types.js';

const POLICY = 'name: web-rules\nsockets: [app]\nrules:\n  - name: staff-read\n    effect: allow\n    who: { group: [staff] }\n    what: { http: { methods: [GET] } }\n  - name: no-admin\n    effect: deny\n    what: { http: { paths: ["/admin/*"] } }\n';
const WAIT = { timeout: 10_000 };

describe('the policy editor in the dashboard', needsChromium, () => {
  let server: ServerHandle;
  let browser: Browser;
  let page: Page;
  const stored = async () => (await api(server, '/api/v1/policies/web-rules')).json<PolicyView>();

  before(async () => {
    server = await startServer();
    await createPerson(server, 'admin@corp.example', ['admins']);
    await createPerson(server, 'ana@corp.example', ['staff']);
    await createPerson(server, 'bob@corp.example', ['guests']);
    assert.equal((await api(server, '/api/v1/sockets', { method: 'POST', body: { name: 'app', type: 'http' } })).status, 201);
    assert.equal((await api(server, '/api/v1/policies', { method: 'PUT', body: { text: POLICY } })).status, 200);
    browser = await launchChromium();
    page = await (await dashboardContext(browser)).newPage();
  });

  after(async () => {
    await browser?.close();
    await cleanupAll();
  });

  test('a typo is marked on its line and not saved; the fix is saved, in history, and diffed', async () => {
    await signInToDashboard(page, server, 'admin@corp.example', '/policies');
    await page.getByRole('link', { name: 'web-rules' }).click(WAIT);
    const editor = page.getByLabel('Policy YAML');
    await page.waitForFunction(() => (document.querySelector('textarea[aria-label="Policy YAML"]') as HTMLTextAreaElement | null)?.value.includes('name: web-rules'), undefined, WAIT);
    const original = await editor.inputValue();
    const typo = original.replace('effect: deny', 'effect: dny');
    const typoLine = typo.split('\n').findIndex((l) => l.includes('effect: dny')) + 1;
    assert.ok(typoLine > 1, typo);
    await editor.fill(typo);

    const message = `Line ${typoLine}, column 13: rules[1].effect: expected allow or deny, got "dny"`;
    const problem = page.getByRole('button', { name: message });
    await problem.waitFor(WAIT);
    assert.equal(await page.getByTitle(message).textContent(), String(typoLine), 'the gutter marks the line');
    await problem.click();
    const caretLine = await editor.evaluate((el: HTMLTextAreaElement) => el.value.slice(0, el.selectionStart).split('\n').length);
    assert.equal(caretLine, typoLine, 'a click on the problem moves the caret to its line');
    const save = page.getByRole('button', { name: 'Save', exact: true });
    assert.equal(await save.isDisabled(), true, 'Save is refused while there are problems');
    assert.equal((await stored()).version, 1, 'nothing was stored');

    await editor.fill(original.replace('/admin/*', '/private/*'));
    await page.getByText('No problems.').waitFor(WAIT);
    await save.click();
    await page.getByRole('status').filter({ hasText: 'Saved as version 2.' }).waitFor(WAIT);
    const now = await stored();
    assert.equal(now.version, 2);
    assert.deepEqual((now.document.rules as { what: { http: { paths: string[] } } }[])[1]!.what.http.paths, ['/private/*']);

    const history = page.getByRole('region', { name: 'History' });
    await history.getByRole('cell', { name: 'admin@corp.example' }).first().waitFor(WAIT);
    await page.getByRole('button', { name: 'Diff version 1' }).click();
    const diff = page.getByRole('region', { name: 'Version 1 → current' });
    await diff.waitFor(WAIT);
    const diffText = await diff.innerText();
    assert.match(diffText, /^- +- \/admin\/\*$/m, diffText);
    assert.match(diffText, /^\+ +- \/private\/\*$/m, diffText);
  });

  test('the test panel shows allow with the rule for a matching user and deny with the reason for another', async () => {
    const panel = page.getByRole('region', { name: 'Test panel' });
    await panel.getByLabel('Socket').fill('app');
    await panel.getByLabel('User email').fill('ana@corp.example');
    await panel.getByLabel('Path').fill('/home');
    await panel.getByRole('button', { name: 'Test' }).click();
    const output = panel.getByLabel('policy test output');
    await output.filter({ hasText: /^ALLOW: /m }).waitFor(WAIT);
    await output.filter({ hasText: '=> allow web-rules#staff-read: matched' }).waitFor(WAIT);
    const allowed = await output.innerText();
    assert.ok(allowed.split('\n').some((line) => line.trimEnd() === '=> allow web-rules#staff-read: matched'), JSON.stringify(allowed));
    await panel.getByRole('row', { name: /web-rules#staff-read.*decided/ }).waitFor(WAIT);
    await page.evaluate(() => window.scrollTo(0, 0));
    await screenshot(page, 'policies');

    await panel.getByLabel('User email').fill('bob@corp.example');
    await panel.getByRole('button', { name: 'Test' }).click();
    await output.filter({ hasText: /^DENY: /m }).waitFor(WAIT);
    const denied = await output.innerText();
    assert.match(denied, /^DENY: denied: no rule allows this/m, denied);
    assert.match(denied, /^ {3}allow web-rules#staff-read: who-group: /m, denied);
  });
});
