import { readFileSync } from 'node:fs';
import path from 'node:path';
import { transformSync } from '@swc/core';

/**
 * The console's CSV reader for batches (console/batch-csv.js), on its own: the strict rules the batch page applies
 * before it sends anything. The console's files are browser ES modules; this loads the pure one as CommonJS (SWC, as
 * jest does for the .ts files) so its functions are called directly.
 */

interface Parsed {
  items: Array<{ transferId?: string; fromAccountId: string; toAccountId: string; amount: number }>;
  lines: number[];
  errors: Array<{ line: number; message: string }>;
}
interface BatchCsv {
  parseBatchCsv(text: string): Parsed;
  splitCsvLine(line: string): string[] | { error: string };
  lineOfField(field: string, lines: number[]): { line: number; column: string | null } | null;
}

function load(): BatchCsv {
  const file = path.resolve(__dirname, '..', '..', 'console', 'batch-csv.js');
  const { code } = transformSync(readFileSync(file, 'utf8'), {
    filename: file,
    jsc: { target: 'es2022', parser: { syntax: 'ecmascript' } },
    module: { type: 'commonjs' },
  });
  const module = { exports: {} as Record<string, unknown> };
  // Our own file, compiled above; it imports nothing.
  new Function('module', 'exports', 'require', code)(module, module.exports, () => {
    throw new Error('console/batch-csv.js must import nothing');
  });
  return module.exports as unknown as BatchCsv;
}

const { parseBatchCsv, splitCsvLine, lineOfField } = load();

const A = '0b5e6f8e-2f3c-4c1e-9d7a-5f2b9b1c3d4e';
const B = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b';
const C = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';

