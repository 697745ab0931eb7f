/* global window, setTimeout, URLSearchParams */
/**
 * Batches of transfers (issue 26, item 4): send a batch as CSV (pasted or from a file), read strictly here before
 * anything is sent; then the batch's page, read again until it settles, with its counts by outcome and its items
 * (each a transfer of its own) with their outcomes and reasons, paged and filtered by status.
 */
import { api, ApiError, consoleConfig, isOperator, newId } from './api.js';
import { lineOfField, parseBatchCsv, TRANSFER_ID } from './batch-csv.js';
import { badge, dl, fill, h, link, problemView, route, table, time } from './dom.js';

/** Statuses after which nothing more happens to a batch. */
const SETTLED = new Set(['completed', 'failed', 'partially_completed']);
const ITEM_STATUSES = ['pending', 'completed', 'failed', 'compensated'];
const BATCH_STATUSES = ['pending', 'completed', 'failed', 'partially_completed'];
const ITEMS_PER_PAGE = 50;

/** Answers of POST /transfer-batches, shown at once on the batch's page before its first read. */
const sent = new Map();

const minor = (amount, attrs = {}) => h('span', { class: 'money', 'data-minor': String(amount), ...attrs }, String(amount));

export function batchRows(batches) {
  return table(
    ['Batch', 'Atomic', 'Items', 'Completed', 'Failed', 'Compensated', 'Status', 'Accepted'],
    batches.map((b) =>
      h(
        'tr',
        { 'data-testid': 'batch-row', 'data-batch-id': b.batchId, 'data-status': String(b.status) },
        h('td', {}, link(route('batches', b.batchId), b.batchId, { class: 'mono' })),
        h('td', {}, b.atomic ? 'yes' : 'no'),
        h('td', { class: 'num' }, String(b.itemCount ?? '')),
        h('td', { class: 'num' }, String(b.counts?.completed ?? '')),
        h('td', { class: 'num' }, String(b.counts?.failed ?? '')),
        h('td', { class: 'num' }, String(b.counts?.compensated ?? '')),
        h('td', {}, badge(b.status)),
        h('td', {}, time(b.acceptedAt)),
      ),
    ),
    { class: 'list' },
  );
}

/** The CSV's faults, a line each, as text. */
function csvErrors(errors) {
  return h(
    'div',
    { class: 'error', role: 'alert', 'data-testid': 'csv-errors' },
    h('strong', {}, `The CSV has ${errors.length} fault${errors.length === 1 ? '' : 's'}; nothing was sent.`),
    h(
      'ul',
      {},
      errors.map((e) =>
        h('li', { 'data-line': String(e.line) }, e.line ? h('span', { class: 'line' }, `Line ${e.line}: `) : null, String(e.message)),
      ),
    ),
  );
}

/**
 * A refusal of the API: its problem, and the CSV lines of the items it names (items[i].field), so a fault found only
 * by the API (an unknown account, a batch too large) points at its line too.
 */
function refusal(error, lines) {
  const named = error instanceof ApiError && Array.isArray(error.problem.errors) ? error.problem.errors : [];
  const located = named.map((e) => ({ at: lineOfField(e.field, lines), message: String(e.message) })).filter((e) => e.at);
  return [
    problemView(error),
    located.length
      ? h(
          'ul',
          { class: 'plain', 'data-testid': 'api-line-errors' },
          located.map((e) =>
            h(
              'li',
              { 'data-line': String(e.at.line) },
              h('span', { class: 'line' }, `Line ${e.at.line}`),
              e.at.column ? ` (${e.at.column})` : '',
              `: ${e.message}`,
            ),
          ),
        )
      : null,
  ];
}

