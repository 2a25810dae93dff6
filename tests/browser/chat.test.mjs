// End-to-end test of the web client in headless Chromium against a real
// server (auth-jwt, store-sqlite, filter-sensitive in mask mode). The steps
// build on each other like a real session between two people; after the
// first failure the rest are skipped. Every wait is for a selector or a
// condition in the page, never a fixed sleep.
//
// Prints one line a step and closes with "N passed, N failed, N skipped";
// exits non-zero when a step failed.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Server, buildDir, REJECT_WORD } from './server.mjs';

const shots = join(buildDir, 'screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const LAUNCH_ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const suffix = Date.now().toString(36).slice(-5);
const alice = { name: `alice_${suffix}`, password: 'correct horse 1' };
const bob = { name: `bob_${suffix}`, password: 'battery staple 2' };
const carol = { name: `carol_${suffix}`, password: 'tr0ub4dor&3' };

const steps = [];
function step(name, fn) {
  steps.push({ name, fn });
}

function fail(message) {
  throw new Error(message);
}

// --- Page helpers -------------------------------------------------------------

async function newPage(context, who) {
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(`${who}: ${err.message}`));
  page.on('console', (msg) => {
    // CSP violations and uncaught errors show up here; a clean client has none.
    if (msg.type() === 'error' && !/Failed to load resource|WebSocket connection/.test(msg.text())) {
      page.errors.push(`${who}: ${msg.text()}`);
    }
    // The client logs every toast it shows; none is expected in this session.
    if (msg.type() === 'warning' && msg.text().startsWith('eim:')) page.errors.push(`${who}: ${msg.text()}`);
  });
  return page;
}

async function signIn(page, user, register) {
  await page.goto(server.url);
  await page.locator('#login:not([hidden])').waitFor();
  const title = await page.locator('#login-title').textContent();
  if (register !== (title !== 'Sign in')) await page.locator('#login-switch').click();
  await page.locator('#login-username').fill(user.name);
  await page.locator('#login-password').fill(user.password);
  await page.locator('#login-submit').click();
  await page.locator('#conn-state[data-state="open"]').waitFor();
}

