/* global window, setTimeout, URLSearchParams, FormData */
/** Transfers: the list, and a transfer with its steps, outcome, saga link and reversal, updated live while it runs. */
import { api, ApiError, consoleConfig, isOperator, newId } from './api.js';
import { badge, dl, field, fill, h, link, money, problemView, route, table, time } from './dom.js';

const TERMINAL = new Set(['completed', 'failed', 'compensated']);

/** Answers of POST /transfers, shown at once on the transfer's page before the first read. */
const started = new Map();
export function rememberTransfer(view) {
  if (view && typeof view.transferId === 'string') started.set(view.transferId, view);
}

export function transferRows(transfers, currency) {
  return table(
    ['Transfer', 'From', 'To', 'Amount', 'Status', 'Created'],
    transfers.map((t) =>
      h(
        'tr',
        { 'data-testid': 'transfer-row', 'data-transfer-id': t.transferId },
        h('td', {}, link(route('transfers', t.transferId), t.transferId, { class: 'mono' })),
        h('td', {}, link(route('accounts', t.fromAccountId), short(t.fromAccountId), { class: 'mono', title: t.fromAccountId })),
        h('td', {}, link(route('accounts', t.toAccountId), short(t.toAccountId), { class: 'mono', title: t.toAccountId })),
        h(
          'td',
          { class: 'num' },
          currency ? money(t.amount, currency) : h('span', { class: 'money', 'data-minor': String(t.amount) }, String(t.amount)),
        ),
        h('td', {}, badge(t.status)),
        h('td', {}, time(t.createdAt)),
      ),
    ),
    { class: 'list' },
  );
}

export async function transfersPage(ctx) {
  const status = ctx.query.get('status') ?? '';
  const account = ctx.query.get('account') ?? '';
  const after = ctx.query.get('after') ?? '';
  const statusSelect = h(
    'select',
    { name: 'status', 'aria-label': 'Status' },
    ['', 'pending', 'completed', 'failed', 'compensated'].map((s) => h('option', { value: s, selected: s === status }, s || 'any status')),
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
        window.location.hash = route('transfers', { status: statusSelect.value, account: accountInput.value.trim() });
      },
    },
    statusSelect,
    accountInput,
    h('button', { type: 'submit' }, 'Filter'),
  );
  const results = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  ctx.show(h('h1', {}, 'Transfers'), h('p', { class: 'muted' }, 'Oldest first. Amounts in minor units.'), form, results);
  try {
    const { data } = await api(
      `/transfers?${new URLSearchParams({ limit: '50', ...(status ? { status } : {}), ...(account ? { accountId: account } : {}), ...(after ? { after } : {}) })}`,
    );
    if (!ctx.alive()) return;
    fill(
      results,
      data.transfers.length ? transferRows(data.transfers) : h('p', { class: 'muted' }, 'No transfers.'),
      h(
        'p',
        { class: 'pager' },
        after ? link(route('transfers', { status, account }), '« First page') : null,
        data.next ? link(route('transfers', { status, account, after: data.next }), 'Next page »') : null,
      ),
    );
  } catch (error) {
    fill(results, problemView(error));
  }
}