/** The form that sends a batch: CSV pasted or read from a file, atomic or not, its id (made here when left empty). */
function batchForm(ctx) {
  const csv = h('textarea', {
    name: 'csv',
    rows: '10',
    spellcheck: 'false',
    autocomplete: 'off',
    class: 'mono',
    'data-testid': 'batch-csv',
    placeholder: 'fromAccountId,toAccountId,amount,transferId\n0b5e6f8e-…,6f1c2a3b-…,1050,order-4711',
  });
  const file = h('input', { type: 'file', name: 'file', accept: '.csv,text/csv,text/plain', 'data-testid': 'batch-file' });
  const atomic = h('input', { type: 'checkbox', name: 'atomic', 'data-testid': 'batch-atomic' });
  const batchId = h('input', {
    name: 'batchId',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'made by the console when empty',
    maxlength: '64',
    'data-testid': 'batch-id',
  });
  const message = h('div', { 'data-testid': 'batch-form-message' });
  const summary = h('p', { class: 'muted', 'data-testid': 'batch-summary' });
  const button = h('button', { type: 'submit' }, 'Send batch');

  // A file is read into the text area: what is sent is what is shown, and the lines the faults name are its lines.
  file.addEventListener('change', async () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    try {
      csv.value = await chosen.text();
      fill(message);
      describe();
    } catch (error) {
      fill(message, problemView(error));
    }
  });
  const describe = () => {
    const { items, errors } = parseBatchCsv(csv.value);
    summary.textContent =
      csv.value.trim() === ''
        ? ''
        : errors.length
          ? `${items.length} item${items.length === 1 ? '' : 's'} read, ${errors.length} fault${errors.length === 1 ? '' : 's'}`
          : `${items.length} item${items.length === 1 ? '' : 's'}, ${items.reduce((sum, x) => sum + x.amount, 0)} minor units in all`;
  };
  csv.addEventListener('input', () => {
    fill(message);
    describe();
  });

  // The same id for a retry of the same submission (a lost answer): the API answers the same batch, nothing twice.
  let pendingId;
  let pendingBody;
  return h(
    'form',
    {
      class: 'card',
      'data-testid': 'batch-form',
      onsubmit: async (event) => {
        event.preventDefault();
        const { items, lines, errors } = parseBatchCsv(csv.value);
        const id = batchId.value.trim();
        if (id && !TRANSFER_ID.test(id))
          errors.unshift({ line: 0, message: 'Batch id: 1-64 characters, letters, digits, _ and -, starting with a letter or digit' });
        if (errors.length) {
          fill(message, csvErrors(errors));
          return;
        }
        const body = { atomic: atomic.checked, items };
        const key = JSON.stringify({ id, body });
        if (id) pendingId = id;
        else if (!pendingId || key !== pendingBody) pendingId = newId('batch');
        pendingBody = key;
        button.disabled = true;
        fill(message, h('p', { class: 'muted' }, `Sending ${items.length} item${items.length === 1 ? '' : 's'}…`));
        try {
          const { data } = await api('/transfer-batches', { method: 'POST', body: { batchId: pendingId, ...body } });
          const accepted = typeof data?.batchId === 'string' ? data.batchId : pendingId;
          pendingId = undefined;
          if (data && typeof data.batchId === 'string') sent.set(data.batchId, data);
          if (ctx.alive()) window.location.hash = route('batches', accepted);
        } catch (error) {
          if (error instanceof ApiError && error.status < 500) pendingId = undefined;
          fill(message, refusal(error, lines));
        } finally {
          button.disabled = false;
        }
      },
    },
    h('h2', {}, 'Send a batch'),
    h(
      'p',
      { class: 'muted' },
      'CSV with a header line naming the columns fromAccountId, toAccountId, amount and optionally transferId, in any order; a line per transfer; amounts in whole minor units (1050 for 10.50). It is checked here, line by line, before anything is sent.',
    ),
    h('label', { class: 'field' }, h('span', {}, 'CSV'), csv),
    summary,
    h('label', { class: 'field' }, h('span', {}, 'Or read a CSV file'), file),
    h('label', { class: 'check' }, atomic, h('span', {}, 'Atomic: all or nothing (any item refused and nothing moves)')),
    h('label', { class: 'field' }, h('span', {}, 'Batch id (optional; its idempotency key)'), batchId),
    h('div', { class: 'buttons' }, button),
    message,
  );
}

