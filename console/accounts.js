/* global window, URLSearchParams, FormData */
/** Accounts: search by owner or id; an account with its history, statements, forms and transfers. */
import { api, ApiError, isOperator, newId } from './api.js';
import { badge, dl, field, fill, h, isUuid, json, link, money, problemView, route, table, time } from './dom.js';
import { followPlacedHold, holdForm, loadAccountHolds } from './holds.js';
import { rememberTransfer, transferRows } from './transfers.js';

export async function accountsPage(ctx) {
  const owner = ctx.query.get('owner') ?? '';
  const after = ctx.query.get('after') ?? '';
  const search = h('input', {
    name: 'q',
    type: 'search',
    value: owner,
    placeholder: isOperator() ? 'owner id (e.g. alice) or account id' : 'account id',
    'aria-label': 'Owner or account id',
  });
  const form = h(
    'form',
    {
      class: 'inline',
      role: 'search',
      onsubmit: (event) => {
        event.preventDefault();
        const q = search.value.trim();
        window.location.hash = isUuid(q) ? route('accounts', q) : route('accounts', { owner: q });
      },
    },
    search,
    h('button', { type: 'submit' }, 'Search'),
  );
  const title = owner ? `Accounts of ${owner}` : isOperator() ? 'All accounts' : 'Your accounts';
  const results = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  ctx.show(h('h1', {}, title), form, results);
  try {
    const { data } = await api(
      `/accounts?${new URLSearchParams({ limit: '50', ...(owner ? { ownerId: owner } : {}), ...(after ? { after } : {}) })}`,
    );
    if (!ctx.alive()) return;
    fill(
      results,
      data.accounts.length === 0
        ? h('p', { class: 'muted', 'data-testid': 'no-accounts' }, owner ? `No accounts of ${owner} for this key.` : 'No accounts.')
        : table(
            ['Account', 'Owner', 'Balance', 'Status', 'Updated'],
            data.accounts.map((a) =>
              h(
                'tr',
                { 'data-testid': 'account-row', 'data-account-id': a.accountId },
                h('td', {}, link(route('accounts', a.accountId), a.accountId, { class: 'mono' })),
                h('td', {}, a.ownerId),
                h('td', { class: 'num' }, money(a.balance, a.currency)),
                h('td', {}, badge(a.status)),
                h('td', {}, time(a.updatedAt)),
              ),
            ),
            { class: 'list' },
          ),
      h(
        'p',
        { class: 'pager' },
        after ? link(route('accounts', { owner }), '« First page') : null,
        data.next ? link(route('accounts', { owner, after: data.next }), 'Next page »', { 'data-testid': 'next-page' }) : null,
      ),
    );
  } catch (error) {
    fill(results, problemView(error));
  }
}

/** Positions written by this page's own writes, per account: its next reads wait for them (read-your-writes). */
const written = new Map();
/** A hold just placed from an account's page, shown on its next drawing. */
const placedHolds = new Map();