/** The saga's page in the Temporal Web UI (TEMPORAL_UI_URL), or null when the API does not know the UI. */
async function sagaLink(transferId) {
  const config = await consoleConfig();
  if (!config.temporalUiUrl || !/^https?:\/\//i.test(config.temporalUiUrl)) return null;
  const href = `${config.temporalUiUrl}/namespaces/${encodeURIComponent(config.temporalNamespace)}/workflows/${encodeURIComponent(`transfer-${transferId}`)}`;
  return link(href, `Saga transfer-${transferId} in the Temporal UI`, {
    target: '_blank',
    rel: 'noopener noreferrer',
    'data-testid': 'saga-link',
  });
}

export async function transferPage(ctx) {
  const [id] = ctx.params;
  const status = h('p', { class: 'live muted', 'data-testid': 'live' });
  const body = h('div', {});
  ctx.show(h('h1', {}, 'Transfer ', h('span', { class: 'mono small' }, id)), status, body);
  const saga = await sagaLink(id);
  let currency;

  const draw = async (view) => {
    if (!ctx.alive()) return;
    if (currency === undefined) currency = await currencyOf(view.fromAccountId);
    if (!ctx.alive()) return;
    fill(body, transferView(view, currency, saga, ctx));
  };

  const early = started.get(id);
  started.delete(id);
  if (early) await draw(early);

  // Live: long polls (?wait=) until the saga has an outcome; a failed poll is retried after a pause.
  let view = early;
  let wait = 0;
  for (let failures = 0; ctx.alive();) {
    status.textContent = view && TERMINAL.has(view.status) ? '' : 'Running: this page updates by itself.';
    try {
      const { data } = await api(`/transfers/${encodeURIComponent(id)}${wait ? `?wait=${wait}` : ''}`);
      failures = 0;
      view = data;
      await draw(view);
      if (TERMINAL.has(view.status)) break;
      wait = 10;
    } catch (error) {
      if (!ctx.alive()) return;
      if (error instanceof ApiError && error.status === 404 && !view) {
        fill(
          body,
          h(
            'div',
            { class: 'error refused', role: 'alert', 'data-testid': 'refused', 'data-status': '404' },
            h('strong', {}, 'Transfer not found'),
            h('p', {}, `No transfer ${id} for this key: it does not exist, or neither of its accounts belongs to this key's owner.`),
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
      await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 1000 * failures)));
    }
  }
  if (ctx.alive()) status.textContent = '';
}

const currencies = new Map();
/** The currency of the transfer (its source account's), when this key may read that account. */
async function currencyOf(accountId) {
  if (!currencies.has(accountId)) {
    currencies.set(
      accountId,
      api(`/accounts/${encodeURIComponent(accountId)}`).then(
        (r) => r.data.currency,
        () => null,
      ),
    );
  }
  return currencies.get(accountId);
}

function transferView(t, currency, saga, ctx) {
  const amount = (v) =>
    currency
      ? money(v, currency, { 'data-testid': 'amount' })
      : h('span', { class: 'money', 'data-minor': String(v), 'data-testid': 'amount' }, `${v} minor units`);
  const facts = dl([
    ['Status', badge(t.status), 'transfer-status'],
    t.failureReason ? ['Failure reason', h('span', { class: 'reason' }, t.failureReason), 'failure-reason'] : null,
    ['From', link(route('accounts', t.fromAccountId), t.fromAccountId, { class: 'mono' })],
    ['To', link(route('accounts', t.toAccountId), t.toAccountId, { class: 'mono' })],
    ['Amount', amount(t.amount)],
    ['Created', time(t.createdAt)],
    ['Updated', time(t.updatedAt)],
    t.reversalOf
      ? ['Reversal of', link(route('transfers', t.reversalOf), t.reversalOf, { class: 'mono', 'data-testid': 'reversal-of' })]
      : null,
    t.reversedBy?.length
      ? [
          'Reversed by',
          h(
            'ul',
            { class: 'plain' },
            t.reversedBy.map((r) =>
              h(
                'li',
                {},
                link(route('transfers', r.reversalId), r.reversalId, { class: 'mono' }),
                ' ',
                amount(r.amount),
                r.released ? h('span', { class: 'muted' }, ' (released: nothing moved)') : null,
              ),
            ),
          ),
        ]
      : null,
  ]);
  const steps = table(
    ['#', 'Step', 'Status', 'At'],
    (t.steps ?? []).map((s, i) =>
      h(
        'tr',
        { 'data-testid': 'step' },
        h('td', { class: 'num' }, String(i + 1)),
        h('td', {}, String(s.name)),
        h('td', {}, s.status ? String(s.status) : ''),
        h('td', {}, time(s.at)),
      ),
    ),
    { class: 'list' },
  );
  return h(
    'div',
    {},
    h(
      'section',
      { class: 'card summary' },
      facts,
      h(
        'p',
        { class: 'links' },
        saga,
        isOperator()
          ? link(route('streams', `transfer-${t.transferId}`), `Event stream transfer-${t.transferId}`, {
              'data-testid': 'transfer-stream-link',
            })
          : null,
      ),
    ),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Steps'),
      (t.steps ?? []).length ? steps : h('p', { class: 'muted' }, 'No step recorded yet.'),
    ),
    isOperator() && t.status === 'completed' ? reversalForm(t, ctx) : null,
  );
}

/** A reversal (operators): a new transfer back, idempotent by its reversal id. */
function reversalForm(t, ctx) {
  const amount = field('Amount to give back (minor units; empty: all that is left)', {
    name: 'amount',
    type: 'number',
    min: '1',
    step: '1',
  });
  const message = h('div', {});
  let reversalId;
  return h(
    'form',
    {
      class: 'card',
      'data-testid': 'reversal-form',
      onsubmit: async (event) => {
        event.preventDefault();
        const value = String(new FormData(event.currentTarget).get('amount') ?? '').trim();
        reversalId = reversalId ?? newId('reversal').slice(0, 64);
        fill(message, h('p', { class: 'muted' }, 'Starting the reversal…'));
        try {
          const { data } = await api(`/transfers/${encodeURIComponent(t.transferId)}/reversal`, {
            method: 'POST',
            body: { reversalId, ...(value ? { amount: Number(value) } : {}) },
          });
          rememberTransfer(data);
          if (ctx.alive()) window.location.hash = route('transfers', data.transferId ?? reversalId);
        } catch (error) {
          if (error instanceof ApiError && error.status < 500) reversalId = undefined;
          fill(message, problemView(error));
        }
      },
    },
    h('h2', {}, 'Reverse'),
    h('p', { class: 'muted' }, 'Undo by a new transfer back from the target to the source; nothing is deleted.'),
    amount,
    h('button', { type: 'submit', class: 'danger' }, 'Reverse'),
    message,
  );
}

const short = (id) => `${String(id).slice(0, 8)}…`;
