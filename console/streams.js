/* global document, window, setTimeout, clearTimeout, URLSearchParams */
/** The stream browser (in the manner of the EventStoreDB UI): streams by prefix, a stream's events, the live tail. */
import { api, ApiError } from './api.js';
import { fill, h, json, link, problemView, route, table, time } from './dom.js';

const PAGE = 20;

/** A link to the page of what a stream is about (an account, a transfer), if any. */
function subjectLink(stream) {
  const account = /^account-(.+)$/.exec(stream);
  if (account) return link(route('accounts', account[1]), 'account page');
  const transfer = /^transfer-(.+)$/.exec(stream);
  if (transfer) return link(route('transfers', transfer[1]), 'transfer page');
  const hold = /^hold-(.+)$/.exec(stream);
  if (hold) return link(route('holds', hold[1]), 'hold page');
  return null;
}

export async function streamsPage(ctx) {
  const prefix = ctx.query.get('prefix') ?? '';
  const cursor = ctx.query.get('cursor') ?? '';
  const input = h('input', {
    name: 'prefix',
    type: 'search',
    value: prefix,
    placeholder: 'stream name prefix, e.g. account-',
    'aria-label': 'Stream prefix',
  });
  const form = h(
    'form',
    {
      class: 'inline',
      onsubmit: (event) => {
        event.preventDefault();
        window.location.hash = route('streams', { prefix: input.value });
      },
    },
    input,
    h('button', { type: 'submit' }, 'Browse'),
    h(
      'span',
      { class: 'quick' },
      ['account-', 'transfer-', 'hold-'].map((p) => link(route('streams', { prefix: p }), p)),
    ),
  );
  const results = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  ctx.show(h('h1', {}, 'Streams'), h('p', {}, link('#/tail', 'Live tail of the whole log »')), form, results);
  try {
    const { data } = await api(
      `/streams?${new URLSearchParams({ limit: '50', ...(prefix ? { prefix } : {}), ...(cursor ? { cursor } : {}) })}`,
    );
    if (!ctx.alive()) return;
    fill(
      results,
      data.streams.length
        ? table(
            ['Stream', 'Events', 'Last revision', 'Last recorded', ''],
            data.streams.map((s) =>
              h(
                'tr',
                { 'data-testid': 'stream-row', 'data-stream': s.stream },
                h('td', {}, link(route('streams', s.stream), s.stream, { class: 'mono' })),
                h('td', { class: 'num' }, String(s.revision + 1)),
                h('td', { class: 'num' }, String(s.revision)),
                h('td', {}, time(s.lastRecordedAt)),
                h('td', {}, subjectLink(s.stream)),
              ),
            ),
            { class: 'list' },
          )
        : h('p', { class: 'muted' }, 'No streams.'),
      h(
        'p',
        { class: 'pager' },
        cursor ? link(route('streams', { prefix }), '« First page') : null,
        data.nextCursor ? link(route('streams', { prefix, cursor: data.nextCursor }), 'Next page »') : null,
      ),
    );
  } catch (error) {
    fill(results, problemView(error));
  }
}

/** The last revision of a stream (from the stream list), or undefined. */
async function headRevision(name) {
  const { data } = await api(`/streams?${new URLSearchParams({ prefix: name, limit: '1' })}`);
  const found = data.streams.find((s) => s.stream === name);
  return found ? found.revision : undefined;
}

/** The hash chain's verdict on a stream, when this API keeps one (GET /audit/verify); undefined otherwise. */
async function chainStatus(name) {
  try {
    return (await api(`/audit/verify?${new URLSearchParams({ stream: name })}`)).data;
  } catch (error) {
    if (error instanceof ApiError && (error.unavailable || error.status === 404)) return undefined;
    return { error };
  }
}

