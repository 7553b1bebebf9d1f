// The delivery gates as pure functions: four-eyes approvals, branch rules, freeze windows
// (croner, time zones, DST).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FreezeWindow } from '../../src/config/types.js';
import { approvalsSatisfied, checkApproval } from '../../src/delivery/gates/approvals.js';
import { branchAllowed, branchPatternErrors } from '../../src/delivery/gates/branches.js';
import { activeFreeze, freezeWindowError } from '../../src/delivery/gates/freeze.js';

const pos = { line: 1, col: 1 } as unknown as FreezeWindow['pos'];
const H = 3_600_000;
const win = (cron: string, durationMs: number, timezone?: string): FreezeWindow => ({ cron, durationMs, timezone, pos });

test('approvals: deployer or admin, never the author, never twice', () => {
  const release = { createdBy: 'pipeline', authorEmail: 'Alice@Example.com' };
  assert.deepEqual(checkApproval({ approver: { name: 'bob', email: 'bob@example.com', role: 'deployer' }, release, existing: [] }), { ok: true });
  assert.deepEqual(checkApproval({ approver: { name: 'root', role: 'admin' }, release, existing: ['bob'] }), { ok: true });

  const dev = checkApproval({ approver: { name: 'carol', role: 'developer' }, release, existing: [] });
  assert.equal(dev.ok, false);
  assert.match(!dev.ok ? dev.reason : '', /deployer or admin role; carol is developer/);
  assert.equal(checkApproval({ approver: { name: 'v', role: 'viewer' }, release, existing: [] }).ok, false);

  // The commit's author, by e-mail, case and spaces aside.
  const author = checkApproval({ approver: { name: 'alice', email: ' alice@EXAMPLE.com', role: 'admin' }, release, existing: [] });
  assert.deepEqual(author, { ok: false, reason: 'four eyes: the author of a change cannot approve it' });
  // The user who set the release going (ferry deploy / rollback by hand).
  const byHand = { createdBy: 'dave', authorEmail: 'someone@example.com' };
  assert.deepEqual(checkApproval({ approver: { name: 'dave', role: 'deployer' }, release: byHand, existing: [] }), {
    ok: false,
    reason: 'four eyes: the author of a change cannot approve it',
  });
  // 'pipeline' is not a person: a user who happens to be called so is not its author.
  assert.equal(checkApproval({ approver: { name: 'pipeline', role: 'deployer' }, release, existing: [] }).ok, true);
  // No e-mail on either side: no match by e-mail.
  assert.equal(checkApproval({ approver: { name: 'erin', email: null, role: 'deployer' }, release: { createdBy: 'pipeline', authorEmail: null }, existing: [] }).ok, true);

  const twice = checkApproval({ approver: { name: 'bob', role: 'deployer' }, release, existing: ['bob'] });
  assert.deepEqual(twice, { ok: false, reason: 'bob has already approved this release' });

  assert.equal(approvalsSatisfied(0, []), true);
  assert.equal(approvalsSatisfied(1, []), false);
  assert.equal(approvalsSatisfied(2, ['bob', 'bob']), false);
  assert.equal(approvalsSatisfied(2, ['bob', 'root']), true);
});

test('branches: any when unrestricted, exact names, /re2/ patterns', () => {
  assert.equal(branchAllowed('feature/x', null), true);
  assert.equal(branchAllowed(null, null), true);
  assert.equal(branchAllowed('main', ['main']), true);
  assert.equal(branchAllowed('main2', ['main']), false);
  assert.equal(branchAllowed('mai', ['main']), false);
  assert.equal(branchAllowed(null, ['main']), false);
  assert.equal(branchAllowed('main', []), false);
  const pats = ['main', '/^release\\/v[0-9]+$/', '/^HOTFIX-/i'];
  assert.equal(branchAllowed('release/v12', pats), true);
  assert.equal(branchAllowed('release/v12-rc', pats), false);
  assert.equal(branchAllowed('hotfix-123', pats), true);
  assert.equal(branchAllowed('feature/hotfix-1', pats), false);
  // Unanchored patterns search, as in rules: if.
  assert.equal(branchAllowed('my-release-1', ['/release/']), true);
  // An escaped slash inside the pattern.
  assert.equal(branchAllowed('team/a', ['/^team\\/a$/']), true);
  // A bad pattern matches nothing and is reported; backtracking constructs re2 refuses.
  assert.equal(branchAllowed('main', ['/(/']), false);
  assert.deepEqual(branchPatternErrors(['main', '/^ok$/']), []);
  assert.equal(branchPatternErrors(['/(/', '/(a)\\1/', '/x/q']).length, 3);
  // Linear time on a pattern that makes backtracking engines explode.
  assert.equal(branchAllowed('a'.repeat(5000) + '!', ['/^(a+)+$/']), false);
});

test('freeze: a weekend freeze from Friday 17:00 for 64h, in UTC', () => {
  const w = [win('0 17 * * 5', 64 * H, 'UTC')];
  // 2026-01-09 is a Friday.
  assert.equal(activeFreeze(w, new Date('2026-01-09T16:59:59.999Z')), null);
  const opening = activeFreeze(w, new Date('2026-01-09T17:00:00.000Z'));
  assert.ok(opening);
  assert.equal(opening.window, w[0]);
  assert.equal(opening.endsAt.toISOString(), '2026-01-12T09:00:00.000Z');
  assert.equal(activeFreeze(w, new Date('2026-01-10T12:00:00Z'))?.endsAt.toISOString(), '2026-01-12T09:00:00.000Z');
  assert.equal(activeFreeze(w, new Date('2026-01-12T08:59:59.999Z'))?.endsAt.toISOString(), '2026-01-12T09:00:00.000Z');
  assert.equal(activeFreeze(w, new Date('2026-01-12T09:00:00.000Z')), null);
  assert.equal(activeFreeze(w, new Date('2026-01-14T12:00:00Z')), null);
  assert.equal(activeFreeze([], new Date('2026-01-10T12:00:00Z')), null);
});

