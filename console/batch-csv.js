/**
 * A batch of transfers as CSV, read strictly in the browser before anything is sent (issue 26, item 4).
 *
 * - The first non-blank line is the header: the columns fromAccountId, toAccountId and amount, and optionally
 *   transferId, in any order, each once, nothing else (names as written, surrounding spaces ignored).
 * - Every other non-blank line is one item with exactly as many fields as the header. A field may be quoted ("..."
 *   with "" for a quote); none of the values the API takes needs quotes, so a quote left open is an error.
 * - fromAccountId and toAccountId: UUIDs (as the API checks them), different from each other.
 * - amount: a whole number of minor units, digits only (no sign, decimal point, exponent or separators), greater than
 *   zero and at most Number.MAX_SAFE_INTEGER.
 * - transferId (when the column is there): empty (the API names the item) or 1-64 letters, digits, _ and -, starting
 *   with a letter or digit; never the same twice in a batch.
 *
 * Pure (no DOM, no imports): unit-tested on its own (test/console/batch-csv.unit.test.ts).
 */

export const BATCH_CSV_COLUMNS = ['fromAccountId', 'toAccountId', 'amount', 'transferId'];
const REQUIRED = ['fromAccountId', 'toAccountId', 'amount'];

/** As the API's AccountId (zod's z.uuid(): RFC 9562 versions 1-8 with the variant bits, or the nil / max UUID). */
const UUID =
  /^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$/;
/** As the API's TransferId (and a batch's id). */
export const TRANSFER_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * The fields of one line of CSV: an array of strings (each trimmed), or { error } when a quote is left open or text
 * follows a closing quote.
 */
export function splitCsvLine(line) {
  const fields = [];
  let i = 0;
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t') i += 1;
    if (line[i] === '"') {
      let value = '';
      i += 1;
      for (;;) {
        if (i >= line.length) return { error: 'a quoted field is not closed' };
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        value += line[i];
        i += 1;
      }
      while (line[i] === ' ' || line[i] === '\t') i += 1;
      if (i < line.length && line[i] !== ',') return { error: 'text after a closing quote' };
      fields.push(value.trim());
    } else {
      const end = line.indexOf(',', i);
      const raw = end === -1 ? line.slice(i) : line.slice(i, end);
      if (raw.includes('"')) return { error: 'a quote inside an unquoted field' };
      fields.push(raw.trim());
      i = end === -1 ? line.length : end;
    }
    if (i >= line.length) return fields;
    i += 1; // the comma
  }
}

/**
 * Reads a batch's CSV. Answers { items, lines, errors }: `items` as POST /transfer-batches takes them (transferId
 * only where given), `lines[i]` the line number (1-based, as an editor counts) of items[i], and `errors` as
 * [{ line, message }] (line 0: the text as a whole). Nothing is to be sent unless `errors` is empty.
 */
export function parseBatchCsv(text) {
  const errors = [];
  const items = [];
  const lines = [];
  const rows = String(text ?? '')
    .replace(/^\uFEFF/, '')
    .split(/\r\n|\n|\r/);
  let header;
  let columns;
  /** transferId -> the line where it first appears. */
  const ids = new Map();
  for (const [index, row] of rows.entries()) {
    const line = index + 1;
    if (row.trim() === '') continue;
    const fields = splitCsvLine(row);
    if (!Array.isArray(fields)) {
      errors.push({ line, message: `not CSV: ${fields.error}` });
      if (!header) return { items, lines, errors };
      continue;
    }
    if (!header) {
      header = fields;
      const problems = headerProblems(fields);
      if (problems.length) {
        for (const message of problems) errors.push({ line, message });
        return { items, lines, errors };
      }
      columns = new Map(fields.map((name, i) => [name, i]));
      continue;
    }
    if (fields.length !== header.length) {
      errors.push({ line, message: `${fields.length} field${fields.length === 1 ? '' : 's'} where the header has ${header.length}` });
      continue;
    }
    const value = (name) => (columns.has(name) ? fields[columns.get(name)] : '');
    const item = {};
    const problems = [];
    for (const name of ['fromAccountId', 'toAccountId']) {
      const id = value(name);
      if (id === '') problems.push(`${name} is empty`);
      else if (!UUID.test(id)) problems.push(`${name} must be a UUID (got "${shorten(id)}")`);
      else item[name] = id;
    }
    if (item.fromAccountId && item.toAccountId && item.fromAccountId.toLowerCase() === item.toAccountId.toLowerCase())
      problems.push('toAccountId must differ from fromAccountId');
    const amount = amountProblem(value('amount'));
    if (typeof amount === 'string') problems.push(amount);
    else item.amount = amount;
    const transferId = value('transferId');
    if (transferId !== '') {
      if (!TRANSFER_ID.test(transferId))
        problems.push(
          `transferId must be 1-64 characters: letters, digits, _ and -, starting with a letter or digit (got "${shorten(transferId)}")`,
        );
      else if (ids.has(transferId)) problems.push(`transferId ${transferId} is already on line ${ids.get(transferId)}`);
      else ids.set(transferId, line);
    }
    if (problems.length) {
      for (const message of problems) errors.push({ line, message });
      continue;
    }
    items.push({
      ...(transferId !== '' ? { transferId } : {}),
      fromAccountId: item.fromAccountId,
      toAccountId: item.toAccountId,
      amount: item.amount,
    });
    lines.push(line);
  }
  if (!header) errors.push({ line: 0, message: `No header: the first line names the columns, e.g. ${REQUIRED.join(',')}` });
  else if (!items.length && !errors.length) errors.push({ line: 0, message: 'No items: a line per transfer after the header' });
  return { items, lines, errors };
}

function headerProblems(fields) {
  const problems = [];
  const seen = new Set();
  for (const name of fields) {
    if (name === '') problems.push('the header has an empty column name');
    else if (!BATCH_CSV_COLUMNS.includes(name))
      problems.push(`unknown column "${shorten(name)}" (the columns are ${BATCH_CSV_COLUMNS.join(', ')}; transferId optional)`);
    else if (seen.has(name)) problems.push(`column ${name} appears twice`);
    seen.add(name);
  }
  const missing = REQUIRED.filter((name) => !seen.has(name));
  if (missing.length) problems.push(`the header lacks ${missing.join(', ')} (a header line is required, e.g. ${REQUIRED.join(',')})`);
  return problems;
}

/** The amount as a number, or why not (a string). */
function amountProblem(text) {
  if (text === '') return 'amount is empty';
  if (!/^[0-9]+$/.test(text))
    return `amount must be a whole number of minor units, digits only (e.g. 1050 for 10.50; got "${shorten(text)}")`;
  const n = Number(text);
  if (!Number.isSafeInteger(n)) return `amount ${shorten(text)} is too large (at most ${Number.MAX_SAFE_INTEGER})`;
  if (n <= 0) return 'amount must be greater than zero';
  return n;
}

const shorten = (text) => (text.length > 40 ? `${text.slice(0, 40)}…` : text);

/**
 * A field an API problem names for an item (`items[3].amount`) as its CSV line: { line, column } or null. `lines`:
 * parseBatchCsv's.
 */
export function lineOfField(field, lines) {
  const match = /^items\[(\d+)\](?:\.(\w+))?/.exec(String(field));
  if (!match) return null;
  const line = lines[Number(match[1])];
  return line === undefined ? null : { line, column: match[2] ?? null };
}
