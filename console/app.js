/* global document, window, URLSearchParams */
/**
 * The web console: a hash router over a few pages, each rendered with DOM APIs from the API's JSON.
 * Pages: sign in, accounts, an account, transfers, a transfer, batches, a batch, holds, a hold, streams, a stream, the
 * live tail.
 */
import { accountPage, accountsPage } from './accounts.js';
import { api, ApiError, clearSession, isOperator, saveSession, session, whenUnauthorized } from './api.js';
import { batchesPage, batchPage } from './batches.js';
import { fill, h, problemView } from './dom.js';
import { holdPage, holdsPage } from './holds.js';
import { streamPage, streamsPage, tailPage } from './streams.js';
import { transferPage, transfersPage } from './transfers.js';

const main = () => document.getElementById('main');
let generation = 0;
let notice = '';

/** What a page gets: where to draw, the route's parameters, and whether it is still the page on screen. */
function context(params, query) {
  const mine = ++generation;
  return {
    params,
    query,
    alive: () => mine === generation,
    /** Replaces the page's content (if it is still on screen). */
    show: (...nodes) => {
      if (mine === generation) fill(main(), ...nodes);
    },
  };
}

const ROUTES = [
  [/^signin$/, () => signInPage],
  [/^accounts$/, () => accountsPage],
  [/^accounts\/([^/]+)$/, () => accountPage],
  [/^transfers$/, () => transfersPage],
  [/^transfers\/([^/]+)$/, () => transferPage],
  [/^batches$/, () => batchesPage],
  [/^batches\/([^/]+)$/, () => batchPage],
  [/^holds$/, () => holdsPage],
  [/^holds\/([^/]+)$/, () => holdPage],
  [/^streams$/, () => streamsPage],
  [/^streams\/([^/]+)$/, () => streamPage],
  [/^tail$/, () => tailPage],
];

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, '');
  const [path, search] = [raw.split('?')[0] ?? '', raw.includes('?') ? raw.slice(raw.indexOf('?') + 1) : ''];
  return { path, query: new URLSearchParams(search) };
}

function renderShell() {
  const s = session();
  document.getElementById('nav').hidden = !s;
  document.getElementById('signout').hidden = !s;
  document.getElementById('who').textContent = s ? `signed in as ${s.role}` : '';
  for (const a of document.querySelectorAll('[data-operator]')) a.hidden = !isOperator();
  const current = parseHash().path.split('/')[0];
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('current', a.dataset.nav === current);
}

async function render() {
  renderShell();
  const { path, query } = parseHash();
  if (!session() && path !== 'signin') {
    window.location.hash = '#/signin';
    return;
  }
  if (path === '') {
    window.location.hash = '#/accounts';
    return;
  }
  for (const [pattern, page] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    let params;
    try {
      params = match.slice(1).map(decodeURIComponent);
    } catch {
      break;
    }
    const ctx = context(params, query);
    try {
      await page()(ctx);
    } catch (error) {
      ctx.show(h('h1', {}, 'Something went wrong'), problemView(error));
    }
    return;
  }
  context([], query).show(
    h('h1', {}, 'Not found'),
    h('p', {}, 'No such page in the console. '),
    h('a', { href: '#/accounts' }, 'Accounts'),
  );
}

/** Sign in: the key is checked against the API, then kept in session storage (this tab only). */
function signInPage(ctx) {
  const input = h('input', {
    id: 'api-key',
    name: 'api-key',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    placeholder: 'tsk_…',
  });
  const message = h('div', { class: 'message' }, notice ? h('div', { class: 'error', role: 'alert' }, notice) : null);
  notice = '';
  const form = h(
    'form',
    {
      class: 'card signin',
      onsubmit: async (event) => {
        event.preventDefault();
        const key = input.value.trim();
        fill(message, h('p', { class: 'muted' }, 'Checking the key…'));
        try {
          await api('/accounts?limit=1', { key });
          let role = 'customer';
          try {
            await api('/streams?limit=1', { key });
            role = 'operator';
          } catch (error) {
            if (!(error instanceof ApiError && error.status === 403)) throw error;
          }
          saveSession({ key, role });
          window.location.hash = '#/accounts';
        } catch (error) {
          fill(
            message,
            error instanceof ApiError && error.status === 401
              ? h('div', { class: 'error', role: 'alert' }, 'This key is not valid (unknown, malformed or revoked).')
              : problemView(error),
          );
        }
      },
    },
    h('h1', {}, 'Sign in'),
    h(
      'p',
      {},
      'Paste an API key. An operator key sees everything; a customer key sees only its owner’s accounts and transfers. The key stays in this tab’s session storage and is sent as a bearer token.',
    ),
    h('label', { class: 'field' }, h('span', {}, 'API key'), input),
    h('button', { type: 'submit' }, 'Sign in'),
    message,
  );
  ctx.show(form);
  input.focus();
}

function signOut(message) {
  clearSession();
  notice = message ?? '';
  if (window.location.hash === '#/signin') void render();
  else window.location.hash = '#/signin';
}

whenUnauthorized(() => signOut('The API refused the key (unknown or revoked): sign in again.'));

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('signout').addEventListener('click', () => signOut());
  window.addEventListener('hashchange', () => void render());
  void render();
});