test('freeze: the cron is read in the window time zone', () => {
  // Friday 17:00 in New York (EST, UTC-5) is 22:00 UTC.
  const ny = [win('0 17 * * 5', 64 * H, 'America/New_York')];
  assert.equal(activeFreeze(ny, new Date('2026-01-09T21:59:00Z')), null);
  assert.equal(activeFreeze(ny, new Date('2026-01-09T22:00:00Z'))?.endsAt.toISOString(), '2026-01-12T14:00:00.000Z');
  // Friday 17:00 in Tokyo (UTC+9) is 08:00 UTC the same Friday.
  const tokyo = [win('0 17 * * 5', 64 * H, 'Asia/Tokyo')];
  assert.equal(activeFreeze(tokyo, new Date('2026-01-09T07:59:00Z')), null);
  assert.equal(activeFreeze(tokyo, new Date('2026-01-09T08:00:00Z'))?.endsAt.toISOString(), '2026-01-12T00:00:00.000Z');
  // Seen from UTC, Tokyo's window has ended when New York's begins.
  assert.equal(activeFreeze(tokyo, new Date('2026-01-12T00:00:00Z')), null);
});

test('freeze: across DST changes the cron follows local time and the duration is elapsed time', () => {
  const berlin = [win('0 17 * * 5', 64 * H, 'Europe/Berlin')];
  // Autumn: Friday 2026-10-23 17:00 CEST (15:00Z); clocks go back on Sunday the 25th; 64h later
  // is Monday 07:00Z = 08:00 CET (not 09:00).
  assert.equal(activeFreeze(berlin, new Date('2026-10-23T14:59:59Z')), null);
  const autumn = activeFreeze(berlin, new Date('2026-10-25T12:00:00Z'));
  assert.equal(autumn?.endsAt.toISOString(), '2026-10-26T07:00:00.000Z');
  assert.equal(activeFreeze(berlin, new Date('2026-10-26T07:00:00Z')), null);
  // The next Friday is CET: 17:00 local is 16:00Z.
  assert.equal(activeFreeze(berlin, new Date('2026-10-30T15:59:59Z')), null);
  assert.ok(activeFreeze(berlin, new Date('2026-10-30T16:00:00Z')));
  // Spring: Friday 2026-03-27 17:00 CET (16:00Z); clocks go forward on Sunday the 29th;
  // 64h later is Monday 08:00Z = 10:00 CEST.
  assert.equal(activeFreeze(berlin, new Date('2026-03-30T07:59:00Z'))?.endsAt.toISOString(), '2026-03-30T08:00:00.000Z');
  assert.equal(activeFreeze(berlin, new Date('2026-03-30T08:00:00Z')), null);

  // A nightly window at 02:30 local: on the spring-forward night 02:30 does not exist, and
  // croner opens it at the first valid time after the gap (03:00 CEST = 01:00Z).
  const nightly = [win('30 2 * * *', 30 * 60_000, 'Europe/Berlin')];
  assert.equal(activeFreeze(nightly, new Date('2026-03-29T00:45:00Z')), null);
  assert.equal(activeFreeze(nightly, new Date('2026-03-29T01:10:00Z'))?.endsAt.toISOString(), '2026-03-29T01:30:00.000Z');
  // On the fall-back night 02:30 happens twice; the window opens once, at the first (00:30Z).
  assert.equal(activeFreeze(nightly, new Date('2026-10-25T00:40:00Z'))?.endsAt.toISOString(), '2026-10-25T01:00:00.000Z');
  assert.equal(activeFreeze(nightly, new Date('2026-10-25T01:40:00Z')), null);
});

test('freeze: overlapping and touching windows extend the end; the latest-ending window is named', () => {
  const weekend = win('0 17 * * 5', 64 * H, 'UTC');
  // Monday 09:00 for 3h touches the weekend's end: deploys open at 12:00.
  const mondayMorning = win('0 9 * * 1', 3 * H, 'UTC');
  const r = activeFreeze([weekend, mondayMorning], new Date('2026-01-10T12:00:00Z'));
  assert.equal(r?.window, weekend);
  assert.equal(r?.endsAt.toISOString(), '2026-01-12T12:00:00.000Z');
  const monday = activeFreeze([weekend, mondayMorning], new Date('2026-01-12T10:00:00Z'));
  assert.equal(monday?.window, mondayMorning);
  // Every day at 00:00 for 25h: always frozen; the end is bounded and in the future.
  const always = activeFreeze([win('0 0 * * *', 25 * H, 'UTC')], new Date('2026-01-10T12:00:00Z'));
  assert.ok(always && always.endsAt.getTime() > Date.parse('2026-01-11T00:00:00Z'));
  // A window of no length never freezes.
  assert.equal(activeFreeze([win('0 17 * * 5', 0, 'UTC')], new Date('2026-01-09T17:00:00Z')), null);
});

test('freeze: bad cron expressions and time zones are reported', () => {
  assert.equal(freezeWindowError({ cron: '0 17 * * 5', timezone: 'Europe/Berlin' }), null);
  assert.equal(freezeWindowError({ cron: '*/10 * * * * *' }), null);
  assert.match(freezeWindowError({ cron: '0 17 * * fri-ish' }) ?? '', /freeze cron/);
  assert.match(freezeWindowError({ cron: '0 17 * * 5', timezone: 'Mars/Olympus' }) ?? '', /Mars\/Olympus/);
  assert.throws(() => activeFreeze([win('nope', H)], new Date()));
});
