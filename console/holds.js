/* global window, setTimeout, URLSearchParams, FormData */
/**
 * Holds (two-phase transfers, issue 25): an account's holds and the form to place one, the list of holds, and a
 * hold's page with its amounts, steps, a live countdown to its expiry, and (for operators and the source's owner) a
 * capture form and a void button. The console hides all of it when its API has no holds.
 */
import { api, ApiError, isOperator, newId } from './api.js';
import { badge, dl, field, fill, formatMoney, h, link, money, problemView, route, table, time } from './dom.js';

/** Statuses after which nothing more happens to a hold. */
const TERMINAL = new Set(['failed', 'captured', 'compensated', 'voided', 'expired']);
/** Statuses in which a capture or a void may still be asked for. */
const OPEN = new Set(['pending', 'held']);
const STATUSES = ['pending', 'held', 'capturing', 'captured', 'compensated', 'voided', 'expired', 'failed'];

/** Answers of POST /holds, shown at once on the hold's page before its first read. */
const placed = new Map();
function rememberHold(view) {
  if (view && typeof view.holdId === 'string') placed.set(view.holdId, view);
}

/** An amount in the account's currency, or in minor units when the currency is not known to this key. */
function amountOf(minor, currency, attrs = {}) {
  if (minor === undefined || minor === null) return h('span', { class: 'muted' }, '—');
  return currency
    ? money(minor, currency, attrs)
    : h('span', { class: 'money', 'data-minor': String(minor), ...attrs }, `${minor} minor units`);
}

/** The time left until `expiresAt` ("4 min 05 s"), or null once it is past. */
export function timeLeft(expiresAt, now = Date.now()) {
  const end = Date.parse(String(expiresAt));
  if (Number.isNaN(end)) return null;
  const total = Math.ceil((end - now) / 1000);
  if (total <= 0) return null;
  const d = Math.floor(total / 86_400);
  const hours = Math.floor((total % 86_400) / 3600);
  const min = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => String(n).padStart(2, '0');
  if (d) return `${d} d ${hours} h ${pad(min)} min`;
  if (hours) return `${hours} h ${pad(min)} min ${pad(s)} s`;
  if (min) return `${min} min ${pad(s)} s`;
  return `${s} s`;
}

export function holdRows(holds, currency) {
  return table(
    ['Hold', 'From', 'To', 'Amount', 'Captured', 'Status', 'Expires'],
    holds.map((x) =>
      h(
        'tr',
        { 'data-testid': 'hold-row', 'data-hold-id': x.holdId, 'data-status': String(x.status) },
        h('td', {}, link(route('holds', x.holdId), x.holdId, { class: 'mono' })),
        h('td', {}, link(route('accounts', x.fromAccountId), short(x.fromAccountId), { class: 'mono', title: x.fromAccountId })),
        h('td', {}, link(route('accounts', x.toAccountId), short(x.toAccountId), { class: 'mono', title: x.toAccountId })),
        h('td', { class: 'num' }, amountOf(x.amount, x.currency ?? currency)),
        h('td', { class: 'num' }, x.captured === undefined ? '' : amountOf(x.captured, x.currency ?? currency)),
        h('td', {}, badge(x.status)),
        h('td', {}, time(x.expiresAt)),
      ),
    ),
    { class: 'list' },
  );
}

/**
 * The account page's holds (from or to it): answers false, drawing nothing, when this API has no holds (or not for
 * this key), so the page can leave the holds out.
 */
export async function loadAccountHolds(ctx, account, section) {
  try {
    const { data } = await api(`/holds?${new URLSearchParams({ accountId: account.accountId, limit: '20' })}`);
    if (!ctx.alive()) return true;
    const holds = Array.isArray(data?.holds) ? data.holds : [];
    fill(
      section,
      h('h2', {}, 'Holds'),
      h(
        'p',
        { class: 'muted' },
        'Money reserved from or for this account, captured later or released. ',
        link(route('holds', { account: account.accountId }), 'All of them'),
      ),
      holds.length ? holdRows(holds, account.currency) : h('p', { class: 'muted', 'data-testid': 'no-holds' }, 'No holds.'),
    );
    section.hidden = false;
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.unavailable) return false;
    if (!ctx.alive()) return true;
    fill(section, h('h2', {}, 'Holds'), problemView(error));
    section.hidden = false;
    return true;
  }
}