// Types into the composer the way a person does and sends with Enter.
async function send(page, text) {
  await page.locator('#composer-input').click();
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

// Matches on the whole text of the bubble, so "bulk 6" never finds "bulk 60".
function exactly(text) {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

function message(page, selector, text) {
  return page.locator(`#message-list ${selector}`).filter({ has: page.locator('.text', { hasText: exactly(text) }) });
}

function ownMessage(page, text, status) {
  return message(page, `li.msg.own[data-status="${status}"]`, text);
}

function theirMessage(page, text) {
  return message(page, 'li.msg.other', text);
}

function row(page, convId) {
  return page.locator(`#conv-list [data-conv-id="${convId}"]`);
}

async function textOf(locator) {
  return (await locator.textContent()).trim();
}

async function waitFor(page, fn, arg) {
  await page.waitForFunction(fn, arg, { timeout: 20000 });
}

async function shot(page, name, viewport) {
  await page.setViewportSize(viewport);
  await page.screenshot({ path: join(shots, `${name}-${viewport.width}x${viewport.height}.png`) });
}

// --- The session ----------------------------------------------------------------

let server;
let browser;
let ctxA;
let ctxB;
let pageA;
let pageB;
let single;
let group;

step('sign-in screen renders and checks input before sending it', async () => {
  pageA = await newPage(ctxA, 'alice');
  await pageA.goto(server.url);
  await pageA.locator('#login:not([hidden])').waitFor();
  await shot(pageA, 'login', PHONE);
  await shot(pageA, 'login', DESKTOP);
  await pageA.locator('#login-switch').click();
  await pageA.locator('#login-username').fill(alice.name);
  await pageA.locator('#login-password').fill('short');
  await pageA.keyboard.press('Enter');
  await pageA.locator('#login-error', { hasText: '8 to 128 characters' }).waitFor();
  if (await pageA.locator('#login-password').getAttribute('aria-invalid') !== 'true') {
    fail('the password field is not marked invalid');
  }
});

step('two users register and connect', async () => {
  await signIn(pageA, alice, true);
  pageB = await newPage(ctxB, 'bob');
  await signIn(pageB, bob, true);
  if (await textOf(pageA.locator('#me-name')) !== alice.name) fail('alice does not see her name');
});

step('wrong password and taken username get clear messages', async () => {
  const page = await newPage(await browser.newContext({ viewport: DESKTOP }), 'probe');
  await page.goto(server.url);
  await page.locator('#login-username').fill(bob.name);
  await page.locator('#login-password').fill('not the password');
  await page.locator('#login-submit').click();
  await page.locator('#login-error', { hasText: 'Wrong username or password' }).waitFor();
  await page.locator('#login-switch').click();
  await page.locator('#login-password').fill('some password');
  await page.locator('#login-submit').click();
  await page.locator('#login-error', { hasText: 'username is taken' }).waitFor();
  await page.context().close();
});

step('alice starts a chat with bob by username', async () => {
  await pageA.locator('#new-chat').click();
  await pageA.locator('#chat-username').fill(`nobody_${suffix}`);
  await pageA.keyboard.press('Enter');
  await pageA.locator('#chat-form-error', { hasText: 'no user named' }).waitFor();
  await pageA.locator('#chat-username').fill(bob.name);
  await pageA.keyboard.press('Enter');
  await pageA.locator('#chat-title', { hasText: bob.name }).waitFor();
  single = await pageA.locator('#conv-list .conv.selected').getAttribute('data-conv-id');
  if (!single) fail('no selected conversation after starting the chat');
  // The composer has focus, so typing can start at once.
  if (!await pageA.locator('#composer-input').evaluate((el) => el === document.activeElement)) {
    fail('the composer does not have focus after opening the chat');
  }
});

step('messages are acked; bob sees the unread count and preview before opening', async () => {
  await send(pageA, 'Hello Bob!');
  await ownMessage(pageA, 'Hello Bob!', 'sent').waitFor();
  await send(pageA, 'Are you there?');
  await ownMessage(pageA, 'Are you there?', 'sent').waitFor();
  await row(pageB, single).locator('.badge[data-unread="2"]').waitFor();
  const preview = await textOf(row(pageB, single).locator('.preview'));
  if (preview !== 'Are you there?') fail(`bob's preview is "${preview}"`);
  await row(pageB, single).locator('[data-presence="online"]').waitFor();
  await waitFor(pageB, () => document.title === '(2) ExampleIM');
  await shot(pageB, 'list', PHONE);
  await shot(pageB, 'list', DESKTOP);
});

step('bob opens the chat; alice sees both messages read', async () => {
  await row(pageB, single).click();
  await theirMessage(pageB, 'Hello Bob!').waitFor();
  await row(pageB, single).locator('.badge').waitFor({ state: 'detached' });
  await ownMessage(pageA, 'Hello Bob!', 'read').waitFor();
  await ownMessage(pageA, 'Are you there?', 'read').waitFor();
  await pageA.locator('#message-list .status-text.read', { hasText: 'Read' }).waitFor();
});

step('typing shows on the other side and clears when the message arrives', async () => {
  await pageB.locator('#composer-input').click();
  await pageB.keyboard.type('Yes, here');
  await pageA.locator('#typing', { hasText: `${bob.name} is typing` }).waitFor();
  await pageA.locator(`#conv-list [data-conv-id="${single}"] .preview.is-typing`).waitFor();
  // Shift+Enter adds a line instead of sending.
  await pageB.keyboard.press('Shift+Enter');
  await pageB.keyboard.type('second line');
  await pageB.keyboard.press('Enter');
  await theirMessage(pageA, 'Yes, here\nsecond line').waitFor();
  await waitFor(pageA, () => document.querySelector('#typing').textContent === '');
});

step('the sensitive-word filter masks a message for both sides', async () => {
  await send(pageA, 'that badword again');
  await ownMessage(pageA, 'that ******* again', 'read').or(ownMessage(pageA, 'that ******* again', 'sent')).waitFor();
  await theirMessage(pageB, 'that ******* again').waitFor();
  if (await pageA.locator('#message-list', { hasText: 'badword' }).count()) fail('alice still shows the unmasked word');
});

step('a message a filter rejects shows the reason and is not delivered', async () => {
  const text = `let us ${REJECT_WORD} it`;
  await send(pageA, text);
  const failed = ownMessage(pageA, text, 'failed');
  await failed.locator('.status-text', { hasText: 'Not sent:' }).waitFor();
  const reason = await textOf(pageA.locator('#chat-error'));
  if (!/^Not sent: .+/.test(reason) || /too long|too fast/.test(reason)) fail(`unexpected reason: "${reason}"`);
  // A refused message cannot succeed by retrying as is: no Retry button.
  if (await failed.getByRole('button', { name: 'Retry' }).count()) fail('a rejected message offers Retry');
  await failed.getByRole('button', { name: 'Remove' }).click();
  await failed.waitFor({ state: 'detached' });
  await send(pageA, 'ping after the refusal');
  await theirMessage(pageB, 'ping after the refusal').waitFor();
  if (await pageB.locator('#message-list', { hasText: REJECT_WORD }).count()) fail('bob received the rejected message');
  await ownMessage(pageA, 'ping after the refusal', 'read').waitFor();
});

step('an over-long message fails with a clear reason and can be removed', async () => {
  const long = 'x'.repeat(9000);
  await pageA.locator('#composer-input').fill(long);
  await pageA.locator('#composer-input').press('Enter');
  const failed = pageA.locator('#message-list li.msg.own[data-status="failed"]');
  await failed.locator('.status-text', { hasText: 'too long' }).waitFor();
  await pageA.locator('#chat-error', { hasText: 'too long' }).waitFor();
  await failed.getByRole('button', { name: 'Remove' }).click();
  await failed.waitFor({ state: 'detached' });
  await pageA.locator('#chat-error').waitFor({ state: 'hidden' });
  await shot(pageA, 'chat', PHONE);
  await shot(pageA, 'chat', DESKTOP);
});

step('older history loads when scrolling up', async () => {
  for (let i = 1; i <= 60; i++) {
    await pageA.locator('#composer-input').fill(`bulk ${i}`);
    await pageA.locator('#composer-input').press('Enter');
  }
  await ownMessage(pageA, 'bulk 60', 'sent').or(ownMessage(pageA, 'bulk 60', 'read')).waitFor();
  // A reload keeps the session (sessionStorage) and starts from the latest page.
  await pageB.reload();
  await pageB.locator('#conn-state[data-state="open"]').waitFor();
  await row(pageB, single).click();
  await message(pageB, 'li.msg', 'bulk 60').waitFor();
  if (await pageB.locator('#message-list li[data-seq="1"]').count()) fail('the first page already holds seq 1');
  await pageB.locator('#messages').evaluate((el) => { el.scrollTop = 0; });
  await pageB.locator('#message-list li[data-seq="1"]', { hasText: 'Hello Bob!' }).waitFor();
  await pageB.locator('#older', { hasText: 'beginning of the conversation' }).waitFor();
  const seqs = await pageB.locator('#message-list li[data-seq]').evaluateAll(
    (els) => els.map((e) => Number(e.dataset.seq)));
  if (seqs.some((s, i) => s !== i + 1)) fail(`history is not gapless and ordered: ${seqs.join(',')}`);
});

step('a group: create with a member, add a third by username, "seen by" receipts', async () => {
  const res = await fetch(`${server.url}/api/v1/users`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: carol.name, password: carol.password }),
  });
  if (res.status !== 201) fail(`registering carol: HTTP ${res.status}`);
  await pageA.locator('#new-group').click();
  await pageA.locator('#group-name').fill('Weekend trip');
  await pageA.locator('#group-members').fill(bob.name);
  await pageA.locator('#form-group button[type="submit"]').click();
  await pageA.locator('#chat-title', { hasText: 'Weekend trip' }).waitFor();
  group = await pageA.locator('#conv-list .conv.selected').getAttribute('data-conv-id');
  await pageA.locator('#chat-sub', { hasText: '2 members' }).waitFor();
  await send(pageA, 'Who is in?');
  await ownMessage(pageA, 'Who is in?', 'sent').waitFor();
  await row(pageB, group).locator('.badge[data-unread="1"]').waitFor();
  await row(pageB, group).click();
  await theirMessage(pageB, 'Who is in?').waitFor();
  await ownMessage(pageA, 'Who is in?', 'read').waitFor();
  await pageA.locator('#message-list .status-text.read', { hasText: 'Seen by' }).waitFor();
  await pageA.locator('#add-members').click();
  await pageA.locator('#add-usernames').fill(carol.name);
  await pageA.locator('#form-add button[type="submit"]').click();
  await pageA.locator('#dlg-add').waitFor({ state: 'hidden' });
  await pageA.locator('#chat-sub', { hasText: '3 members' }).waitFor();
});

