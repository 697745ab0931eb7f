/* global document, Node, URLSearchParams */
import { ApiError } from './api.js';

/**
 * DOM helpers. Everything shown goes in as text (textContent / text nodes), never as HTML: events carry user data.
 */

const SAFE_HREF = /^(#|\/(?!\/)|https?:\/\/)/i;

/** h('tag', { attributes, text, onclick, class }, ...children): an element; strings become text nodes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = String(value);
    else if (key === 'text') el.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'href' && !SAFE_HREF.test(String(value)))
      continue; // never javascript: or data: links
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

/** Replaces an element's children (null, undefined and false are left out). */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A link inside the console (a hash route), its parts URL-encoded. */
export function route(...parts) {
  const [path, query] = parts.at(-1) && typeof parts.at(-1) === 'object' ? [parts.slice(0, -1), parts.at(-1)] : [parts, undefined];
  const search = query
    ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== '')).toString()
    : '';
  return `#/${path.map((p) => encodeURIComponent(String(p))).join('/')}${search ? `?${search}` : ''}`;
}

export function link(href, text, attrs = {}) {
  return h('a', { href, ...attrs }, text);
}

const digits = new Map();
/** The minor-unit digits of a currency (EUR 2, JPY 0), from the browser's ISO 4217 data. */
function fractionDigits(currency) {
  if (!digits.has(currency)) {
    let d;
    try {
      d = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
    } catch {
      d = 2; // not an ISO 4217 code the browser knows
    }
    digits.set(currency, d);
  }
  return digits.get(currency);
}

/** Integer minor units as a decimal amount, exactly (no floating point): 1050 EUR -> "10.50 EUR". */
export function formatMoney(minor, currency) {
  let n;
  try {
    n = BigInt(minor);
  } catch {
    return String(minor);
  }
  const d = fractionDigits(currency);
  const negative = n < 0n;
  const text = (negative ? -n : n).toString().padStart(d + 1, '0');
  const whole = text.slice(0, text.length - d).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${negative ? '-' : ''}${whole}${d ? `.${text.slice(-d)}` : ''}${currency ? ` ${currency}` : ''}`;
}

/** An amount, with its minor units in data-minor (and the title). */
export function money(minor, currency, attrs = {}) {
  return h(
    'span',
    { class: `money${Number(minor) < 0 ? ' negative' : ''}`, 'data-minor': String(minor), title: `${minor} minor units`, ...attrs },
    formatMoney(minor, currency),
  );
}

/** ISO-8601 as "2026-11-27 10:11:12.345Z" (UTC, as stored). */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: String(iso), title: String(iso) }, String(iso).replace('T', ' '));
}

export function badge(status) {
  return h('span', { class: `badge status-${String(status).replace(/[^a-z_]/gi, '')}` }, String(status));
}

/** JSON, formatted, as text. */
export function json(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}

export function table(headers, rows, attrs = {}) {
  return h(
    'table',
    attrs,
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        headers.map((x) => h('th', {}, x)),
      ),
    ),
    h('tbody', {}, rows),
  );
}

export function dl(pairs, attrs = {}) {
  return h(
    'dl',
    { class: 'facts', ...attrs },
    pairs.filter(Boolean).map(([term, value, testid]) => [h('dt', {}, term), h('dd', testid ? { 'data-testid': testid } : {}, value)]),
  );
}

/** A labelled input. */
export function field(label, attrs) {
  return h('label', { class: 'field' }, h('span', {}, label), h('input', attrs));
}

export const isUuid = (text) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text);

/** A refusal or an error of the API, as a box: its title, detail and the fields it names. `what`: "Account", … */
export function problemView(error, { what } = {}) {
  if (!(error instanceof ApiError))
    return h('div', { class: 'error', role: 'alert', 'data-testid': 'error' }, error instanceof Error ? error.message : String(error));
  const p = error.problem;
  const refused = error.status === 403 || error.status === 404;
  const title =
    error.status === 403 ? 'Refused' : error.status === 404 ? `${what ?? 'It was'} not found` : (p.title ?? `Error ${error.status}`);
  return h(
    'div',
    {
      class: refused ? 'error refused' : 'error',
      role: 'alert',
      'data-testid': refused ? 'refused' : 'error',
      'data-status': String(error.status),
    },
    h('strong', {}, title),
    p.detail ? h('p', {}, p.detail) : null,
    error.status === 403 ? h('p', { class: 'muted' }, 'This API key may not do this.') : null,
    Array.isArray(p.errors) && p.errors.length
      ? h(
          'ul',
          {},
          p.errors.map((e) => h('li', {}, h('code', {}, String(e.field)), ' ', String(e.message))),
        )
      : null,
  );
}