export async function streamPage(ctx) {
  const [name] = ctx.params;
  const limit = Math.min(1000, Math.max(1, Number.parseInt(ctx.query.get('limit') ?? '', 10) || PAGE));
  const from = Math.max(0, Number.parseInt(ctx.query.get('from') ?? '', 10) || 0);
  ctx.show(h('h1', {}, 'Stream ', h('span', { class: 'mono small' }, name)), h('p', { class: 'muted' }, 'Loading…'));
  let page;
  let head;
  try {
    [page, head] = await Promise.all([
      api(`/streams/${encodeURIComponent(name)}?${new URLSearchParams({ fromRevision: String(from), limit: String(limit) })}`).then(
        (r) => r.data,
      ),
      headRevision(name),
    ]);
  } catch (error) {
    ctx.show(h('h1', {}, 'Stream ', h('span', { class: 'mono small' }, name)), problemView(error, { what: 'Stream' }));
    return;
  }
  if (!ctx.alive()) return;
  const events = page.events;
  const last = head ?? (events.length ? events.at(-1).revision : from);
  const at = (revision) => route('streams', name, { from: String(revision), ...(limit !== PAGE ? { limit: String(limit) } : {}) });
  const lastPage = Math.max(0, last - limit + 1);
  const pager = h(
    'nav',
    { class: 'pager', 'aria-label': 'Pages' },
    from > 0 ? link(at(0), '« First', { 'data-testid': 'first' }) : h('span', { class: 'muted' }, '« First'),
    from > 0
      ? link(at(Math.max(0, from - limit)), '‹ Previous', { 'data-testid': 'previous' })
      : h('span', { class: 'muted' }, '‹ Previous'),
    h(
      'span',
      { 'data-testid': 'range' },
      events.length ? `revisions ${events[0].revision}–${events.at(-1).revision} of 0–${last}` : 'no events here',
    ),
    page.nextRevision !== null && page.nextRevision <= last
      ? link(at(page.nextRevision), 'Next ›', { 'data-testid': 'next' })
      : h('span', { class: 'muted' }, 'Next ›'),
    from < lastPage ? link(at(lastPage), 'Last »', { 'data-testid': 'last' }) : h('span', { class: 'muted' }, 'Last »'),
  );
  const chain = h('div', { 'data-testid': 'chain', hidden: true });
  ctx.show(
    h('h1', {}, 'Stream ', h('span', { class: 'mono small' }, name)),
    h(
      'p',
      { class: 'links' },
      h('span', {}, `${last + 1} events`),
      subjectLink(name),
      link(route('streams', { prefix: name.replace(/-.*$/, '-') }), 'Streams like it'),
    ),
    chain,
    pager,
    h('div', { class: 'events' }, events.map(eventView)),
    pager.cloneNode(true),
  );
  const verdict = await chainStatus(name);
  if (!verdict || !ctx.alive()) return;
  if (verdict.error) {
    fill(chain, h('strong', {}, 'Hash chain: '), problemView(verdict.error));
  } else {
    const broken = new Set((verdict.broken ?? []).map((b) => String(b.revision)));
    chain.className = verdict.ok ? 'chain ok' : 'chain broken';
    fill(
      chain,
      h('strong', {}, 'Hash chain: '),
      verdict.ok
        ? `intact (${verdict.events} events verified)`
        : `broken at revision ${verdict.firstBroken?.revision ?? '?'}: ${verdict.firstBroken?.problem ?? 'problem'}`,
      verdict.lastHash ? h('span', { class: 'mono muted small' }, ` last hash ${String(verdict.lastHash).slice(0, 16)}…`) : null,
    );
    for (const el of document.querySelectorAll('[data-testid="event"]')) if (broken.has(el.dataset.revision)) el.classList.add('broken');
  }
  chain.hidden = false;
}

function eventView(e) {
  const occurredAt = e.metadata && typeof e.metadata.occurredAt === 'string' ? e.metadata.occurredAt : undefined;
  return h(
    'article',
    { class: 'event card', 'data-testid': 'event', 'data-revision': String(e.revision), 'data-type': e.type },
    h(
      'header',
      {},
      h('span', { class: 'rev', title: 'revision' }, `#${e.revision}`),
      h('strong', { class: 'type' }, e.type),
      h('span', { class: 'muted' }, 'position ', h('span', { class: 'mono' }, e.position)),
      h('span', { class: 'muted' }, 'happened ', time(occurredAt)),
      h('span', { class: 'muted' }, 'recorded ', time(e.recordedAt)),
      h('span', { class: 'muted mono small' }, e.id),
    ),
    h(
      'div',
      { class: 'payload' },
      h('div', {}, h('h3', {}, 'Data'), json(e.data)),
      h('div', {}, h('h3', {}, 'Metadata'), json(e.metadata)),
    ),
  );
}

/** Global positions ("commit.prepare") in log order. */
function comparePositions(a, b) {
  const [ac, ap] = String(a)
    .split('.')
    .map((x) => BigInt(x || '0'));
  const [bc, bp] = String(b)
    .split('.')
    .map((x) => BigInt(x || '0'));
  return ac === bc ? (ap < bp ? -1 : ap > bp ? 1 : 0) : ac < bc ? -1 : 1;
}

const TAIL_ROWS = 100;
const TAIL_EVERY_MS = 1500;

/**
 * The live tail of the whole log, newest first. From GET /events (the global log, when the API has it: pages after
 * the last position seen), else by polling the stream list for streams that moved and reading their new events.
 */