step('keyboard only: open a conversation from the list and send', async () => {
  await row(pageA, single).focus();
  await pageA.keyboard.press('Enter');
  await pageA.locator('#chat-title', { hasText: bob.name }).waitFor();
  if (await pageA.evaluate(() => document.activeElement.id) !== 'composer-input') fail('the composer is not focused');
  await pageA.keyboard.type('typed without a mouse');
  await pageA.keyboard.press('Enter');
  await ownMessage(pageA, 'typed without a mouse', 'sent').waitFor();
  await pageA.keyboard.press('Shift+Tab');
  if (await pageA.evaluate(() => document.activeElement.id) !== 'messages') {
    fail('Shift+Tab from the composer does not reach the message log');
  }
  await pageA.locator('#new-chat').focus();
  await pageA.keyboard.press('Enter');
  await pageA.locator('#dlg-chat[open]').waitFor();
  if (await pageA.evaluate(() => document.activeElement.id) !== 'chat-username') fail('the dialog field is not focused');
  await pageA.keyboard.press('Escape');
  await pageA.locator('#dlg-chat').waitFor({ state: 'hidden' });
});

step('phone layout: list and chat are two screens with a back button', async () => {
  await row(pageA, single).click();
  await pageA.locator('#chat-title', { hasText: bob.name }).waitFor();
  await pageA.setViewportSize(PHONE);
  await pageA.locator('#conv-list').waitFor({ state: 'hidden' });
  await pageA.locator('#back').waitFor();
  await pageA.locator('#back').click();
  await pageA.locator('#conv-list').waitFor();
  await pageA.locator('#chat').waitFor({ state: 'hidden' });
  if (!await row(pageA, single).evaluate((el) => el === document.activeElement)) {
    fail('focus did not return to the conversation row');
  }
  await row(pageA, single).click();
  await pageA.locator('#composer-input').waitFor();
  await pageA.setViewportSize(DESKTOP);
  await pageA.locator('#conv-list').waitFor();
  await shot(pageB, 'group-chat', PHONE);
  await shot(pageB, 'group-chat', DESKTOP);
});

