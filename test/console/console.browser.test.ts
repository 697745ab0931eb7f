import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createApp } from '../../api/app';
import { ApiStack, TEST_OPERATOR_KEY } from '../support/api-stack';

/**
 * The web console (issue 15) in a real browser: Debian's Chromium (/usr/bin/chromium, installed by .ci/run), driven
 * by playwright-core against the API listening on a port. No browser is a failure here, never a skip.
 * Each page's screenshot goes to test-artifacts/console/ (git-ignored).
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts', 'console');
const CONSOLE_FILES = path.resolve(__dirname, '..', '..', 'console');
/** Only ever an href in these tests: the browser never leaves the API's origin. */
const TEMPORAL_UI = 'http://temporal-ui.example:8233';
/** Which screenshots are the README's pictures (docs/console-*.png). */
const DOCS_PICTURES: Record<string, string> = {
  'account-history': 'console-account.png',
  transfer: 'console-transfer.png',
  stream: 'console-stream.png',
};

describe('web console (headless Chromium)', () => {
  let api: ApiStack;
  let server: Server;
  let base: string;
  let browser: Browser;
  let page: Page;
  let alice: string;
  let A1: string, A2: string, B: string;
  let transferId: string;
  /** Requests the page tried to send anywhere but the API (there must be none: no CDN, offline). */
  const elsewhere: string[] = [];
  /** Script errors and Content-Security-Policy violations the page reported. */
  const pageProblems: string[] = [];

  const shot = async (name: string) => {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
    // CONSOLE_DOCS_SCREENSHOTS=1 also refreshes the README's pictures (docs/console-*.png): the top of the page.
    if (process.env.CONSOLE_DOCS_SCREENSHOTS && DOCS_PICTURES[name]) {
      mkdirSync(path.resolve(__dirname, '..', '..', 'docs'), { recursive: true });
      await page.screenshot({
        path: path.resolve(__dirname, '..', '..', 'docs', DOCS_PICTURES[name]!),
        clip: { x: 0, y: 0, width: 1200, height: 700 },
      });
    }
  };

  const openAccount = (ownerId: string, initialDeposit?: number) => api.openAccount(ownerId, initialDeposit);

  async function signIn(key: string) {
    await page.goto(`${base}/console#/signin`);
    await page.locator('#api-key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  beforeAll(async () => {
    // A missing browser fails this suite (CI installs it): a console nobody ran in a browser is not tested.
    if (!existsSync(CHROMIUM))
      throw new Error(`No Chromium at ${CHROMIUM}: install it with 'apt-get install -y chromium' (.ci/run does), or set CHROMIUM_PATH`);
    mkdirSync(ARTIFACTS, { recursive: true });
    // The browser starts while the stack does (each takes seconds here).
    const launching = chromium.launch({ executablePath: CHROMIUM });
    launching.catch(() => undefined); // handled: awaited below
    api = await ApiStack.create('console').catch(async (error: unknown) => {
      await (await launching.catch(() => undefined))?.close();
      throw error;
    });
    const app = createApp({ ...api.deps, console: { temporalUiUrl: TEMPORAL_UI } });
    server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launching;
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    // Every status the transfer page shows, in order (to see it update live without a reload).
    await context.addInitScript(`
      window.__statuses = [];
      new MutationObserver(() => {
        const text = document.querySelector('[data-testid="transfer-status"]')?.textContent;
        if (text && window.__statuses.at(-1) !== text) window.__statuses.push(text);
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
    A1 = await openAccount('alice', 10_000);
    A2 = await openAccount('alice');
    B = await openAccount('bob');
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

  test('served by the API, offline and locked down: strict CSP, same-origin files only, nothing written as HTML', async () => {
    const res = await fetch(`${base}/console`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe');
    const html = await res.text();
    // No inline script or style, and nothing from another origin (no CDN).
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(html.match(/(?:src|href)="([^"#]+)"/g)?.every((attr) => /="\/console\//.test(attr))).toBe(true);

    const script = await fetch(`${base}/console/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect(script.headers.get('content-security-policy')).toBe(csp);
    expect(await (await fetch(`${base}/console/config.json`)).json()).toEqual({ temporalUiUrl: TEMPORAL_UI, temporalNamespace: 'default' });
    expect((await fetch(`${base}/console/nothing-here.js`)).status).toBe(404);

    // Values reach the page only as text: no HTML sinks anywhere in the console's code, no URL of another host.
    for (const file of readdirSync(CONSOLE_FILES)) {
      const text = readFileSync(path.join(CONSOLE_FILES, file), 'utf8');
      expect({ file, sinks: text.match(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/g) }).toEqual({
        file,
        sinks: null,
      });
      expect({ file, urls: text.match(/https?:\/\/(?!localhost)[a-z0-9.-]+/gi) }).toEqual({ file, urls: null });
    }
  });

  test("sign in: a bad key is refused; an operator finds an owner's accounts and opens one", async () => {
    await page.goto(`${base}/console`);
    await page.waitForURL(/#\/signin$/);
    await signIn(`tsk_${'x'.repeat(16)}_${'y'.repeat(43)}`);
    await page.getByText('This key is not valid').waitFor();
    expect(await page.evaluate('sessionStorage.length')).toBe(0);

    await signIn(TEST_OPERATOR_KEY);
    await page.getByTestId('who').filter({ hasText: 'signed in as operator' }).waitFor();
    // The key is in this tab's session storage only.
    expect(
      await page.evaluate(
        `({ session: sessionStorage.getItem('transfer-console.session')?.includes(${JSON.stringify(TEST_OPERATOR_KEY)}) ?? false, local: localStorage.length })`,
      ),
    ).toEqual({ session: true, local: 0 });

    await page.getByRole('searchbox', { name: 'Owner or account id' }).fill('alice');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/#\/accounts\?owner=alice$/);
    const rows = page.getByTestId('account-row');
    await rows.first().waitFor();
    expect((await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-account-id')))).sort()).toEqual([A1, A2].sort());
    await shot('accounts');

    await page.getByRole('link', { name: A1 }).click();
    await page.getByTestId('balance').waitFor();
    expect(await page.getByTestId('balance').getAttribute('data-minor')).toBe('10000');
    expect(await page.getByTestId('balance').textContent()).toBe('100.00 EUR');
    expect(await page.getByTestId('owner').textContent()).toBe('alice');
    await page.getByTestId('movement').first().waitFor();
    // Today's statement when the API has statements (GET /accounts/{id}/statements/{date}); no section otherwise.
    const statement = await api.http().get(`/accounts/${A1}/statements/${new Date().toISOString().slice(0, 10)}`);
    if (statement.status === 200)
      expect(await page.getByTestId('statements').getByTestId('closing-balance').locator('.money').getAttribute('data-minor')).toBe(
        String(statement.body.closingBalance),
      );
    else expect(await page.getByTestId('statements').isHidden()).toBe(true);
    await shot('account');
  });

  test('an operator deposits, then starts a transfer and watches it complete live; the saga links to the Temporal UI', async () => {
    const cash = page.getByTestId('cash-form');
    await cash.getByLabel(/Amount/).fill('500');
    await cash.getByRole('button', { name: 'Deposit' }).click();
    await page.locator('[data-testid="balance"][data-minor="10500"]').waitFor();
    expect(await page.getByTestId('balance-after').first().getAttribute('data-minor')).toBe('10500');

    const form = page.getByTestId('transfer-form');
    await form.getByLabel('To account').fill(B);
    await form.getByLabel(/Amount/).fill('2500');
    await form.getByRole('button', { name: 'Start transfer' }).click();
    await page.waitForURL(/#\/transfers\/console-/);
    transferId = decodeURIComponent(page.url().split('#/transfers/')[1]!);
    await page.getByTestId('transfer-status').filter({ hasText: 'completed' }).waitFor({ timeout: 60_000 });
    // Shown pending at once, then completed by the page's own polling: no reload in between.
    const statuses = (await page.evaluate('window.__statuses')) as string[];
    expect(statuses[0]).toBe('pending');
    expect(statuses.at(-1)).toBe('completed');
    const steps = await page.getByTestId('step').allTextContents();
    expect(steps.length).toBeGreaterThanOrEqual(3);
    expect(steps.at(-1)).toContain('completed');
    expect(await page.getByTestId('saga-link').getAttribute('href')).toBe(
      `${TEMPORAL_UI}/namespaces/default/workflows/transfer-${transferId}`,
    );
    await shot('transfer');

    // What the page showed is what happened.
    const moved = await api.http().get(`/transfers/${transferId}`);
    expect(moved.body).toMatchObject({ status: 'completed', fromAccountId: A1, toAccountId: B, amount: 2500 });
    expect(await api.stack.balance(A1)).toBe(8_000);
    expect(await api.stack.balance(B)).toBe(2_500);
  });

  test("browse the transfer's streams: its events with data and metadata, and an account stream paged both ways", async () => {
    await page.getByTestId('transfer-stream-link').click();
    await page.getByTestId('event').first().waitFor();
    const recorded = await api.store.readStream(`transfer-${transferId}`);
    expect(await page.getByTestId('event').evaluateAll((els) => els.map((e) => e.getAttribute('data-type')))).toEqual(
      recorded.map((e) => e.type),
    );
    const first = page.getByTestId('event').first();
    expect(await first.locator('pre').first().textContent()).toContain('"amount": 2500');
    expect(await first.locator('pre').nth(1).textContent()).toContain(`"correlationId"`);
    expect(await first.textContent()).toContain(recorded[0]!.recordedAt.replace('T', ' '));
    // The hash chain's verdict is shown when the API keeps one (GET /audit/verify), and absent otherwise.
    const verify = await api
      .http()
      .get('/audit/verify')
      .query({ stream: `transfer-${transferId}` });
    if (verify.status === 200)
      await page
        .getByTestId('chain')
        .filter({ hasText: verify.body.ok ? 'intact' : 'broken' })
        .waitFor();
    else expect(await page.getByTestId('chain').isHidden()).toBe(true);
    await shot('stream');

    // account-A1 (opened, deposits, the debit: four events or more), one event a page: first, next, last, previous, first.
    const events = await api.store.readStream(`account-${A1}`);
    const last = events.length - 1;
    expect(last).toBeGreaterThanOrEqual(3);
    const shown = async (revision: number) => {
      await page.locator(`[data-testid="event"][data-revision="${revision}"]`).waitFor();
      expect(await page.getByTestId('event').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-revision'))))).toEqual([
        revision,
      ]);
      expect(await page.getByTestId('event').first().getAttribute('data-type')).toBe(events[revision]!.type);
    };
    await page.goto(`${base}/console#/streams/account-${A1}?limit=1`);
    await shown(0);
    await page.getByTestId('next').first().click();
    await shown(1);
    await page.getByTestId('last').first().click();
    await shown(last);
    await page.getByTestId('previous').first().click();
    await shown(last - 1);
    await page.getByTestId('first').first().click();
    await shown(0);

    // Streams by prefix.
    await page.goto(`${base}/console#/streams?prefix=transfer-`);
    await page.locator(`[data-testid="stream-row"][data-stream="transfer-${transferId}"]`).waitFor();
    expect(await page.locator(`[data-testid="stream-row"][data-stream="account-${A1}"]`).count()).toBe(0);
  });

  test.each([
    ['the global log (GET /events) when the API has it', '#/tail', 4],
    ['polling the stream list', '#/tail?source=streams', 3],
  ])('the live tail shows a new event of the log as it is written: %s', async (_source, hash, amount) => {
    await page.goto(`${base}/console${hash}`);
    await page.getByTestId('tail-state').filter({ hasText: 'Live' }).waitFor();
    const deposit = await api.http().post(`/accounts/${B}/deposits`).send({ amount });
    expect(deposit.status).toBe(200);
    const revision = (await api.store.readStream(`account-${B}`)).at(-1)!.revision;
    await page
      .locator(`[data-testid="tail-row"][data-stream="account-${B}"][data-revision="${revision}"][data-type="MoneyDeposited"]`)
      .waitFor({ timeout: 20_000 });
    if (hash === '#/tail') await shot('tail');
  });

  test('event data is shown as text and never runs (a hostile payload in a stream)', async () => {
    const stream = `console-xss-${randomUUID().slice(0, 8)}`;
    const payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
    await api.store.appendToStream(
      stream,
      [
        {
          id: randomUUID(),
          type: 'ConsoleNote',
          data: { note: payload, '<b>key</b>': 1 },
          metadata: { correlationId: 'xss-test', comment: payload },
        },
      ],
      { expectedRevision: 'no_stream' },
    );
    await page.goto(`${base}/console#/streams/${stream}`);
    await page.getByTestId('event').first().waitFor();
    expect(await page.getByTestId('event').first().locator('pre').first().textContent()).toContain(JSON.stringify(payload).slice(1, -1));
    expect(await page.getByTestId('event').first().locator('pre').first().textContent()).toContain('"<b>key</b>": 1');
    expect(await page.getByTestId('event').first().locator('pre').nth(1).textContent()).toContain(JSON.stringify(payload).slice(1, -1));
    expect(await page.locator('main img, main script, main b').count()).toBe(0);
    expect(await page.evaluate('window.__xss')).toBeUndefined();
  });

  test('an operator reverses part of the transfer from its page', async () => {
    await page.goto(`${base}/console#/transfers/${transferId}`);
    const form = page.getByTestId('reversal-form');
    await form.getByLabel(/Amount/).fill('1000');
    await form.getByRole('button', { name: 'Reverse' }).click();
    await page.waitForURL(/#\/transfers\/reversal-/);
    await page.getByTestId('transfer-status').filter({ hasText: 'completed' }).waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('reversal-of').textContent()).toBe(transferId);
    expect(await api.stack.balance(A1)).toBe(9_000);
    // The source's page: its history, the reversal's credit first, with running balances.
    await page.getByTestId('reversal-of').waitFor();
    await page.goto(`${base}/console#/accounts/${A1}`);
    await page.locator('[data-testid="movement"] [data-testid="balance-after"][data-minor="9000"]').waitFor();
    await shot('account-history');
    expect(await api.stack.balance(B)).toBe(1_507); // 2500 + 4 + 3 (the tail tests) - 1000
  });

  test("a customer sees only its own accounts; another owner's account is refused, as the API refuses it", async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/#\/signin$/);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    await signIn(alice);
    await page.getByTestId('who').filter({ hasText: 'signed in as customer' }).waitFor();
    expect(await page.getByRole('link', { name: 'Streams' }).isHidden()).toBe(true);

    await page.getByTestId('account-row').first().waitFor();
    expect((await page.getByTestId('account-row').evaluateAll((els) => els.map((e) => e.getAttribute('data-account-id')))).sort()).toEqual(
      [A1, A2].sort(),
    );

    // Her own account: a transfer form, but no deposit form (operators only).
    await page.goto(`${base}/console#/accounts/${A1}`);
    await page.getByTestId('balance').waitFor();
    expect(await page.getByTestId('transfer-form').count()).toBe(1);
    expect(await page.getByTestId('cash-form').count()).toBe(0);

    // Bob's account: refused, exactly as one that does not exist.
    await page.goto(`${base}/console#/accounts/${B}`);
    await page.getByTestId('refused').waitFor();
    expect(await page.getByTestId('refused').textContent()).toContain('Account not found');
    expect(await page.getByTestId('balance').count()).toBe(0);
    expect((await api.as(alice).get(`/accounts/${B}`)).status).toBe(404);
    await shot('refused');

    // The stream browser is for operators.
    await page.goto(`${base}/console#/streams`);
    await page.locator('[data-testid="refused"][data-status="403"]').waitFor();
    // Her transfer to bob is hers to see.
    await page.goto(`${base}/console#/transfers/${transferId}`);
    await page.getByTestId('transfer-status').filter({ hasText: 'completed' }).waitFor();
    expect(await page.getByTestId('reversal-form').count()).toBe(0);
  });
});