export async function tailPage(ctx) {
  const rows = h('tbody', {});
  const state = h('p', { class: 'live muted', 'data-testid': 'tail-state' }, 'Connecting…');
  let paused = false;
  const toggle = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      onclick: () => {
        paused = !paused;
        toggle.textContent = paused ? 'Resume' : 'Pause';
      },
    },
    'Pause',
  );
  ctx.show(
    h('h1', {}, 'Live tail'),
    h('p', {}, 'The newest events of the whole log, as they are written. ', toggle),
    state,
    h(
      'table',
      { class: 'list', 'data-testid': 'tail' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Position', 'Recorded', 'Stream', 'Rev', 'Type'].map((x) => h('th', {}, x)),
        ),
      ),
      rows,
    ),
  );
  const seen = new Set();
  const shown = [];
  const add = (events, fresh) => {
    for (const e of events) {
      const key = `${e.stream}@${e.revision}`;
      if (seen.has(key)) continue;
      seen.add(key);
      shown.push(e);
    }
    shown.sort((a, b) => comparePositions(b.position, a.position));
    shown.splice(TAIL_ROWS);
    fill(
      rows,
      ...shown.map((e) =>
        h(
          'tr',
          {
            'data-testid': 'tail-row',
            'data-stream': e.stream,
            'data-revision': String(e.revision),
            'data-type': e.type,
            class: fresh.has(`${e.stream}@${e.revision}`) ? 'fresh' : '',
          },
          h('td', { class: 'mono' }, e.position),
          h('td', {}, time(e.recordedAt)),
          h('td', {}, link(route('streams', e.stream, { from: String(Math.max(0, e.revision - PAGE + 1)) }), e.stream, { class: 'mono' })),
          h('td', { class: 'num' }, String(e.revision)),
          h('td', {}, e.type),
        ),
      ),
    );
  };
  // ?source=streams: poll the stream list even where GET /events exists.
  const source = ctx.query.get('source') !== 'streams' && (await globalLogAvailable()) ? globalLogSource() : streamListSource();
  if (!ctx.alive()) return;
  let first = true;
  while (ctx.alive()) {
    if (!paused) {
      try {
        const events = await source.poll(first);
        if (!ctx.alive()) return;
        add(events, first ? new Set() : new Set(events.map((e) => `${e.stream}@${e.revision}`)));
        state.textContent = `Live (${source.name}): checked ${new Date().toISOString().replace('T', ' ')}; ${shown.length} events shown.`;
        first = false;
      } catch (error) {
        if (error instanceof ApiError && error.status < 500 && error.status !== 429) {
          fill(state, problemView(error));
          return;
        }
        state.textContent = `Could not reach the API (${error instanceof Error ? error.message : String(error)}); retrying…`;
      }
    }
    await nap(TAIL_EVERY_MS);
  }
}

async function globalLogAvailable() {
  try {
    const { data } = await api('/events?limit=1');
    return Array.isArray(data?.events);
  } catch {
    return false;
  }
}

/** GET /events: from a few minutes back, then everything after the last position seen. */
function globalLogSource() {
  let after;
  let since = new Date(Date.now() - 5 * 60_000).toISOString();
  return {
    name: 'GET /events',
    async poll() {
      const out = [];
      // Until an event is seen, by recorded time (with an overlap; duplicates are dropped by the page).
      const query = after ? { after } : { from: since };
      since = new Date(Date.now() - 10_000).toISOString();
      for (let pages = 0; pages < 20; pages++) {
        const { data } = await api(`/events?${new URLSearchParams({ limit: '500', ...query })}`);
        out.push(...data.events);
        if (data.events.length) after = data.events.at(-1).position;
        if (!data.next || data.events.length === 0) break;
        delete query.from;
        query.after = data.next;
      }
      return out.slice(-TAIL_ROWS);
    },
  };
}

/** Without a global log endpoint: the streams that moved since the last look, and their new events. */
function streamListSource() {
  const known = new Map();
  return {
    name: 'polling /streams',
    async poll(first) {
      const streams = [];
      let cursor;
      for (let pages = 0; pages < 10; pages++) {
        const { data } = await api(`/streams?${new URLSearchParams({ limit: '500', ...(cursor ? { cursor } : {}) })}`);
        streams.push(...data.streams);
        cursor = data.nextCursor;
        if (!cursor) break;
      }
      let moved = streams.filter((s) => (known.get(s.stream) ?? -1) < s.revision);
      if (first) moved = moved.sort((a, b) => (a.lastRecordedAt < b.lastRecordedAt ? 1 : -1)).slice(0, 20);
      else moved = moved.slice(0, 50);
      const events = [];
      await Promise.all(
        moved.map(async (s) => {
          const fromRevision = first ? Math.max(0, s.revision - 4) : (known.get(s.stream) ?? -1) + 1;
          const { data } = await api(
            `/streams/${encodeURIComponent(s.stream)}?${new URLSearchParams({ fromRevision: String(fromRevision), limit: '100' })}`,
          );
          events.push(...data.events.map((e) => ({ ...e, stream: s.stream })));
        }),
      );
      for (const s of streams) if (first || moved.includes(s)) known.set(s.stream, s.revision);
      return events;
    },
  };
}

/** A pause that ends early when the page changes. */
function nap(ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      window.removeEventListener('hashchange', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    window.addEventListener('hashchange', done);
  });
}