/** Seconds in each unit of the "expires in" field. */
const UNITS = [
  ['seconds', 1],
  ['minutes', 60],
  ['hours', 3600],
  ['days', 86_400],
];

/**
 * Places a hold from this account. The hold's id is made here and kept for a retry of the same submission (the API
 * answers the same hold). `placedHold(view)` is called with the API's answer.
 */
export function holdForm(account, placedHold) {
  const to = field('To account', {
    name: 'toAccountId',
    required: true,
    placeholder: 'account id',
    autocomplete: 'off',
    pattern: '[0-9a-fA-F\\-]{36}',
  });
  const amount = field(`Amount (minor units of ${account.currency})`, {
    name: 'amount',
    type: 'number',
    min: '1',
    step: '1',
    required: true,
  });
  const expiresIn = h('input', {
    name: 'expiresIn',
    type: 'number',
    min: '1',
    step: '1',
    placeholder: 'the API’s default',
    'aria-label': 'Expires in',
  });
  const unit = h(
    'select',
    { name: 'unit', 'aria-label': 'Expiry unit' },
    UNITS.map(([name]) => h('option', { value: name, selected: name === 'minutes' }, name)),
  );
  const message = h('div', { 'data-testid': 'hold-form-message' });
  let pendingId;
  let pendingBody;
  return h(
    'form',
    {
      class: 'card',
      'data-testid': 'hold-form',
      onsubmit: async (event) => {
        event.preventDefault();
        const values = Object.fromEntries(new FormData(event.currentTarget));
        const seconds = String(values.expiresIn ?? '').trim()
          ? Number(values.expiresIn) * (UNITS.find(([name]) => name === values.unit)?.[1] ?? 1)
          : undefined;
        const body = {
          fromAccountId: account.accountId,
          toAccountId: String(values.toAccountId).trim(),
          amount: Number(values.amount),
          ...(seconds !== undefined ? { expiresIn: seconds } : {}),
        };
        // The same id for a retry of the same submission (a lost answer): the API answers the same hold.
        if (!pendingId || JSON.stringify(body) !== pendingBody) pendingId = newId('hold');
        pendingBody = JSON.stringify(body);
        fill(message, h('p', { class: 'muted' }, 'Placing the hold…'));
        try {
          // Prefer: wait lets the API answer once the reservation is placed or refused (else 202 with a pending hold).
          const { data } = await api('/holds', { method: 'POST', headers: { Prefer: 'wait=10' }, body: { holdId: pendingId, ...body } });
          pendingId = undefined;
          rememberHold(data);
          placedHold(data, message);
        } catch (error) {
          if (error instanceof ApiError && error.status < 500) pendingId = undefined;
          fill(message, problemView(error, { what: 'Account' }));
        }
      },
    },
    h('h2', {}, 'Place a hold'),
    h(
      'p',
      { class: 'muted' },
      `Reserve money of this account (${account.currency}) for another: captured later in full or in part, voided, or released by itself when it expires.`,
    ),
    to,
    amount,
    h('label', { class: 'field' }, h('span', {}, 'Expires in (optional)'), h('span', { class: 'pair' }, expiresIn, unit)),
    h('button', { type: 'submit' }, 'Place hold'),
    message,
  );
}

/**
 * After a hold is placed from the account page: follows it until its reservation is decided, then until the
 * account's read model shows it (its revision moves), and redraws the page. `redraw()` re-renders the account page.
 */
