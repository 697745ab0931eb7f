import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The local stack's operator key. OPERATOR_API_KEY wins when set. Otherwise `npm start` creates a
 * random key on its first start and keeps it in DATA_DIR/operator-api-key (mode 0600: only this
 * user can read it), so every later start accepts the same key. The key itself is never printed:
 * the instructions point to the file.
 */
export const OPERATOR_KEY_FILE = 'operator-api-key';

export interface LocalOperatorKey {
  key: string;
  source: 'environment' | 'created' | 'file';
  /** The file that holds it (not for `environment`). */
  file?: string;
}

export function ensureLocalOperatorKey(dataDir: string, fromEnvironment: string | undefined): LocalOperatorKey {
  if (fromEnvironment) return { key: fromEnvironment, source: 'environment' };
  const file = path.join(dataDir, OPERATOR_KEY_FILE);
  fs.mkdirSync(dataDir, { recursive: true });
  const key = `tsk_operator_${randomBytes(32).toString('base64url')}`;
  try {
    fs.writeFileSync(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
    return { key, source: 'created', file };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  // Kept from an earlier start: only this user may read it, whatever it was left with.
  if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
  const kept = fs.readFileSync(file, 'utf8').trim();
  if (kept.length < 32 || !/^[\x21-\x7E]+$/.test(kept))
    throw new Error(`${file} does not hold an operator key (32+ printable characters): delete it to have a new one made`);
  return { key: kept, source: 'file', file };
}

/** What `npm start` prints: how to use the key (never the key itself). */
export function operatorKeyInstructions(operator: LocalOperatorKey, port: number): string[] {
  const where =
    operator.source === 'environment'
      ? 'OPERATOR_API_KEY (from the environment)'
      : `${operator.file}${operator.source === 'created' ? ' (created now, mode 0600)' : ''}`;
  const token =
    operator.source === 'environment'
      ? 'export TOKEN="$OPERATOR_API_KEY"'
      : `export TOKEN=$(cat ${shellQuote(displayPath(operator.file!))})`;
  return [
    `  Operator key   ${where}`,
    `                 ${token}`,
    `                 curl -H "Authorization: Bearer $TOKEN" http://localhost:${port}/api-keys`,
  ];
}

/** Relative to the working directory when inside it (`.data/operator-api-key`), else absolute. */
function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

const shellQuote = (text: string): string => (/^[A-Za-z0-9_./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`);