export async function accountPage(ctx) {
  const [id] = ctx.params;
  const minPosition = written.get(id);
  let account;
  try {
    account = (await api(`/accounts/${encodeURIComponent(id)}${minPosition ? `?${new URLSearchParams({ minPosition })}` : ''}`)).data;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      ctx.show(
        h('h1', {}, 'Account'),
        h(
          'div',
          { class: 'error refused', role: 'alert', 'data-testid': 'refused', 'data-status': '404' },
          h('strong', {}, 'Account not found'),
          h('p', {}, `No account ${id} for this key: it does not exist, or it belongs to another owner.`),
        ),
      );
      return;
    }
    ctx.show(h('h1', {}, 'Account'), problemView(error));
    return;
  }
  const refresh = (position) => {
    if (position) written.set(id, position);
    if (ctx.alive()) void accountPage(ctx);
  };
  const currency = account.currency;
  const summary = h(
    'section',
    { class: 'card summary' },
    h('div', { class: 'big' }, money(account.balance, currency, { 'data-testid': 'balance' }), ' ', badge(account.status)),
    // Held and available (balance - held) when this API has holds: absent from its answer otherwise.
    account.held !== undefined || account.available !== undefined
      ? h(
          'p',
          { class: 'reserved', 'data-testid': 'reserved' },
          account.held !== undefined ? ['Held ', money(account.held, currency, { 'data-testid': 'held' })] : null,
          account.held !== undefined && account.available !== undefined ? ' · ' : null,
          account.available !== undefined ? ['Available ', money(account.available, currency, { 'data-testid': 'available' })] : null,
        )
      : null,
    dl([
      ['Account', h('span', { class: 'mono' }, account.accountId), 'account-id'],
      ['Owner', account.ownerId, 'owner'],
      ['Currency', currency],
      ['Revision', String(account.revision)],
      ['Updated', time(account.updatedAt)],
    ]),
    isOperator()
      ? h(
          'p',
          {},
          link(route('streams', `account-${account.accountId}`), `Event stream account-${account.accountId}`, {
            'data-testid': 'account-stream-link',
          }),
        )
      : null,
  );

  // A hold placed here: the page follows it until the account shows its reservation, then draws itself again.
  const hold =
    account.status === 'open'
      ? holdForm(account, (view, message) =>
          followPlacedHold(ctx, account, view, message, (settled) => {
            placedHolds.set(id, settled);
            refresh();
          }),
        )
      : null;
  const placed = placedHolds.get(id);
  placedHolds.delete(id);
  if (hold) hold.hidden = true; // until GET /holds answers: an API without holds shows no hold form
  const forms = h(
    'div',
    { class: 'grid' },
    transferForm(account),
    hold,
    isOperator() ? cashForm(account, refresh) : null,
    balanceAsOfForm(account),
  );
  const history = h('section', { class: 'card' }, h('h2', {}, 'History'), h('p', { class: 'muted' }, 'Loading…'));
  const statements = h('section', { class: 'card', hidden: true, 'data-testid': 'statements' });
  const holds = h('section', { class: 'card', hidden: true, 'data-testid': 'account-holds' });
  const transfers = h('section', { class: 'card' }, h('h2', {}, 'Transfers'), h('p', { class: 'muted' }, 'Loading…'));
  ctx.show(
    h('h1', {}, 'Account ', h('span', { class: 'mono small' }, account.accountId)),
    summary,
    placed
      ? h(
          'p',
          { class: 'notice', 'data-testid': 'hold-placed' },
          'Hold placed: ',
          badge(placed.status),
          ' ',
          link(route('holds', placed.holdId), `Open hold ${placed.holdId}`, { 'data-testid': 'hold-link' }),
        )
      : null,
    history,
    forms,
    statements,
    holds,
    transfers,
  );

  void loadHistory(ctx, account, history, minPosition);
  void loadAccountTransfers(ctx, account, transfers);
  void loadStatements(ctx, account, statements);
  void loadAccountHolds(ctx, account, holds).then((available) => {
    if (hold && available && ctx.alive()) hold.hidden = false;
  });
}

async function loadHistory(ctx, account, section, minPosition) {
  const rows = h('tbody', {});
  const more = h('p', { class: 'pager' });
  const load = async (cursor) => {
    try {
      const { data } = await api(
        `/accounts/${encodeURIComponent(account.accountId)}/history?${new URLSearchParams({ limit: '20', ...(cursor ? { cursor } : {}), ...(minPosition ? { minPosition } : {}) })}`,
      );
      if (!ctx.alive()) return;
      for (const m of data.movements) {
        rows.append(
          h(
            'tr',
            { 'data-testid': 'movement', 'data-revision': String(m.revision) },
            h('td', { class: 'num' }, String(m.revision)),
            h('td', {}, time(m.occurredAt)),
            h('td', {}, time(m.recordedAt)),
            h('td', {}, m.kind),
            h('td', { class: 'num' }, money(m.amount, account.currency)),
            h('td', { class: 'num' }, money(m.balanceAfter, account.currency, { 'data-testid': 'balance-after' })),
            h('td', {}, m.transferId ? link(route('transfers', m.transferId), m.transferId, { class: 'mono' }) : ''),
            h(
              'td',
              {},
              m.counterpartAccountId
                ? link(route('accounts', m.counterpartAccountId), short(m.counterpartAccountId), {
                    class: 'mono',
                    title: m.counterpartAccountId,
                  })
                : '',
            ),
          ),
        );
      }
      fill(
        more,
        data.nextCursor
          ? h('button', { type: 'button', class: 'link', onclick: () => void load(data.nextCursor) }, 'Older movements')
          : null,
      );
      if (!rows.children.length) rows.append(h('tr', {}, h('td', { colspan: '8', class: 'muted' }, 'No movements yet.')));
    } catch (error) {
      fill(more, problemView(error));
    }
  };
  fill(
    section,
    h('h2', {}, 'History'),
    h('p', { class: 'muted' }, 'Newest first; the balance after each movement is the running balance.'),
    h(
      'table',
      { class: 'list' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Rev', 'Happened', 'Recorded', 'Kind', 'Amount', 'Balance after', 'Transfer', 'Counterpart'].map((x) => h('th', {}, x)),
        ),
      ),
      rows,
    ),
    more,
  );
  await load(undefined);
}

