import { HistoryQuery, PositionText, StrictTime } from '../../api/schemas';
import { isBigintText, isStorableText, unstorableField } from '../../api/validate';

/** Issue 23, item 11: the pure checks behind "every string that reaches PostgreSQL is validated at the edge". */
describe('storable input', () => {
  test.each([
    ['plain text', 'order-4711', true],
    ['a surrogate pair (an emoji)', 'pay 😀', true],
    ['NUL', 'a\u0000b', false],
    ['a lone high surrogate', 'a\ud800', false],
    ['a lone low surrogate', '\udc00b', false],
    ['a pair in the wrong order', '\udc00\ud800', false],
  ])('isStorableText: %s', (_name, text, ok) => {
    expect(isStorableText(text)).toBe(ok);
  });

  test('unstorableField names the first bad string, keys too, and survives deep nesting', () => {
    expect(unstorableField({ a: 'x', b: ['ok', 'n\u0000'] })).toBe('b.1');
    expect(unstorableField({ reason: '\ud800' })).toBe('reason');
    expect(unstorableField('\u0000')).toBe('');
    expect(unstorableField({ ['k\u0000']: 1 })).toBe('(a field name)');
    expect(unstorableField({ a: 1, b: null, c: [true, { d: 'fine' }] })).toBeUndefined();
    let deep: unknown = '\u0000';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(unstorableField(deep)).toMatch(/^0(\.0)*$/);
  });

  test.each([
    ['0', true],
    ['9223372036854775807', true],
    ['9223372036854775808', false],
    ['9999999999999999999', false],
    ['-1', false],
    ['', false],
  ])('isBigintText(%s)', (text, ok) => {
    expect(isBigintText(text)).toBe(ok);
  });

  test('positions and history cursors fit bigint', () => {
    expect(PositionText.safeParse('812.40').success).toBe(true);
    expect(PositionText.safeParse('9223372036854775807.9223372036854775807').success).toBe(true);
    expect(PositionText.safeParse('9223372036854775808.0').success).toBe(false);
    expect(PositionText.safeParse('1.9999999999999999999').success).toBe(false);
    expect(HistoryQuery.safeParse({ cursor: '9999999999999999999' }).success).toBe(false);
    expect(HistoryQuery.safeParse({ cursor: '42' }).success).toBe(true);
  });

  test.each([
    ['2026-03-03T00:00:00Z', true],
    ['2026-03-03T00:00:00.123+01:00', true],
    ['2026-03-03T00:00:00+14:00', true],
    ['2026-03-03T00:00:00-14:00', true],
    ['2026-03-03T00:00:00+14:01', false],
    ['2026-01-01T00:00:00+23:59', false],
    ['2026-02-30T00:00:00Z', false],
    ['2026-01-01T24:00:00Z', false],
    ['0000-01-01T00:00:00Z', false],
    ['2026-03-03', false],
    ['2026-03-03T00:00:00', false],
    ['Tue, 03 Mar 2026 00:00:00 GMT', false],
  ])('StrictTime(%s)', (text, ok) => {
    expect(StrictTime.safeParse(text).success).toBe(ok);
  });
});