/** #/batches: the form, and the latest batches when the API lists them. */
export async function batchesPage(ctx) {
  const status = ctx.query.get('status') ?? '';
  const after = ctx.query.get('after') ?? '';
  const statusSelect = h(
    'select',
    { name: 'status', 'aria-label': 'Status' },
    ['', ...BATCH_STATUSES].map((s) => h('option', { value: s, selected: s === status }, s || 'any status')),
  );
  const filter = h(
    'form',
    {
      class: 'inline',
      onsubmit: (event) => {
        event.preventDefault();
        window.location.hash = route('batches', { status: statusSelect.value });
      },
    },
    statusSelect,
    h('button', { type: 'submit' }, 'Filter'),
  );
  const results = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const list = h('section', { class: 'card', 'data-testid': 'batches' }, h('h2', {}, 'Batches'), filter, results);
  ctx.show(h('h1', {}, 'Batches'), batchForm(ctx), list);
  try {
    const { data } = await api(
      `/transfer-batches?${new URLSearchParams({ limit: '20', ...(status ? { status } : {}), ...(after ? { after } : {}) })}`,
    );
    if (!ctx.alive()) return;
    const batches = Array.isArray(data?.batches) ? data.batches : [];
    fill(
      results,
      batches.length ? batchRows(batches) : h('p', { class: 'muted', 'data-testid': 'no-batches' }, 'No batches.'),
      h(
        'p',
        { class: 'pager' },
        after ? link(route('batches', { status }), '« Newest') : null,
        data?.next ? link(route('batches', { status, after: data.next }), 'Older »') : null,
      ),
    );
  } catch (error) {
    if (!ctx.alive()) return;
    // No list in this API (or not for this key): the form alone.
    if (error instanceof ApiError && (error.unavailable || error.status === 405)) list.hidden = true;
    else fill(results, problemView(error));
  }
}