step("bob's presence dot goes offline when his page closes, and back online", async () => {
  await pageA.locator('#chat-sub[data-presence="online"]').waitFor();
  await pageB.close();
  await pageA.locator('#chat-sub[data-presence="offline"]').waitFor();
  await row(pageA, single).locator('[data-presence="offline"]').waitFor();
  pageB = await newPage(ctxB, 'bob');
  await signIn(pageB, bob, false);
  await pageA.locator('#chat-sub[data-presence="online"]').waitFor();
  await row(pageB, single).click();
  await message(pageB, 'li.msg', 'bulk 60').waitFor();
});

step('after a server restart both reconnect; a message queued while down is sent once', async () => {
  const exit = await server.stop();
  await pageA.locator('#banner:not([hidden])').waitFor();
  await pageA.locator('#conn-state:not([data-state="open"])').waitFor();
  await send(pageA, 'sent while the server was down');
  await ownMessage(pageA, 'sent while the server was down', 'pending').waitFor();
  await server.start();
  await pageA.locator('#conn-state[data-state="open"]').waitFor({ timeout: 45000 });
  await pageB.locator('#conn-state[data-state="open"]').waitFor({ timeout: 45000 });
  await pageA.locator('#banner').waitFor({ state: 'hidden' });
  await ownMessage(pageA, 'sent while the server was down', 'sent')
    .or(ownMessage(pageA, 'sent while the server was down', 'read')).waitFor();
  await theirMessage(pageB, 'sent while the server was down').waitFor();
  await send(pageA, 'and this after the restart');
  await theirMessage(pageB, 'and this after the restart').waitFor();
  const copies = await message(pageB, 'li.msg', 'sent while the server was down').count();
  if (copies !== 1) fail(`bob shows the queued message ${copies} times`);
  if (exit && exit.code !== 0) console.log(`# note: the server exited with ${exit.code} on SIGTERM`);
});