export async function followPlacedHold(ctx, account, view, message, redraw) {
  const id = view.holdId;
  const say = (...text) =>
    fill(
      message,
      h('p', { 'data-testid': 'hold-placed' }, ...text, ' ', link(route('holds', id), `Open hold ${id}`, { 'data-testid': 'hold-link' })),
    );
  let hold = view;
  say('Hold ', badge(hold.status), ' ');
  for (let i = 0; ctx.alive() && hold.status === 'pending' && i < 60; i += 1) {
    await pause(500);
    try {
      hold = (await api(`/holds/${encodeURIComponent(id)}`)).data;
    } catch {
      // a read failing for a moment: try again
    }
  }
  if (!ctx.alive()) return;
  say('Hold ', badge(hold.status), hold.failureReason ? ` (${hold.failureReason})` : '', ' ');
  if (hold.status === 'failed' || hold.status === 'pending') return;
  // The reservation is written on the account; its read model follows shortly.
  for (let i = 0; ctx.alive() && i < 40; i += 1) {
    try {
      const { data } = await api(`/accounts/${encodeURIComponent(account.accountId)}`);
      if (data.revision !== account.revision || data.held !== account.held) break;
    } catch {
      // try again
    }
    await pause(500);
  }
  if (ctx.alive()) redraw(hold);
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** GET /holds: all holds (operators), or an account's, filtered by status. */
export async function holdsPage(ctx) {
  const status = ctx.query.get('status') ?? '';
  const account = ctx.query.get('account') ?? '';
  const after = ctx.query.get('after') ?? '';
  const statusSelect = h(
    'select',
    { name: 'status', 'aria-label': 'Status' },
    ['', ...STATUSES].map((s) => h('option', { value: s, selected: s === status }, s || 'any status')),
  );
  const accountInput = h('input', {
    name: 'account',
    type: 'search',
    value: account,
    placeholder: 'account id (from or to)',
    'aria-label': 'Account id',
  });
  const form = h(
    'form',
    {
      class: 'inline',
      onsubmit: (event) => {
        event.preventDefault();
        window.location.hash = route('holds', { status: statusSelect.value, account: accountInput.value.trim() });
      },
    },
    statusSelect,
    accountInput,
    h('button', { type: 'submit' }, 'Filter'),
  );
  const results = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  ctx.show(h('h1', {}, 'Holds'), h('p', { class: 'muted' }, 'Amounts in minor units.'), form, results);
  try {
    const { data } = await api(
      `/holds?${new URLSearchParams({ limit: '50', ...(status ? { status } : {}), ...(account ? { accountId: account } : {}), ...(after ? { after } : {}) })}`,
    );
    if (!ctx.alive()) return;
    const holds = Array.isArray(data?.holds) ? data.holds : [];
    fill(
      results,
      holds.length ? holdRows(holds) : h('p', { class: 'muted' }, 'No holds.'),
      h(
        'p',
        { class: 'pager' },
        after ? link(route('holds', { status, account }), '« First page') : null,
        data?.next ? link(route('holds', { status, account, after: data.next }), 'Next page »') : null,
      ),
    );
  } catch (error) {
    fill(results, problemView(error));
  }
}

/** An account as this key may read it, or null (another owner's, for a customer). */
async function readAccount(accountId) {
  try {
    return (await api(`/accounts/${encodeURIComponent(accountId)}`)).data;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 403)) return null;
    throw error;
  }
}

/**
 * A hold's page: drawn from the API's view, read again every second or two until the hold is finished; the countdown
 * to its expiry is redrawn every second while the page is open.
 */
