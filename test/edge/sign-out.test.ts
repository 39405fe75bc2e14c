// The sign-out path's pieces: which canonical paths it is, the form token bound to the cookie,
// and pages that escape what they show.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isSignOutPath, renderSignOutPage, signOutToken, signOutTokenValid } from '../../src/edge/sign-out.js';

test('the sign-out path: any case, one trailing slash; nothing longer or shorter', () => {
  for (const path of ['/_postern/logout', '/_postern/logout/', '/_POSTERN/Logout']) assert.ok(isSignOutPath(path), path);
  for (const path of ['/_postern/logout2', '/_postern/logout/x', '/_postern', '/logout', '/app/_postern/logout', '/_postern/logout//']) assert.ok(!isSignOutPath(path), path);
});

test('the form token belongs to one cookie and is checked in full', () => {
  const a = 'A'.repeat(43);
  const b = 'B'.repeat(43);
  const token = signOutToken(a);
  assert.ok(signOutTokenValid(a, token));
  assert.ok(!signOutTokenValid(b, token));
  assert.ok(!signOutTokenValid(a, null));
  assert.ok(!signOutTokenValid(a, ''));
  assert.ok(!signOutTokenValid(a, token.slice(0, -1)));
  assert.ok(!signOutTokenValid(a, `${token}x`));
});

test('pages escape the email and socket they show', () => {
  const html = renderSignOutPage({ kind: 'confirm', email: '<script>x</script>@corp.example', socket: 'app', token: 'a+b' });
  assert.doesNotMatch(html, /<script>/);
  assert.match(html, /action="\/_postern\/logout\?token=a%2Bb"/);
});