async function loadAccountTransfers(ctx, account, section) {
  const body = h('div', {});
  fill(
    section,
    h('h2', {}, 'Transfers'),
    h(
      'p',
      { class: 'muted' },
      'From or to this account, oldest first. ',
      link(route('transfers', { account: account.accountId }), 'All of them'),
    ),
    body,
  );
  try {
    const { data } = await api(`/transfers?${new URLSearchParams({ accountId: account.accountId, limit: '20' })}`);
    if (!ctx.alive()) return;
    fill(body, data.transfers.length ? transferRows(data.transfers, account.currency) : h('p', { class: 'muted' }, 'No transfers yet.'));
  } catch (error) {
    fill(body, problemView(error));
  }
}

/** Statements by business day (and their corrections), when this API has them: hidden otherwise. */
async function loadStatements(ctx, account, section) {
  const today = new Date().toISOString().slice(0, 10);
  const date = h('input', { type: 'date', name: 'date', value: today, required: true });
  const result = h('div', {});
  const show = async (day) => {
    try {
      const { data } = await api(`/accounts/${encodeURIComponent(account.accountId)}/statements/${encodeURIComponent(day)}`);
      if (!ctx.alive()) return true;
      fill(result, statementView(data, account.currency));
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.unavailable) return false;
      fill(result, problemView(error));
      return true;
    }
  };
  if (!(await show(today)) || !ctx.alive()) return;
  fill(
    section,
    h('h2', {}, 'Statement'),
    h(
      'form',
      {
        class: 'inline',
        onsubmit: (event) => {
          event.preventDefault();
          void show(date.value);
        },
      },
      h('label', { class: 'field' }, h('span', {}, 'Business day'), date),
      h('button', { type: 'submit' }, 'Show'),
    ),
    result,
  );
  section.hidden = false;
}

function statementView(s, currency) {
  const amount = (v) => (typeof v === 'number' ? money(v, currency) : null);
  const lines = Array.isArray(s.movements) ? s.movements : [];
  const corrections = Array.isArray(s.corrections) ? s.corrections : [];
  return h(
    'div',
    {},
    dl([
      s.date ? ['Day', String(s.date)] : null,
      s.status || s.closed !== undefined ? ['Status', String(s.status ?? (s.closed ? 'closed' : 'open'))] : null,
      s.closedAt ? ['Closed (published)', time(s.closedAt)] : null,
      s.openingBalance !== undefined ? ['Opening balance', amount(s.openingBalance)] : null,
      s.closingBalance !== undefined ? ['Closing balance', amount(s.closingBalance), 'closing-balance'] : null,
      corrections.length && s.correctedOpeningBalance !== undefined
        ? ['Corrected opening balance', amount(s.correctedOpeningBalance)]
        : null,
      corrections.length && s.correctedClosingBalance !== undefined
        ? ['Corrected closing balance', amount(s.correctedClosingBalance), 'corrected-closing-balance']
        : null,
      s.belowZero ? ['Note', h('span', { class: 'flag' }, 'the business-time running balance dips below zero this day')] : null,
    ]),
    lines.length
      ? table(
          ['Happened', 'Kind', 'Amount', 'Running balance', 'Recorded'],
          lines.map((m) =>
            h(
              'tr',
              { class: m.belowZero ? 'flag' : '', 'data-testid': 'statement-line' },
              h('td', {}, time(m.occurredAt)),
              h('td', {}, String(m.kind ?? m.type ?? '')),
              h('td', { class: 'num' }, amount(m.amount)),
              h('td', { class: 'num' }, amount(m.balanceAfter ?? m.runningBalance)),
              h('td', {}, time(m.recordedAt)),
            ),
          ),
          { class: 'list' },
        )
      : h('p', { class: 'muted' }, 'No movements that day.'),
    corrections.length
      ? [
          h('h3', {}, 'Corrections (late records for this closed day)'),
          table(
            ['Happened', 'Recorded', 'Kind', 'Amount'],
            corrections.map((c) =>
              h(
                'tr',
                { 'data-testid': 'correction' },
                h('td', {}, time(c.occurredAt)),
                h('td', {}, time(c.recordedAt)),
                h('td', {}, String(c.kind ?? c.type ?? '')),
                h('td', { class: 'num' }, amount(c.amount)),
              ),
            ),
            { class: 'list' },
          ),
        ]
      : null,
    h('details', {}, h('summary', {}, 'As the API answered'), json(s)),
  );
}