/** The saga's page in the Temporal Web UI (TEMPORAL_UI_URL), or null when the API does not know the UI. */
async function sagaLink(batchId) {
  const config = await consoleConfig();
  if (!config.temporalUiUrl || !/^https?:\/\//i.test(config.temporalUiUrl)) return null;
  const href = `${config.temporalUiUrl}/namespaces/${encodeURIComponent(config.temporalNamespace)}/workflows/${encodeURIComponent(`batch-${batchId}`)}`;
  return link(href, `Saga batch-${batchId} in the Temporal UI`, {
    target: '_blank',
    rel: 'noopener noreferrer',
    'data-testid': 'saga-link',
  });
}

/**
 * Counts by outcome of a batch view (what is not settled yet is pending): while it runs, the saga's own (its
 * `progress`, live) when the API could ask it, else the read model's.
 */
function countsOf(view) {
  const c = (view.status === 'pending' ? view.progress?.counts : undefined) ?? view.counts ?? {};
  const n = (x) => (Number.isSafeInteger(x) && x >= 0 ? x : 0);
  const itemCount = n(view.itemCount);
  const completed = n(c.completed);
  const failed = n(c.failed);
  const compensated = n(c.compensated);
  const pending = c.pending !== undefined ? n(c.pending) : Math.max(0, itemCount - completed - failed - compensated);
  return { itemCount, completed, failed, compensated, pending };
}

/**
 * #/batches/{id}: the batch read again every second until it settles (its status, counts by outcome and the saga's
 * phase), and its items, a page at a time (?status= &cursor= in the route), with their outcomes and reasons.
 */
export async function batchPage(ctx) {
  const [id] = ctx.params;
  const itemStatus = ITEM_STATUSES.includes(ctx.query.get('status')) ? ctx.query.get('status') : '';
  const cursor = ctx.query.get('cursor') ?? '';
  const asked = Number(ctx.query.get('limit'));
  const limit = Number.isSafeInteger(asked) && asked >= 1 && asked <= 200 ? asked : ITEMS_PER_PAGE;
  /** The page size as the route carries it (empty: the default). */
  const pageLimit = limit === ITEMS_PER_PAGE ? '' : String(limit);
  const live = h('p', { class: 'live muted', 'data-testid': 'live' });
  const summary = h('div', {});
  const items = h('section', { class: 'card', 'data-testid': 'batch-items' }, h('p', { class: 'muted' }, 'Loading…'));
  ctx.show(h('h1', {}, 'Batch ', h('span', { class: 'mono small' }, id)), live, summary, items);
  const saga = await sagaLink(id).catch(() => null);

  const statusSelect = h(
    'select',
    {
      name: 'status',
      'aria-label': 'Item status',
      'data-testid': 'item-status-filter',
      onchange: () => {
        window.location.hash = route('batches', id, { status: statusSelect.value, limit: pageLimit });
      },
    },
    ['', ...ITEM_STATUSES].map((s) => h('option', { value: s, selected: s === itemStatus }, s || 'any outcome')),
  );

  const drawSummary = (view) => {
    const c = countsOf(view);
    const done = c.completed + c.failed + c.compensated;
    const phase = view.progress?.phase ?? (SETTLED.has(view.status) ? 'settled' : undefined);
    // The saga waits for a person (a settlement its rules refused): said as it is.
    const attention = view.progress?.status === 'needs_attention';
    fill(
      summary,
      h(
        'section',
        { class: 'card summary' },
        dl([
          ['Status', badge(view.status), 'batch-status'],
          phase ? ['Phase', h('span', {}, String(phase)), 'batch-phase'] : null,
          attention
            ? [
                'Attention',
                h(
                  'span',
                  { class: 'reason' },
                  'the saga waits for a person',
                  view.progress.failureMessage ? `: ${String(view.progress.failureMessage)}` : '',
                ),
                'batch-attention',
              ]
            : null,
          ['Atomic', view.atomic ? 'yes: all or nothing' : 'no: each item on its own', 'batch-atomic-flag'],
          ['Items', String(c.itemCount), 'batch-item-count'],
          [
            'Progress',
            h(
              'span',
              { class: 'progress' },
              h('progress', { value: String(done), max: String(Math.max(1, c.itemCount)), 'data-testid': 'batch-progress' }),
              ` ${done} of ${c.itemCount} settled`,
            ),
          ],
          ['Completed', h('span', { 'data-testid': 'count-completed', 'data-count': String(c.completed) }, String(c.completed))],
          ['Failed', h('span', { 'data-testid': 'count-failed', 'data-count': String(c.failed) }, String(c.failed))],
          ['Compensated', h('span', { 'data-testid': 'count-compensated', 'data-count': String(c.compensated) }, String(c.compensated))],
          ['Pending', h('span', { 'data-testid': 'count-pending', 'data-count': String(c.pending) }, String(c.pending))],
          view.message ? ['Message', h('span', { class: 'reason' }, String(view.message)), 'batch-message'] : null,
          view.actor ? ['Sent by', h('span', { class: 'mono' }, String(view.actor))] : null,
          ['Accepted', time(view.acceptedAt)],
          ['Settled', time(view.settledAt)],
        ]),
        h(
          'p',
          { class: 'links' },
          saga,
          isOperator()
            ? link(route('streams', `batch-${view.batchId ?? id}`), `Event stream batch-${view.batchId ?? id}`, {
                'data-testid': 'batch-stream-link',
              })
            : null,
        ),
      ),
    );
  };

  const drawItems = (page, next) => {
    fill(
      items,
      h('h2', {}, 'Items'),
      h('p', { class: 'muted' }, 'Each item is a transfer of its own. Amounts in minor units.'),
      h('form', { class: 'inline', onsubmit: (event) => event.preventDefault() }, statusSelect),
      page.length
        ? table(
            ['#', 'Transfer', 'From', 'To', 'Amount', 'Outcome', 'Reason'],
            page.map((x) => {
              // An item whose id belongs to another transfer has no transfer of its own to link to.
              const own = x.failureReason !== 'transfer_conflict';
              return h(
                'tr',
                {
                  'data-testid': 'batch-item',
                  'data-index': String(x.index),
                  'data-transfer-id': String(x.transferId),
                  'data-status': String(x.status),
                },
                h('td', { class: 'num' }, x.index === undefined ? '' : String(Number(x.index) + 1)),
                h(
                  'td',
                  {},
                  own
                    ? link(route('transfers', x.transferId), String(x.transferId), { class: 'mono' })
                    : h('span', { class: 'mono' }, String(x.transferId)),
                ),
                h('td', {}, link(route('accounts', x.fromAccountId), short(x.fromAccountId), { class: 'mono', title: x.fromAccountId })),
                h('td', {}, link(route('accounts', x.toAccountId), short(x.toAccountId), { class: 'mono', title: x.toAccountId })),
                h('td', { class: 'num' }, minor(x.amount)),
                h('td', { 'data-testid': 'item-status' }, badge(x.status)),
                h(
                  'td',
                  { 'data-testid': 'item-reason' },
                  x.failureReason ? h('span', { class: 'reason' }, String(x.failureReason)) : '',
                  x.failureMessage ? h('span', { class: 'muted' }, ` ${String(x.failureMessage)}`) : '',
                ),
              );
            }),
            { class: 'list' },
          )
        : h('p', { class: 'muted', 'data-testid': 'no-items' }, itemStatus ? `No ${itemStatus} items.` : 'No items.'),
      h(
        'p',
        { class: 'pager' },
        cursor
          ? link(route('batches', id, { status: itemStatus, limit: pageLimit }), '« First page', { 'data-testid': 'items-first' })
          : null,
        next
          ? link(route('batches', id, { status: itemStatus, limit: pageLimit, cursor: next }), 'Next page »', {
              'data-testid': 'items-next',
            })
          : null,
      ),
    );
  };

  let view = sent.get(id);
  sent.delete(id);
  if (view) drawSummary(view);
  let drawn = '';
  const query = new URLSearchParams({
    limit: String(limit),
    ...(itemStatus ? { status: itemStatus } : {}),
    ...(cursor ? { cursor } : {}),
  });
  // Live: read again every second while the batch is not settled (the items' outcomes come in as it runs).
  for (let failures = 0; ctx.alive();) {
    live.textContent = view && SETTLED.has(view.status) ? '' : 'Running: this page updates by itself.';
    try {
      const { data } = await api(`/transfer-batches/${encodeURIComponent(id)}?${query}`);
      if (!ctx.alive()) return;
      failures = 0;
      view = data;
      const text = JSON.stringify(data);
      if (text !== drawn) {
        drawn = text;
        drawSummary(data);
        drawItems(Array.isArray(data.items) ? data.items : [], data.nextCursor ?? data.next ?? null);
      }
      // Settled, and every item shown has its outcome (the items' rows may follow the batch's by a moment).
      if (SETTLED.has(data.status) && !(Array.isArray(data.items) && data.items.some((x) => x.status === 'pending'))) break;
    } catch (error) {
      if (!ctx.alive()) return;
      if (error instanceof ApiError && error.status === 404 && !view) {
        fill(
          summary,
          h(
            'div',
            { class: 'error refused', role: 'alert', 'data-testid': 'refused', 'data-status': '404' },
            h('strong', {}, 'Batch not found'),
            h('p', {}, `No batch ${id} for this key.`),
          ),
        );
        fill(items);
        return;
      }
      if (error instanceof ApiError && error.status < 500 && error.status !== 429 && error.status !== 404) {
        fill(items, problemView(error));
        return;
      }
      // A 404 after the POST answered: the read model has not seen the batch yet. Other failures: try again.
      failures += 1;
      if (!(error instanceof ApiError && error.status === 404))
        live.textContent = `Could not reach the API (${error instanceof Error ? error.message : String(error)}); retrying…`;
    }
    await new Promise((resolve) => setTimeout(resolve, failures ? Math.min(10_000, 1000 * failures) : 1000));
  }
  if (ctx.alive()) live.textContent = '';
}

const short = (id) => `${String(id).slice(0, 8)}…`;