describe('parseBatchCsv', () => {
  test('the header and three items, with and without transfer ids', () => {
    const parsed = parseBatchCsv(`fromAccountId,toAccountId,amount,transferId\n${A},${B},1050,pay-1\n${B},${C},1,\n${C},${A},25,pay-3\n`);
    expect(parsed.errors).toEqual([]);
    expect(parsed.items).toEqual([
      { transferId: 'pay-1', fromAccountId: A, toAccountId: B, amount: 1050 },
      { fromAccountId: B, toAccountId: C, amount: 1 },
      { transferId: 'pay-3', fromAccountId: C, toAccountId: A, amount: 25 },
    ]);
    expect(parsed.lines).toEqual([2, 3, 4]);
  });

  test('columns in any order, without transferId; CRLF, a BOM, blank lines and spaces around fields', () => {
    const parsed = parseBatchCsv(`\uFEFF amount , toAccountId,fromAccountId\r\n\r\n 300 , ${B} ,${A}\r\n   \r\n7,${A},${B}\r\n`);
    expect(parsed.errors).toEqual([]);
    expect(parsed.items).toEqual([
      { fromAccountId: A, toAccountId: B, amount: 300 },
      { fromAccountId: B, toAccountId: A, amount: 7 },
    ]);
    expect(parsed.lines).toEqual([3, 5]);
  });

  test('quoted fields, as spreadsheets write them', () => {
    const parsed = parseBatchCsv(`"fromAccountId","toAccountId","amount","transferId"\n"${A}","${B}","1200","x-1"`);
    expect(parsed.errors).toEqual([]);
    expect(parsed.items).toEqual([{ transferId: 'x-1', fromAccountId: A, toAccountId: B, amount: 1200 }]);
  });

  test('no header: the first line must name the columns', () => {
    const parsed = parseBatchCsv(`${A},${B},100\n`);
    expect(parsed.items).toEqual([]);
    expect(parsed.errors.length).toBeGreaterThan(0);
    expect(parsed.errors.every((e) => e.line === 1)).toBe(true);
    expect(parsed.errors.map((e) => e.message).join(' ')).toMatch(/unknown column/);
    expect(parsed.errors.map((e) => e.message).join(' ')).toMatch(/lacks fromAccountId, toAccountId, amount/);
  });

  test('an empty text, or a header alone, is refused', () => {
    expect(parseBatchCsv('').errors).toEqual([{ line: 0, message: expect.stringMatching(/No header/) }]);
    expect(parseBatchCsv(' \n\n').errors).toEqual([{ line: 0, message: expect.stringMatching(/No header/) }]);
    expect(parseBatchCsv('fromAccountId,toAccountId,amount\n').errors).toEqual([{ line: 0, message: expect.stringMatching(/No items/) }]);
  });

  test('header faults: a missing, unknown, duplicated or empty column', () => {
    const messages = (header: string) => parseBatchCsv(`${header}\n${A},${B},1\n`).errors.map((e) => e.message);
    expect(messages('fromAccountId,toAccountId')).toEqual([expect.stringMatching(/lacks amount/)]);
    expect(messages('fromAccountId,toAccountId,amount,currency')).toEqual([expect.stringMatching(/unknown column "currency"/)]);
    expect(messages('fromAccountId,toAccountId,amount,amount')).toEqual([expect.stringMatching(/column amount appears twice/)]);
    expect(messages('fromAccountId,,amount,toAccountId')).toEqual([expect.stringMatching(/empty column name/)]);
    // Names as written: the API's field names, not a case-folded guess.
    expect(messages('FromAccountId,toAccountId,amount')).toEqual([
      expect.stringMatching(/unknown column "FromAccountId"/),
      expect.stringMatching(/lacks fromAccountId/),
    ]);
  });

  test.each([
    ['10.50', /whole number/],
    ['1e3', /whole number/],
    ['-5', /whole number/],
    ['+5', /whole number/],
    ['1,000', /field/], // a comma is a separator: one field too many
    ['1 000', /whole number/],
    ['0', /greater than zero/],
    ['', /amount is empty/],
    ['9007199254740992', /too large/],
    ['ten', /whole number/],
  ])('amount %j is refused, naming its line', (amount, message) => {
    const text = `fromAccountId,toAccountId,amount\n${A},${B},100\n${A},${B},${amount}\n`;
    const parsed = parseBatchCsv(text);
    expect(parsed.errors).toEqual([{ line: 3, message: expect.stringMatching(message) }]);
    expect(parsed.items).toHaveLength(1);
  });

  test('the largest safe integer is an amount', () => {
    expect(parseBatchCsv(`fromAccountId,toAccountId,amount\n${A},${B},9007199254740991`).items[0]!.amount).toBe(Number.MAX_SAFE_INTEGER);
  });

  test('account ids: UUIDs as the API takes them, two different accounts', () => {
    const errors = (from: string, to: string) => parseBatchCsv(`fromAccountId,toAccountId,amount\n${from},${to},5`).errors;
    expect(errors('acc-1', B)).toEqual([{ line: 2, message: expect.stringMatching(/fromAccountId must be a UUID/) }]);
    expect(errors(A, '')).toEqual([{ line: 2, message: 'toAccountId is empty' }]);
    // Hex in the right shape but not an RFC 9562 UUID (version 0): the API would refuse it too.
    expect(errors(A, '6f1c2a3b-4d5e-0f60-8a7b-9c0d1e2f3a4b')).toEqual([
      { line: 2, message: expect.stringMatching(/toAccountId must be a UUID/) },
    ]);
    expect(errors(A, A.toUpperCase())).toEqual([{ line: 2, message: 'toAccountId must differ from fromAccountId' }]);
  });

  test('transfer ids: the API’s shape, never twice (naming the first line)', () => {
    const parsed = parseBatchCsv(
      `transferId,fromAccountId,toAccountId,amount\nt-1,${A},${B},1\nt 2,${A},${B},1\n-x,${A},${B},1\nt-1,${B},${A},1\n${'a'.repeat(65)},${A},${B},1\n`,
    );
    expect(parsed.errors).toEqual([
      { line: 3, message: expect.stringMatching(/transferId must be 1-64 characters/) },
      { line: 4, message: expect.stringMatching(/transferId must be 1-64 characters/) },
      { line: 5, message: 'transferId t-1 is already on line 2' },
      { line: 6, message: expect.stringMatching(/transferId must be 1-64 characters/) },
    ]);
    expect(parsed.items).toEqual([{ transferId: 't-1', fromAccountId: A, toAccountId: B, amount: 1 }]);
  });

  test('a line with too few or too many fields, and every fault of a line reported', () => {
    const parsed = parseBatchCsv(`fromAccountId,toAccountId,amount\n${A},${B}\n${A},${B},1,extra\nx,y,z\n`);
    expect(parsed.errors).toEqual([
      { line: 2, message: '2 fields where the header has 3' },
      { line: 3, message: '4 fields where the header has 3' },
      { line: 4, message: expect.stringMatching(/fromAccountId must be a UUID/) },
      { line: 4, message: expect.stringMatching(/toAccountId must be a UUID/) },
      { line: 4, message: expect.stringMatching(/amount must be a whole number/) },
    ]);
    expect(parsed.items).toEqual([]);
  });

  test('broken quoting is an error of its line, not a guess', () => {
    const parsed = parseBatchCsv(`fromAccountId,toAccountId,amount\n"${A},${B},1\n${A},"${B}"x,1\n${A},${B},1"0"\n`);
    expect(parsed.errors).toEqual([
      { line: 2, message: 'not CSV: a quoted field is not closed' },
      { line: 3, message: 'not CSV: text after a closing quote' },
      { line: 4, message: 'not CSV: a quote inside an unquoted field' },
    ]);
  });

  test('a header with broken quoting stops the reading', () => {
    expect(parseBatchCsv(`"fromAccountId,toAccountId,amount\n${A},${B},1`).errors).toEqual([
      { line: 1, message: 'not CSV: a quoted field is not closed' },
    ]);
  });
});

describe('splitCsvLine', () => {
  test('fields, quoted fields with "" and commas, empty fields', () => {
    expect(splitCsvLine('a,b,,c')).toEqual(['a', 'b', '', 'c']);
    expect(splitCsvLine('"a,b","say ""hi""", c ')).toEqual(['a,b', 'say "hi"', 'c']);
    expect(splitCsvLine('a,')).toEqual(['a', '']);
  });
});

describe('lineOfField', () => {
  test("a problem's items[i].field as the CSV line of item i", () => {
    const lines = [2, 4, 5];
    expect(lineOfField('items[1].amount', lines)).toEqual({ line: 4, column: 'amount' });
    expect(lineOfField('items[0]', lines)).toEqual({ line: 2, column: null });
    expect(lineOfField('items[3].amount', lines)).toBeNull();
    expect(lineOfField('batchId', lines)).toBeNull();
  });
});