/** A transfer from this account: starts the saga, then its page follows it live. */
function transferForm(account) {
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
  const transferId = field('Transfer id (optional: your idempotency key)', {
    name: 'transferId',
    autocomplete: 'off',
    placeholder: 'made for you',
  });
  const message = h('div', {});
  let pendingId;
  return h(
    'form',
    {
      class: 'card',
      'data-testid': 'transfer-form',
      onsubmit: async (event) => {
        event.preventDefault();
        const form = event.currentTarget;
        const values = Object.fromEntries(new FormData(form));
        // The same id for a retry of the same submission: the API answers the same transfer.
        pendingId = values.transferId?.trim() || pendingId || newId('console');
        fill(message, h('p', { class: 'muted' }, 'Starting…'));
        try {
          const body = {
            transferId: pendingId,
            fromAccountId: account.accountId,
            toAccountId: String(values.toAccountId).trim(),
            amount: Number(values.amount),
          };
          const { data } = await api('/transfers', { method: 'POST', body });
          rememberTransfer(data);
          const id = pendingId;
          pendingId = undefined;
          window.location.hash = route('transfers', id);
        } catch (error) {
          if (error instanceof ApiError && error.status < 500) pendingId = undefined;
          fill(message, problemView(error));
        }
      },
    },
    h('h2', {}, 'Transfer'),
    h('p', { class: 'muted' }, `From this account (${account.currency}).`),
    to,
    amount,
    transferId,
    h('button', { type: 'submit' }, 'Start transfer'),
    message,
  );
}

/** Deposits and withdrawals (operators), each with an Idempotency-Key: a retried click writes nothing twice. */
function cashForm(account, refresh) {
  const amount = field(`Amount (minor units of ${account.currency})`, {
    name: 'amount',
    type: 'number',
    min: '1',
    step: '1',
    required: true,
  });
  const happened = field('Happened at (optional, your local time: a late record)', {
    name: 'occurredAt',
    type: 'datetime-local',
    step: '1',
  });
  const message = h('div', {});
  let key;
  const submit = async (kind, form) => {
    if (!form.reportValidity()) return;
    const values = new FormData(form);
    const occurredAt = String(values.get('occurredAt') ?? '') ? new Date(String(values.get('occurredAt'))).toISOString() : undefined;
    key = key ?? newId(kind);
    fill(message, h('p', { class: 'muted' }, 'Sending…'));
    try {
      const { data } = await api(`/accounts/${encodeURIComponent(account.accountId)}/${kind}`, {
        method: 'POST',
        headers: { 'Idempotency-Key': key },
        body: { amount: Number(values.get('amount')), ...(occurredAt ? { occurredAt } : {}) },
      });
      key = undefined;
      refresh(data?.position);
    } catch (error) {
      if (error instanceof ApiError && error.status < 500) key = undefined;
      fill(message, problemView(error));
    }
  };
  const form = h(
    'form',
    { class: 'card', 'data-testid': 'cash-form', onsubmit: (event) => event.preventDefault() },
    h('h2', {}, 'Deposit or withdraw'),
    h('p', { class: 'muted' }, 'Operators only.'),
    amount,
    happened,
    h(
      'div',
      { class: 'buttons' },
      h('button', { type: 'button', 'data-action': 'deposit', onclick: () => void submit('deposits', form) }, 'Deposit'),
      h(
        'button',
        { type: 'button', class: 'secondary', 'data-action': 'withdraw', onclick: () => void submit('withdrawals', form) },
        'Withdraw',
      ),
    ),
    message,
  );
  return form;
}

/** The audit question: the balance at a moment (folded from the account's events). */
function balanceAsOfForm(account) {
  const at = field('At (your local time)', { name: 'asOf', type: 'datetime-local', step: '1', required: true });
  const result = h('div', { 'data-testid': 'balance-as-of' });
  return h(
    'form',
    {
      class: 'card',
      onsubmit: async (event) => {
        event.preventDefault();
        const value = new FormData(event.currentTarget).get('asOf');
        const asOf = new Date(String(value)).toISOString();
        try {
          const { data } = await api(`/accounts/${encodeURIComponent(account.accountId)}/balance?${new URLSearchParams({ asOf })}`);
          fill(result, h('p', {}, 'Balance at ', time(data.asOf), ': ', money(data.balance, account.currency), ' ', badge(data.status)));
        } catch (error) {
          fill(result, problemView(error));
        }
      },
    },
    h('h2', {}, 'Balance as of'),
    at,
    h('button', { type: 'submit', class: 'secondary' }, 'Ask'),
    result,
  );
}

const short = (id) => `${String(id).slice(0, 8)}…`;