step('a dropped connection catches up with conversation.sync on reconnect', async () => {
  // Bob's socket goes through Playwright to the real server so the test can
  // cut it and refuse reconnects while alice sends.
  let live = null;
  let refuse = false;
  await ctxB.routeWebSocket(/\/ws(\?|$)/, (ws) => {
    if (refuse) {
      ws.close({ code: 4001, reason: 'test: refused' });
      return;
    }
    live = ws;
    ws.connectToServer();
  });
  await pageB.reload();
  await pageB.locator('#conn-state[data-state="open"]').waitFor();
  await row(pageB, single).click();
  await theirMessage(pageB, 'and this after the restart').waitFor();
  refuse = true;
  await live.close({ code: 4000, reason: 'test: cut' });
  await pageB.locator('#banner-retry:not([hidden])').waitFor();
  for (const text of ['missed one', 'missed two', 'missed three']) {
    await send(pageA, text);
    await ownMessage(pageA, text, 'sent').waitFor();
  }
  refuse = false;
  // "Retry now" skips the backoff wait; the scheduled retry may also win
  // the race, so click it only while it is shown, atomically in the page.
  await waitFor(pageB, () => {
    if (document.querySelector('#conn-state').dataset.state === 'open') return true;
    const retry = document.querySelector('#banner-retry');
    if (!retry.hidden && !retry.closest('[hidden]')) retry.click();
    return false;
  });
  await theirMessage(pageB, 'missed three').waitFor();
  const seqs = await pageB.locator('#message-list li[data-seq]').evaluateAll(
    (els) => els.map((e) => Number(e.dataset.seq)));
  if (seqs.some((s, i) => i > 0 && s !== seqs[i - 1] + 1)) fail(`bob's messages have a gap: ${seqs.join(',')}`);
  await ownMessage(pageA, 'missed three', 'read').waitFor();
});

step('log out clears the session', async () => {
  await pageA.locator('#logout').click();
  await pageA.locator('#login:not([hidden])').waitFor();
  if (await pageA.evaluate(() => sessionStorage.getItem('eim.session')) !== null) fail('the token is still stored');
  await pageA.reload();
  await pageA.locator('#login:not([hidden])').waitFor();
});

step('no script errors, CSP violations or error toasts in either page', async () => {
  const errors = [...pageA.errors, ...pageB.errors];
  if (errors.length) fail(errors.join('\n'));
});

// --- Runner -------------------------------------------------------------------------

async function main() {
  mkdirSync(shots, { recursive: true });
  server = new Server();
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  try {
    await server.start();
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: LAUNCH_ARGS });
    ctxA = await browser.newContext({ viewport: DESKTOP });
    ctxB = await browser.newContext({ viewport: DESKTOP });
  } catch (err) {
    console.log(`not ok - setup\n${err.stack || err}`);
    await server.stop();
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  for (const s of steps) {
    if (failed) {
      skipped++;
      console.log(`skip - ${s.name}`);
      continue;
    }
    const t0 = Date.now();
    try {
      await s.fn();
      passed++;
      console.log(`ok - ${s.name} (${Date.now() - t0} ms)`);
    } catch (err) {
      failed++;
      console.log(`not ok - ${s.name}\n${String(err.stack || err).split('\n').map((l) => `    ${l}`).join('\n')}`);
      const name = `failure-${steps.indexOf(s) + 1}`;
      for (const [who, page] of [['alice', pageA], ['bob', pageB]]) {
        if (page && !page.isClosed()) await page.screenshot({ path: join(shots, `${name}-${who}.png`) }).catch(() => {});
      }
    }
  }
  await browser.close();
  const exit = await server.stop();
  if (failed) {
    console.log(`# server log:\n${server.log.split('\n').slice(-40).join('\n')}`);
    console.log(`# server files kept in ${server.root}`);
  } else {
    server.cleanup();
  }
  console.log(`# screenshots in ${shots}`);
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  if (exit && exit.code !== 0) console.log(`# note: the server exited with ${exit.code}`);
  process.exit(failed ? 1 : 0);
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(1));
main().catch((err) => {
  console.log(`not ok - runner\n${err.stack || err}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
