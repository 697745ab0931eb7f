import { existsSync, mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createApp } from '../../api/app';
import { ApiStack, TEST_OPERATOR_KEY } from '../support/api-stack';

/**
 * The web console's batches (issue 26, item 4) in a real browser, as test/console/console.browser.test.ts drives it
 * (Debian's Chromium through playwright-core, against the API on a port; no browser is a failure, never a skip):
 * paste a CSV, send it, watch the batch settle and read its items' outcomes (one refused for funds), page and filter
 * them; a CSV with faults shows them by line and sends nothing. Screenshots go to test-artifacts/console/.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts', 'console');
const LONG = { timeout: 60_000 };

describe('web console: batches (headless Chromium)', () => {
  let api: ApiStack;
  let server: Server;
  let base: string;
  let browser: Browser;
  let page: Page;
  let A: string, B: string, C: string, D: string;
  /** Requests the page tried to send anywhere but the API (there must be none). */
  const elsewhere: string[] = [];
  /** Script errors and Content-Security-Policy violations the page reported. */
  const pageProblems: string[] = [];
  /** Every POST the page sent to /transfer-batches. */
  const posts: string[] = [];

  const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

  /** Waits until `done()` holds (checked every 100 ms, for up to a minute). */
  async function until(done: () => Promise<boolean>) {
    for (const deadline = Date.now() + 60_000; !(await done());) {
      if (Date.now() > deadline) throw new Error(`still not so: ${done.toString()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async function signIn(key: string) {
    await page.goto(`${base}/console#/signin`);
    await page.locator('#api-key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/#\/accounts$/);
  }

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`No Chromium at ${CHROMIUM}: install it with 'apt-get install -y chromium' (.ci/run does), or set CHROMIUM_PATH`);
    mkdirSync(ARTIFACTS, { recursive: true });
    const launching = chromium.launch({ executablePath: CHROMIUM });
    launching.catch(() => undefined); // handled: awaited below
    api = await ApiStack.create('console_batches').catch(async (error: unknown) => {
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
    page.on('request', (request) => {
      if (request.method() === 'POST' && new URL(request.url()).pathname === '/transfer-batches') posts.push(request.postData() ?? '');
    });

    A = await api.openAccount('alice', 10_000);
    B = await api.openAccount('bob');
    C = await api.openAccount('carol');
    // D has nothing and receives nothing in the batch: its item is refused for funds, whatever the order of the legs.
    D = await api.openAccount('dave');
    await api.caughtUp();
    await signIn(TEST_OPERATOR_KEY);
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

  test('a pasted CSV of three items (not atomic): the batch settles, two completed and one failed for funds', async () => {
    await page.getByRole('link', { name: 'Batches', exact: true }).click();
    await page.waitForURL(/#\/batches$/);
    const form = page.getByTestId('batch-form');
    // Columns in another order than the API's, one item without a transfer id (the API names it).
    await form
      .getByTestId('batch-csv')
      .fill(`amount,fromAccountId,toAccountId,transferId\n1000,${A},${B},csv-ab\n2000,${A},${C},\n500,${D},${B},csv-db\n`);
    await form.getByTestId('batch-summary').filter({ hasText: '3 items, 3500 minor units in all' }).waitFor(LONG);
    expect(await form.getByLabel(/Atomic/).isChecked()).toBe(false);
    await form.getByRole('button', { name: 'Send batch' }).click();

    await page.waitForURL(/#\/batches\/[^/?]+$/, LONG);
    const batchId = decodeURIComponent(new URL(page.url()).hash.replace(/^#\/batches\//, ''));
    // What the page sent: the items as the CSV gave them, not atomic, under the id it made.
    expect(posts).toHaveLength(1);
    expect(JSON.parse(posts[0]!)).toEqual({
      batchId,
      atomic: false,
      items: [
        { transferId: 'csv-ab', fromAccountId: A, toAccountId: B, amount: 1000 },
        { fromAccountId: A, toAccountId: C, amount: 2000 },
        { transferId: 'csv-db', fromAccountId: D, toAccountId: B, amount: 500 },
      ],
    });

    // The page follows the batch until it settles, by itself.
    await page.getByTestId('batch-status').filter({ hasText: 'partially_completed' }).waitFor(LONG);
    await page.locator('[data-testid="count-completed"][data-count="2"]').waitFor(LONG);
    await page.locator('[data-testid="count-failed"][data-count="1"]').waitFor(LONG);
    expect(await page.getByTestId('count-compensated').getAttribute('data-count')).toBe('0');
    expect(await page.getByTestId('count-pending').getAttribute('data-count')).toBe('0');
    expect(await page.getByTestId('batch-item-count').textContent()).toBe('3');
    expect(await page.getByTestId('batch-progress').getAttribute('value')).toBe('3');
    // Settled: the page stops reading it and says nothing more is coming.
    await until(async () => (await page.getByTestId('live').textContent()) === '');

    // Its items, in order, with their outcomes; the refused one says why.
    const rows = page.getByTestId('batch-item');
    await page
      .locator('[data-testid="batch-item"][data-status="pending"]')
      .first()
      .waitFor({ state: 'detached', ...LONG });
    const items = await rows.evaluateAll((els) =>
      els.map((e) => ({
        index: e.getAttribute('data-index'),
        transferId: e.getAttribute('data-transfer-id'),
        status: e.getAttribute('data-status'),
        amount: e.querySelector('[data-minor]')?.getAttribute('data-minor'),
        reason: e.querySelector('[data-testid="item-reason"]')?.textContent ?? '',
      })),
    );
    expect(items.map(({ reason: _reason, ...rest }) => rest)).toEqual([
      { index: '0', transferId: 'csv-ab', status: 'completed', amount: '1000' },
      { index: '1', transferId: expect.any(String), status: 'completed', amount: '2000' },
      { index: '2', transferId: 'csv-db', status: 'failed', amount: '500' },
    ]);
    expect(items[0]!.reason).toBe('');
    expect(items[2]!.reason).toMatch(/insufficient_funds/);
    // Each item is a transfer of its own: the link opens it.
    expect(await rows.nth(2).getByRole('link', { name: 'csv-db' }).getAttribute('href')).toBe('#/transfers/csv-db');
    await shot('batch');

    // What the page showed is what the API says.
    const view = await api.http().get(`/transfer-batches/${encodeURIComponent(batchId)}`);
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ status: 'partially_completed', counts: { completed: 2, failed: 1, compensated: 0 } });
    expect((await api.http().get('/transfers/csv-db')).body).toMatchObject({ status: 'failed', failureReason: 'insufficient_funds' });
    expect(await api.stack.balance(A)).toBe(7_000);
    expect(await api.stack.balance(B)).toBe(1_000);
    expect(await api.stack.balance(C)).toBe(2_000);
    expect(await api.stack.balance(D)).toBe(0);

    // Filtered by outcome: the failed one alone.
    await page.getByTestId('item-status-filter').selectOption('failed');
    await page.waitForURL(/\?status=failed$/);
    await page.locator('[data-testid="batch-item"][data-transfer-id="csv-db"]').waitFor(LONG);
    await page.locator('[data-testid="batch-item"][data-transfer-id="csv-ab"]').waitFor({ state: 'detached', ...LONG });
    expect(await rows.count()).toBe(1);

    // Paged: two items a page, then the third on the next page.
    await page.goto(`${base}/console#/batches/${encodeURIComponent(batchId)}?limit=2`);
    await page.locator('[data-testid="batch-item"][data-transfer-id="csv-ab"]').waitFor(LONG);
    expect(await rows.count()).toBe(2);
    await page.getByTestId('items-next').click();
    await page.locator('[data-testid="batch-item"][data-transfer-id="csv-db"]').waitFor(LONG);
    expect(await rows.count()).toBe(1);
    expect(await page.getByTestId('items-next').count()).toBe(0);
    await page.getByTestId('items-first').click();
    await page.locator('[data-testid="batch-item"][data-transfer-id="csv-ab"]').waitFor(LONG);

    // Listed among the batches.
    await page.goto(`${base}/console#/batches`);
    await page.locator(`[data-testid="batch-row"][data-status="partially_completed"]`).filter({ hasText: batchId }).waitFor(LONG);
  });

  test('a CSV with a bad line shows its faults by line and sends nothing; a file is read into the form', async () => {
    posts.length = 0;
    await page.goto(`${base}/console#/batches`);
    const form = page.getByTestId('batch-form');
    await form.getByLabel(/Batch id/).fill('console-bad-batch');
    await form.getByTestId('batch-csv').fill(`fromAccountId,toAccountId,amount\n${A},${B},100\n${A},${B},10.50\n${A},${A},5\n`);
    await form.getByRole('button', { name: 'Send batch' }).click();
    const errors = page.getByTestId('csv-errors');
    await errors.waitFor(LONG);
    expect(await errors.textContent()).toContain('nothing was sent');
    expect(await errors.locator('li').evaluateAll((els) => els.map((e) => [e.getAttribute('data-line'), e.textContent]))).toEqual([
      ['3', expect.stringMatching(/^Line 3: amount must be a whole number of minor units/)],
      ['4', 'Line 4: toAccountId must differ from fromAccountId'],
    ]);
    await shot('batch-csv-errors');

    // The same from a file: read into the text area, its faults by line, still nothing sent.
    await form.getByTestId('batch-file').setInputFiles({
      name: 'batch.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(`${A},${B},100\n`),
    });
    await form
      .getByTestId('batch-summary')
      .filter({ hasText: /^0 items read, \d+ faults$/ })
      .waitFor(LONG);
    expect(await form.getByTestId('batch-csv').inputValue()).toBe(`${A},${B},100\n`);
    await form.getByRole('button', { name: 'Send batch' }).click();
    await errors.waitFor(LONG);
    expect(await errors.locator('li').first().getAttribute('data-line')).toBe('1');
    expect(await errors.locator('li').allTextContents()).toContainEqual(expect.stringMatching(/^Line 1: the header lacks fromAccountId/));

    // Nothing left the page, and the API knows no such batch.
    expect(posts).toEqual([]);
    expect((await api.http().get('/transfer-batches/console-bad-batch')).status).toBe(404);
    expect(page.url()).toMatch(/#\/batches$/);
  });

  test("a fault only the API finds (an account that does not exist) is shown as its problem, naming the item's CSV line", async () => {
    posts.length = 0;
    await page.goto(`${base}/console#/batches`);
    const form = page.getByTestId('batch-form');
    const nowhere = '00000000-0000-4000-8000-000000000000';
    await form.getByLabel(/Batch id/).fill('console-refused-batch');
    await form.getByTestId('batch-csv').fill(`fromAccountId,toAccountId,amount\n\n${A},${B},100\n${A},${nowhere},100\n`);
    await form.getByRole('button', { name: 'Send batch' }).click();
    const problem = form.getByTestId('error');
    await problem.waitFor(LONG);
    expect(posts).toHaveLength(1);
    // The API's own answer to the same body.
    const answer = await api.http().post('/transfer-batches').send(JSON.parse(posts[0]!));
    expect(answer.status).toBe(422);
    expect(answer.body.errors).toEqual([{ field: 'items[1].toAccountId', message: expect.any(String) }]);
    expect(await problem.getAttribute('data-status')).toBe('422');
    expect(await problem.textContent()).toContain(answer.body.detail);
    // Item 1 is on line 4 of the text (line 2 is blank).
    expect(
      await form
        .getByTestId('api-line-errors')
        .locator('li')
        .evaluateAll((els) => els.map((e) => [e.getAttribute('data-line'), e.textContent])),
    ).toEqual([['4', `Line 4 (toAccountId): ${answer.body.errors[0].message}`]]);
    expect((await api.http().get('/transfer-batches/console-refused-batch')).status).toBe(404);
    expect(await api.stack.balance(A)).toBe(7_000);
  });
});
