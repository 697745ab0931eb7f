import { existsSync, mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createApp } from '../../api/app';
import { ApiStack, TEST_OPERATOR_KEY } from '../support/api-stack';

/**
 * The web console's holds (issue 25, item 7) in a real browser, as test/console/console.browser.test.ts drives it
 * (Debian's Chromium through playwright-core, against the API on a port; no browser is a failure, never a skip):
 * place a hold from an account's page and see held and available move, follow the hold's page (countdown to its
 * expiry, steps), capture part of it and see the target's balance, void another, and a refusal shown as text.
 * Screenshots go to test-artifacts/console/ (git-ignored).
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts', 'console');
const LONG = { timeout: 60_000 };

describe('web console: holds (headless Chromium)', () => {
  let api: ApiStack;
  let server: Server;
  let base: string;
  let browser: Browser;
  let page: Page;
  let alice: string;
  let A: string, B: string;
  /** The hold captured in part (the second test), reused by the customer's test. */
  let captured: string;
  /** Requests the page tried to send anywhere but the API (there must be none). */
  const elsewhere: string[] = [];
  /** Script errors and Content-Security-Policy violations the page reported. */
  const pageProblems: string[] = [];

  const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

  async function signIn(key: string) {
    await page.goto(`${base}/console#/signin`);
    await page.locator('#api-key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/#\/accounts$/);
  }

  /** An amount shown on the page, by its test id (minor units, from data-minor), once it equals `minor`. */
  const shows = (testid: string, minor: number, within = page.locator('main')) =>
    within.locator(`[data-testid="${testid}"][data-minor="${minor}"]`).first().waitFor(LONG);

  /** The hold as the API shows it once `done(view)` holds (read again every 200 ms, for up to a minute). */
  async function waitForHold(id: string, done: (view: Record<string, unknown>) => boolean) {
    for (const deadline = Date.now() + 60_000; ;) {
      const view = (await api.http().get(`/holds/${id}`)).body as Record<string, unknown>;
      if (done(view)) return view;
      if (Date.now() > deadline) throw new Error(`hold ${id} is still ${JSON.stringify(view)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** Places a hold with the account page's form; answers the hold's id once the page shows it held. */
  async function placeHold(toAccountId: string, amount: number, expiresIn?: { value: number; unit: string }) {
    const form = page.getByTestId('hold-form');
    await form.waitFor(LONG);
    await form.getByLabel('To account').fill(toAccountId);
    await form.getByLabel(/Amount/).fill(String(amount));
    if (expiresIn) {
      await form.getByLabel('Expires in').fill(String(expiresIn.value));
      await form.getByLabel('Expiry unit').selectOption(expiresIn.unit);
    }
    await form.getByRole('button', { name: 'Place hold' }).click();
    // The page follows the hold until the account's read model shows its reservation, then draws itself again.
    const notice = page.locator('p.notice[data-testid="hold-placed"]');
    await notice.waitFor(LONG);
    // (A hold of a few seconds may have expired by then on a slow machine.)
    if (!expiresIn || expiresIn.value * (expiresIn.unit === 'seconds' ? 1 : 60) >= 60)
      expect(await notice.locator('.badge').textContent()).toBe('held');
    const href = await notice.getByTestId('hold-link').getAttribute('href');
    return decodeURIComponent(href!.replace(/^#\/holds\//, ''));
  }

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`No Chromium at ${CHROMIUM}: install it with 'apt-get install -y chromium' (.ci/run does), or set CHROMIUM_PATH`);
    mkdirSync(ARTIFACTS, { recursive: true });
    const launching = chromium.launch({ executablePath: CHROMIUM });
    launching.catch(() => undefined); // handled: awaited below
    api = await ApiStack.create('console_holds').catch(async (error: unknown) => {
      await (await launching.catch(() => undefined))?.close();
      throw error;
    });
    const app = createApp(api.deps);
    server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launching;
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    // Every text the hold page's countdown shows, in order (to see it tick without a reload).
    await context.addInitScript(`
      window.__countdown = [];
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid="countdown"]')?.textContent;
        if (text && window.__countdown.at(-1) !== text) window.__countdown.push(text);
      }).observe(document, { subtree: true, childList: true, characterData: true });
    `);
    await context.route('**/*', (route) => {
      if (route.request().url().startsWith(base)) return route.continue();
      elsewhere.push(route.request().url());
      return route.abort();
    });
    page = await context.newPage();
    page.on('pageerror', (error) => pageProblems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) pageProblems.push(`console: ${message.text()}`);
    });

    const key = await api.http().post('/api-keys').send({ role: 'customer', ownerId: 'alice' });
    expect(key.status).toBe(201);
    alice = key.body.secret as string;
    A = await api.openAccount('alice', 10_000);
    B = await api.openAccount('bob');
    await api.caughtUp();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    await api?.close();
  });

  afterEach(() => {
    expect(pageProblems).toEqual([]);
    expect(elsewhere).toEqual([]);
  });

  test('an operator places a hold from the account page: held and available move, the balance does not', async () => {
    await signIn(TEST_OPERATOR_KEY);
    await page.goto(`${base}/console#/accounts/${A}`);
    await shows('balance', 10_000);
    // Held and available beside the balance (the API sends them).
    await shows('held', 0, page.getByTestId('reserved'));
    await shows('available', 10_000, page.getByTestId('reserved'));
    await page.getByTestId('no-holds').waitFor(LONG);

    captured = await placeHold(B, 3_000, { value: 10, unit: 'minutes' });
    await shows('held', 3_000, page.getByTestId('reserved'));
    await shows('available', 7_000, page.getByTestId('reserved'));
    expect(await page.getByTestId('balance').getAttribute('data-minor')).toBe('10000');
    // Listed among the account's holds, with a link to its page.
    const row = page.locator(`[data-testid="hold-row"][data-hold-id="${captured}"]`);
    await row.waitFor(LONG);
    expect(await row.getAttribute('data-status')).toBe('held');
    expect(await row.getByRole('link', { name: captured }).getAttribute('href')).toBe(`#/holds/${encodeURIComponent(captured)}`);
    await shot('hold-account');

    // What the page showed is what the API says.
    const account = await api.http().get(`/accounts/${A}`);
    expect(account.body).toMatchObject({ balance: 10_000, held: 3_000, available: 7_000 });
  });

  test("the hold's page: state, amounts, steps and a live countdown; capture part of it and see the target's balance", async () => {
    await page.locator(`[data-testid="hold-row"][data-hold-id="${captured}"]`).getByRole('link', { name: captured }).click();
    await page.waitForURL(new RegExp(`#/holds/${captured}$`));
    await page.getByTestId('hold-status').filter({ hasText: 'held' }).waitFor(LONG);
    await shows('hold-amount', 3_000);
    expect(await page.getByTestId('hold-from-link').textContent()).toBe(A);
    expect(await page.getByTestId('hold-to-link').textContent()).toBe(B);
    expect(await page.getByTestId('hold-step').count()).toBeGreaterThanOrEqual(1);

    // The countdown to expiresAt (10 minutes away), redrawn by the page while it is open: it shows a new text later.
    const countdown = page.getByTestId('countdown');
    const firstText = await countdown.textContent();
    expect(firstText).toMatch(/^\d+ min \d\d s$/);
    // (A locator, not waitForFunction: the page's CSP allows no string evaluated as script.)
    await countdown.filter({ hasNotText: firstText! }).waitFor(LONG);
    expect(((await page.evaluate('window.__countdown')) as string[]).length).toBeGreaterThanOrEqual(2);
    await shot('hold');

    // Capture 1,200 of the 3,000: captured, the rest released, the capture's transfer linked.
    const actions = page.getByTestId('hold-actions');
    await actions.getByLabel(/Amount to capture/).fill('1200');
    await actions.getByRole('button', { name: 'Capture' }).click();
    await page.getByTestId('hold-status').filter({ hasText: 'captured' }).waitFor(LONG);
    await shows('hold-captured', 1_200);
    await shows('hold-released', 1_800);
    expect(await page.getByTestId('hold-actions').count()).toBe(0);
    expect(await countdown.textContent()).toBe('— (captured)');
    expect(await page.getByTestId('capture-transfer-link').getAttribute('href')).toBe(`#/transfers/${encodeURIComponent(captured)}`);

    // The accounts as the read models show them, once they applied the capture: the target got 1,200.
    await api.caughtUp();
    await page.getByTestId('refresh-accounts').click();
    await shows('balance', 1_200, page.getByTestId('hold-to'));
    await shows('balance', 8_800, page.getByTestId('hold-from'));
    await shows('held', 0, page.getByTestId('hold-from'));
    await shot('hold-captured');
    expect((await api.http().get(`/holds/${captured}`)).body).toMatchObject({ status: 'captured', captured: 1_200, released: 1_800 });
    expect(await api.stack.balance(B)).toBe(1_200);
  });

  test('void another hold from its page: all of it is released', async () => {
    await page.goto(`${base}/console#/accounts/${A}`);
    const voided = await placeHold(B, 500);
    await shows('held', 500, page.getByTestId('reserved'));
    await page.getByTestId('hold-link').click();
    await page.getByTestId('hold-status').filter({ hasText: 'held' }).waitFor(LONG);
    await page.getByTestId('hold-actions').getByRole('button', { name: 'Void' }).click();
    await page.getByTestId('hold-status').filter({ hasText: 'voided' }).waitFor(LONG);
    await shows('hold-released', 500);
    expect(await page.getByTestId('hold-actions').count()).toBe(0);
    await shot('hold-voided');

    await api.caughtUp();
    await page.goto(`${base}/console#/accounts/${A}`);
    await shows('held', 0, page.getByTestId('reserved'));
    await shows('available', 8_800, page.getByTestId('reserved'));
    await page.locator(`[data-testid="hold-row"][data-hold-id="${voided}"][data-status="voided"]`).waitFor(LONG);
  });

  test("a refusal is shown as the API's problem, as text: a capture over what is held", async () => {
    await page.goto(`${base}/console#/accounts/${A}`);
    const held = await placeHold(B, 400);
    await page.goto(`${base}/console#/holds/${held}`);
    await page.getByTestId('hold-status').filter({ hasText: 'held' }).waitFor(LONG);
    const actions = page.getByTestId('hold-actions');
    await actions.getByLabel(/Amount to capture/).fill('1000');
    await actions.getByRole('button', { name: 'Capture' }).click();
    const refusal = actions.getByTestId('error');
    await refusal.waitFor(LONG);
    const answer = await api.http().post(`/holds/${held}/capture`).send({ amount: 1_000 });
    expect(answer.status).toBe(422);
    expect(await refusal.getAttribute('data-status')).toBe('422');
    expect(await refusal.textContent()).toContain(answer.body.detail ?? answer.body.title);
    // Nothing was captured; the hold is still there to act on.
    expect(await page.getByTestId('hold-status').textContent()).toBe('held');
    await shot('hold-refused');

    // A hold on a form's click is voided: the test leaves nothing held.
    await actions.getByRole('button', { name: 'Void' }).click();
    await page.getByTestId('hold-status').filter({ hasText: 'voided' }).waitFor(LONG);
  });

  test('a hold that expires: the countdown says expired, and so does its state', async () => {
    await page.goto(`${base}/console#/accounts/${A}`);
    const held = await placeHold(B, 100, { value: 5, unit: 'seconds' });
    await page.goto(`${base}/console#/holds/${held}`);
    await page
      .getByTestId('countdown')
      .filter({ hasText: /^expired$/ })
      .waitFor(LONG);
    await page.getByTestId('hold-status').filter({ hasText: 'expired' }).waitFor(LONG);
    await shows('hold-released', 100);
    expect(await page.getByTestId('hold-actions').count()).toBe(0);
    await shot('hold-expired');
  });

  test('a capture the API refuses after the expiry (a page that has not seen it yet) shows the hold-expired problem', async () => {
    const placed = await api
      .http()
      .post('/holds')
      .set('Prefer', 'wait=30')
      .send({ fromAccountId: A, toAccountId: B, amount: 100, expiresIn: 1 });
    expect([201, 202]).toContain(placed.status);
    const id = placed.body.holdId as string;
    const expired = await waitForHold(id, (v) => v.status === 'expired');
    // The page's reads of this hold answer what it was before the expiry (a page opened earlier and not polled since).
    await page.route(`${base}/holds/${id}`, (route) =>
      route.request().method() === 'GET'
        ? route.fulfill({
            status: 200,
            contentType: 'application/json',
            body: JSON.stringify({ ...expired, status: 'held', released: undefined }),
          })
        : route.continue(),
    );
    try {
      await page.goto(`${base}/console#/holds/${id}`);
      await page.getByTestId('hold-status').filter({ hasText: 'held' }).waitFor(LONG);
      // Past expiresAt: the countdown says so even before the state does.
      expect(await page.getByTestId('countdown').textContent()).toBe('expired');
      await page.getByTestId('hold-actions').getByRole('button', { name: 'Capture' }).click();
      const refusal = page.getByTestId('hold-actions').getByTestId('error');
      await refusal.waitFor(LONG);
      const answer = await api.http().post(`/holds/${id}/capture`).send({});
      expect(answer.status).toBe(409);
      expect(answer.body.type).toBe('/problems/hold-expired');
      expect(await refusal.getAttribute('data-status')).toBe('409');
      expect(await refusal.textContent()).toContain(answer.body.title);
      expect(await refusal.textContent()).toContain(answer.body.detail);
      await shot('hold-expired-refused');
    } finally {
      await page.unroute(`${base}/holds/${id}`);
    }
    // Its reads answered again: the page shows the expiry by itself.
    await page.getByTestId('hold-status').filter({ hasText: 'expired' }).waitFor(LONG);
  });

  test('a customer captures a hold of her own account (all of it by default); a finished hold offers nothing to do', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/#\/signin$/);
    await signIn(alice);
    // Her account: held and available, the hold form, her holds.
    await page.goto(`${base}/console#/accounts/${A}`);
    await shows('available', 8_800, page.getByTestId('reserved'));
    await page.locator(`[data-testid="hold-row"][data-hold-id="${captured}"]`).waitFor(LONG);
    const mine = await placeHold(B, 250);
    await page.goto(`${base}/console#/holds/${mine}`);
    await page.getByTestId('hold-status').filter({ hasText: 'held' }).waitFor(LONG);
    // Bob's account is not hers to see: the page says so instead of a balance.
    await page.getByTestId('hold-to').filter({ hasText: 'not yours to see' }).waitFor(LONG);
    await page.getByTestId('hold-actions').getByRole('button', { name: 'Capture' }).click();
    await page.getByTestId('hold-status').filter({ hasText: 'captured' }).waitFor(LONG);
    await shows('hold-captured', 250);
    // Her holds, from the nav: the list (GET /holds, scoped to her accounts).
    await page.getByRole('link', { name: 'Holds', exact: true }).click();
    await page.waitForURL(/#\/holds$/);
    await page.locator(`[data-testid="hold-row"][data-hold-id="${mine}"][data-status="captured"]`).waitFor(LONG);
    // A finished hold offers nothing to do.
    await page.goto(`${base}/console#/holds/${captured}`);
    await page.getByTestId('hold-status').filter({ hasText: 'captured' }).waitFor(LONG);
    expect(await page.getByTestId('hold-actions').count()).toBe(0);
  });
});