export async function holdPage(ctx) {
  const [id] = ctx.params;
  const status = h('p', { class: 'live muted', 'data-testid': 'live' });
  const body = h('div', {});
  const accounts = h('section', { class: 'card', 'data-testid': 'hold-accounts' });
  ctx.show(h('h1', {}, 'Hold ', h('span', { class: 'mono small' }, id)), status, body);

  let view = placed.get(id);
  placed.delete(id);
  /** The source account as this key reads it (null: not this key's), loaded once: its currency and who may act. */
  let source;
  let drawn = '';
  const countdowns = [];
  let busy = false;

  const refreshAccounts = async (hold) => {
    // null: not this key's to read; undefined: the read failed.
    const [from, to] = await Promise.all([hold.fromAccountId, hold.toAccountId].map((a) => readAccount(a).catch(() => undefined)));
    if (!ctx.alive()) return;
    const row = (label, accountId, a, testid) =>
      h(
        'tr',
        { 'data-testid': testid, 'data-account-id': accountId },
        h('td', {}, label),
        h('td', {}, link(route('accounts', accountId), accountId, { class: 'mono' })),
        h(
          'td',
          { class: 'num' },
          a
            ? money(a.balance, a.currency, { 'data-testid': 'balance' })
            : h('span', { class: 'muted' }, a === null ? 'not yours to see' : 'could not be read'),
        ),
        h('td', { class: 'num' }, a && a.held !== undefined ? money(a.held, a.currency, { 'data-testid': 'held' }) : ''),
        h('td', { class: 'num' }, a && a.available !== undefined ? money(a.available, a.currency, { 'data-testid': 'available' }) : ''),
      );
    fill(
      accounts,
      h('h2', {}, 'Accounts'),
      h(
        'p',
        { class: 'muted' },
        'As the read models show them now (they follow a capture or a release shortly). ',
        h(
          'button',
          { type: 'button', class: 'link', 'data-testid': 'refresh-accounts', onclick: () => void refreshAccounts(hold) },
          'Refresh',
        ),
      ),
      table(
        ['', 'Account', 'Balance', 'Held', 'Available'],
        [row('From', hold.fromAccountId, from, 'hold-from'), row('To', hold.toAccountId, to, 'hold-to')],
        { class: 'list' },
      ),
    );
  };

  const draw = (hold) => {
    if (!ctx.alive()) return;
    const currency = hold.currency ?? source?.currency;
    const mayAct = OPEN.has(hold.status) && (isOperator() || Boolean(source));
    countdowns.length = 0;
    const countdown = h('span', { 'data-testid': 'countdown', 'data-expires-at': String(hold.expiresAt ?? '') });
    countdowns.push({ el: countdown, hold });
    tick();
    const remaining = hold.amount - (hold.captured ?? 0) - (hold.released ?? 0);
    const facts = dl([
      ['Status', badge(hold.status), 'hold-status'],
      hold.failureReason ? ['Failure reason', h('span', { class: 'reason' }, String(hold.failureReason)), 'failure-reason'] : null,
      ['From', link(route('accounts', hold.fromAccountId), hold.fromAccountId, { class: 'mono', 'data-testid': 'hold-from-link' })],
      ['To', link(route('accounts', hold.toAccountId), hold.toAccountId, { class: 'mono', 'data-testid': 'hold-to-link' })],
      ['Amount held', amountOf(hold.amount, currency, { 'data-testid': 'hold-amount' })],
      ['Captured', amountOf(hold.captured, currency, { 'data-testid': 'hold-captured' })],
      ['Released', amountOf(hold.released, currency, { 'data-testid': 'hold-released' })],
      OPEN.has(hold.status) || hold.status === 'capturing'
        ? ['Still reserved', amountOf(remaining, currency, { 'data-testid': 'hold-remaining' })]
        : null,
      ['Expires at', time(hold.expiresAt)],
      ['Expires in', countdown],
    ]);
    const steps = Array.isArray(hold.steps) ? hold.steps : [];
    fill(
      body,
      h(
        'section',
        { class: 'card summary' },
        facts,
        h(
          'p',
          { class: 'links' },
          hold.status === 'captured' || hold.status === 'compensated' || hold.status === 'capturing'
            ? link(route('transfers', hold.holdId), `Its capture: transfer ${hold.holdId}`, { 'data-testid': 'capture-transfer-link' })
            : null,
          isOperator()
            ? link(route('streams', `hold-${hold.holdId}`), `Event stream hold-${hold.holdId}`, { 'data-testid': 'hold-stream-link' })
            : null,
        ),
      ),
      mayAct ? actions(hold, currency, remaining) : null,
      accounts,
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Steps'),
        steps.length
          ? table(
              ['#', 'Step', 'Status', 'At', 'Detail'],
              steps.map((s, i) =>
                h(
                  'tr',
                  { 'data-testid': 'hold-step' },
                  h('td', { class: 'num' }, String(i + 1)),
                  h('td', {}, String(s.name)),
                  h('td', {}, s.status ? String(s.status) : ''),
                  h('td', {}, time(s.at)),
                  h(
                    'td',
                    {},
                    s.detail === undefined || s.detail === null ? '' : typeof s.detail === 'string' ? s.detail : JSON.stringify(s.detail),
                  ),
                ),
              ),
              { class: 'list' },
            )
          : h('p', { class: 'muted' }, 'No step recorded yet.'),
      ),
    );
  };

  /** The countdown's text, every second while the page is open. */
  function tick() {
    for (const { el, hold } of countdowns) {
      const left = timeLeft(hold.expiresAt);
      const text =
        hold.status === 'expired' || (left === null && OPEN.has(hold.status))
          ? 'expired'
          : TERMINAL.has(hold.status) || hold.status === 'capturing'
            ? `— (${hold.status})`
            : left;
      el.textContent = text ?? 'expired';
      el.className = text === 'expired' ? 'countdown expired' : 'countdown';
    }
  }
  const ticking = () => {
    if (!ctx.alive()) return;
    tick();
    setTimeout(ticking, 1000 - (Date.now() % 1000) + 5);
  };
  ticking();

  /** The capture form and the void button (operators, the source's owner), while the hold is open. */
  function actions(hold, currency, remaining) {
    const all = currency ? formatMoney(remaining, currency) : `${remaining}`;
    const amount = field(`Amount to capture (minor units${currency ? ` of ${currency}` : ''}; empty: all of it, ${all})`, {
      name: 'amount',
      type: 'number',
      min: '1',
      step: '1',
    });
    const out = h('div', { 'data-testid': 'hold-action-message' });
    const send = async (what, form) => {
      if (busy) return;
      const value = what === 'capture' ? String(new FormData(form).get('amount') ?? '').trim() : '';
      busy = true;
      for (const b of form.querySelectorAll('button')) b.disabled = true;
      fill(out, h('p', { class: 'muted' }, what === 'capture' ? 'Capturing…' : 'Voiding…'));
      try {
        // Idempotent by the hold's id: a repeat answers what the first answered (no key needed).
        const { data } = await api(`/holds/${encodeURIComponent(hold.holdId)}/${what}`, {
          method: 'POST',
          body: what === 'capture' && value ? { amount: Number(value) } : {},
        });
        busy = false;
        if (!ctx.alive()) return;
        view = data;
        drawn = JSON.stringify(data);
        draw(data);
        void refreshAccounts(data);
        wake();
      } catch (error) {
        busy = false;
        if (!ctx.alive()) return;
        for (const b of form.querySelectorAll('button')) b.disabled = false;
        fill(out, problemView(error));
      }
    };
    const form = h(
      'form',
      { class: 'card', 'data-testid': 'hold-actions', onsubmit: (event) => event.preventDefault() },
      h('h2', {}, 'Capture or void'),
      h(
        'p',
        { class: 'muted' },
        'A capture moves the amount to the target (what is left goes back to the source); a void releases it all.',
      ),
      amount,
      h(
        'div',
        { class: 'buttons' },
        h('button', { type: 'button', 'data-action': 'capture', onclick: () => void send('capture', form) }, 'Capture'),
        h('button', { type: 'button', class: 'danger', 'data-action': 'void', onclick: () => void send('void', form) }, 'Void'),
      ),
      out,
    );
    return form;
  }

  // Live: read again while the hold is not finished (every second while something is in flight, else every 2 s).
  let wakeUp = () => undefined;
  const wake = () => wakeUp();
  const sleep = (ms) =>
    new Promise((resolve) => {
      wakeUp = resolve;
      setTimeout(resolve, ms);
    });
  let first = true;
  for (let failures = 0; ctx.alive();) {
    status.textContent = view && TERMINAL.has(view.status) ? '' : 'Open: this page updates by itself.';
    try {
      if (!first || !view) view = (await api(`/holds/${encodeURIComponent(id)}`)).data;
      if (!ctx.alive()) return;
      failures = 0;
      if (first) {
        source = await readAccount(view.fromAccountId).catch(() => null);
        if (!ctx.alive()) return;
      }
      const text = JSON.stringify(view);
      // Redrawn only when the hold changed (and never under a capture or void being sent: its form stays).
      if (text !== drawn && !busy) {
        drawn = text;
        draw(view);
        void refreshAccounts(view);
      }
      first = false;
      if (TERMINAL.has(view.status)) break;
    } catch (error) {
      if (!ctx.alive()) return;
      if (error instanceof ApiError && error.status === 404 && !view) {
        fill(
          body,
          h(
            'div',
            { class: 'error refused', role: 'alert', 'data-testid': 'refused', 'data-status': '404' },
            h('strong', {}, 'Hold not found'),
            h('p', {}, `No hold ${id} for this key: it does not exist, or neither of its accounts belongs to this key's owner.`),
          ),
        );
        return;
      }
      if (error instanceof ApiError && error.status < 500 && error.status !== 429) {
        fill(body, problemView(error));
        return;
      }
      failures += 1;
      status.textContent = `Could not reach the API (${error instanceof Error ? error.message : String(error)}); retrying…`;
    }
    await sleep(
      failures ? Math.min(10_000, 1000 * failures) : view && (view.status === 'held' || view.status === 'pending') && !busy ? 2000 : 1000,
    );
  }
  if (ctx.alive()) status.textContent = '';
}

const short = (id) => `${String(id).slice(0, 8)}…`;
