/* global sessionStorage, fetch, crypto */
/**
 * The API, as the console calls it: the key from session storage as a bearer token, JSON in and out, problems as
 * ApiError. The page holds no other secret; closing the tab forgets the key.
 */

const SESSION = 'transfer-console.session';

/** { key, role } of the signed-in key, or null. The role only shapes the page: the API decides what is allowed. */
export function session() {
  try {
    const value = JSON.parse(sessionStorage.getItem(SESSION) ?? 'null');
    return value && typeof value.key === 'string' ? value : null;
  } catch {
    return null;
  }
}

export function saveSession(value) {
  sessionStorage.setItem(SESSION, JSON.stringify(value));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION);
}

export const isOperator = () => session()?.role === 'operator';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? problem?.title ?? `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? {};
  }

  /** The route is not there (an endpoint of a later version) or not for this key: a feature to hide, not an error to show. */
  get unavailable() {
    return (
      (this.status === 404 && this.problem.type === '/problems/not-found') ||
      this.status === 403 ||
      this.status === 405 ||
      this.status === 501
    );
  }
}

let onUnauthorized = () => undefined;
/** Called when the API refuses the signed-in key (revoked, unknown). */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

/**
 * A call to the API. `key` overrides the session's (signing in). Answers { status, data, headers }; throws ApiError
 * for an error status.
 */
export async function api(path, { method = 'GET', body, headers = {}, key, signal } = {}) {
  const bearer = key ?? session()?.key;
  const sent = { Accept: 'application/json, application/problem+json', ...headers };
  if (bearer) sent.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: 'no-store',
    credentials: 'omit',
  });
  const text = await res.text();
  let data;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 500) };
  }
  if (res.status === 401 && key === undefined && bearer) onUnauthorized();
  if (!res.ok) throw new ApiError(res.status, data);
  return { status: res.status, data, headers: res.headers };
}

/** A fresh id for an idempotent write (a retry of the same submission reuses it). */
export function newId(prefix) {
  return `${prefix}-${crypto.randomUUID()}`;
}

/** The console's settings (GET /console/config.json), loaded once. */
let config;
export async function consoleConfig() {
  if (!config) {
    config = api('/console/config.json').then(
      (r) => r.data,
      () => ({ temporalUiUrl: null, temporalNamespace: 'default' }),
    );
  }
  return config;
}
