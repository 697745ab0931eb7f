import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { Router, type Response } from 'express';
import type { ApiDeps } from './api-deps';
import { HttpProblem, problemType } from './problem';

/** The web console's settings (ApiDeps.console). */
export interface ConsoleOptions {
  /** TEMPORAL_UI_URL: the Temporal Web UI, for links to a transfer's saga. Unset: no link. */
  temporalUiUrl?: string;
  /** The folder of the console's static files (default: `console/` of the project, found from here). */
  directory?: string;
}

/**
 * What a console response may load: its own origin's scripts, styles and data only; no inline script or style, no
 * plugins, no framing, no <base>. Every value shown is put in the page with DOM APIs (textContent), never as HTML.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function secure(res: Response): void {
  res.set('Content-Security-Policy', CONSOLE_CSP);
  res.set('X-Content-Type-Options', 'nosniff');
  res.set('Referrer-Policy', 'no-referrer');
  res.set('X-Frame-Options', 'DENY');
}

/** console/ beside api/ (running from sources) or beside dist/ (the compiled image: dist/api -> ../../console). */
function consoleDirectory(configured?: string): string | undefined {
  const candidates = configured ? [configured] : [path.resolve(__dirname, '..', 'console'), path.resolve(__dirname, '..', '..', 'console')];
  return candidates.find((dir) => existsSync(path.join(dir, 'index.html')));
}

/** A URL the console may link to: http(s) only, without a trailing slash. */
function linkBase(url: string | undefined): string | null {
  if (!url) return null;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null;
    return parsed.toString().replace(/\/+$/, '');
  } catch {
    return null; // not a URL: no link
  }
}

/**
 * GET /console: a small web console (plain ES modules and a stylesheet, no build step), public like /docs: the page
 * asks for an API key, keeps it in session storage and sends it as a bearer token with every data call, so the API's
 * access control decides what it shows. GET /console/config.json: its settings.
 */
export function consoleRoutes(deps: ApiDeps): Router {
  const router = Router();
  const options = deps.console ?? {};
  const directory = consoleDirectory(options.directory);
  if (!directory)
    deps.logger.log({ level: 'warn', msg: 'console files not found: GET /console answers 404', tried: options.directory ?? 'console/' });
  const settings = {
    temporalUiUrl: linkBase(options.temporalUiUrl),
    temporalNamespace: deps.temporal.options.namespace,
  };

  router.get('/console/config.json', (_req, res) => {
    secure(res);
    res.set('Cache-Control', 'no-cache');
    res.json(settings);
  });

  const missing = () =>
    new HttpProblem(404, problemType('not-found'), 'Not found', 'The console files are not installed (console/ is missing)');
  router.get(['/console', '/console/'], (_req, res, next) => {
    if (!directory) return next(missing());
    secure(res);
    res.set('Cache-Control', 'no-cache');
    return res.sendFile(path.join(directory, 'index.html'));
  });
  if (directory) {
    router.use(
      '/console',
      express.static(directory, {
        index: false,
        redirect: false,
        dotfiles: 'ignore',
        fallthrough: true,
        // Revalidated each time (ETag): a new version of the console is picked up at once.
        cacheControl: true,
        maxAge: 0,
        setHeaders: (res) => secure(res),
      }),
    );
  }
  return router;
}
