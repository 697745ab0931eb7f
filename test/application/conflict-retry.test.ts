import { retryOnConflict } from '../../application/conflict-retry';
import {
  DuplicateEventIdError,
  EventStoreUnavailableError,
  EventStoreValidationError,
  WrongExpectedVersionError,
} from '../../eventstore/errors';

const conflict = (n = 0) => new WrongExpectedVersionError('account-x', BigInt(n), BigInt(n + 1));

/** An attempt that throws the given errors in turn, then resolves with `value`. */
function scripted<T>(errors: unknown[], value: T) {
  let calls = 0;
  const attempt = jest.fn(async (): Promise<T> => {
    const error = errors[calls++];
    if (calls <= errors.length) throw error;
    return value;
  });
  return attempt;
}

describe('retryOnConflict', () => {
  let delays: number[];
  beforeEach(() => {
    delays = [];
    // Record the backoff pauses but do not actually wait for them.
    const realSetTimeout = global.setTimeout;
    jest.spyOn(global, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      return realSetTimeout(fn, 0);
    }) as typeof setTimeout);
  });
  afterEach(() => jest.restoreAllMocks());

  test('returns the first result without retrying when there is no conflict', async () => {
    const attempt = scripted([], 'done');
    const onConflict = jest.fn();
    await expect(retryOnConflict(attempt, { onConflict })).resolves.toBe('done');
    expect(attempt).toHaveBeenCalledTimes(1);
    expect(onConflict).not.toHaveBeenCalled();
    expect(delays).toEqual([]);
  });

  test('retries WrongExpectedVersionError and returns the eventual result, calling onConflict once per retry', async () => {
    const attempt = scripted([conflict(1), conflict(2), conflict(3)], 42);
    const onConflict = jest.fn();
    await expect(retryOnConflict(attempt, { onConflict, maxRetries: 5 })).resolves.toBe(42);
    expect(attempt).toHaveBeenCalledTimes(4);
    expect(onConflict).toHaveBeenCalledTimes(3);
    expect(delays).toHaveLength(3);
  });

  test.each([0, 1, 3])('with maxRetries %d: makes maxRetries + 1 attempts, then rethrows the last conflict', async (maxRetries) => {
    const errors = Array.from({ length: maxRetries + 5 }, (_, i) => conflict(i));
    const attempt = scripted(errors, 'never');
    const onConflict = jest.fn();
    const outcome = retryOnConflict(attempt, { onConflict, maxRetries });
    await expect(outcome).rejects.toBe(errors[maxRetries]);
    expect(attempt).toHaveBeenCalledTimes(maxRetries + 1);
    expect(onConflict).toHaveBeenCalledTimes(maxRetries);
  });

  test('defaults to 8 retries (9 attempts)', async () => {
    const errors = Array.from({ length: 20 }, (_, i) => conflict(i));
    const attempt = scripted(errors, 'never');
    const onConflict = jest.fn();
    await expect(retryOnConflict(attempt, { onConflict })).rejects.toBeInstanceOf(WrongExpectedVersionError);
    expect(attempt).toHaveBeenCalledTimes(9);
    expect(onConflict).toHaveBeenCalledTimes(8);
  });

  test('succeeds on the very last allowed attempt', async () => {
    const attempt = scripted([conflict(), conflict()], 'last');
    await expect(retryOnConflict(attempt, { maxRetries: 2 })).resolves.toBe('last');
    expect(attempt).toHaveBeenCalledTimes(3);
  });

  test.each<[string, unknown]>([
    ['a plain Error', new Error('boom')],
    ['DuplicateEventIdError', new DuplicateEventIdError('account-x', '00000000-0000-4000-8000-000000000000')],
    ['EventStoreUnavailableError', new EventStoreUnavailableError('down')],
    ['EventStoreValidationError', new EventStoreValidationError('stream', 'bad')],
    [
      'a look-alike that is not a WrongExpectedVersionError',
      Object.assign(new Error('x'), { name: 'WrongExpectedVersionError', code: 'wrong_expected_version' }),
    ],
    ['a thrown string', 'just a string'],
  ])('does not retry %s', async (_label, error) => {
    const attempt = scripted([error], 'never');
    const onConflict = jest.fn();
    await expect(retryOnConflict(attempt, { onConflict })).rejects.toBe(error);
    expect(attempt).toHaveBeenCalledTimes(1);
    expect(onConflict).not.toHaveBeenCalled();
    expect(delays).toEqual([]);
  });

  test('another error after some conflicts propagates at once', async () => {
    const boom = new Error('boom');
    const attempt = scripted([conflict(), conflict(), boom], 'never');
    const onConflict = jest.fn();
    await expect(retryOnConflict(attempt, { onConflict, maxRetries: 8 })).rejects.toBe(boom);
    expect(attempt).toHaveBeenCalledTimes(3);
    expect(onConflict).toHaveBeenCalledTimes(2);
  });

  test('onConflict is called before the pause of each retry', async () => {
    const order: string[] = [];
    const attempt = jest.fn(async () => {
      order.push('attempt');
      if (order.filter((o) => o === 'attempt').length < 3) throw conflict();
      return 'ok';
    });
    await retryOnConflict(attempt, { onConflict: () => order.push(`conflict(delays so far: ${delays.length})`) });
    expect(order).toEqual(['attempt', 'conflict(delays so far: 0)', 'attempt', 'conflict(delays so far: 1)', 'attempt']);
  });

  test('works without an onConflict callback', async () => {
    await expect(retryOnConflict(scripted([conflict()], 'ok'))).resolves.toBe('ok');
  });

  test('pauses with full jitter under an exponential ceiling capped at 200 ms', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const errors = Array.from({ length: 20 }, (_, i) => conflict(i));
    await expect(retryOnConflict(scripted(errors, 'never'), { maxRetries: 9 })).rejects.toBeInstanceOf(WrongExpectedVersionError);
    expect(delays).toEqual([5, 10, 20, 40, 80, 160, 200, 200, 200].map((ceiling) => ceiling * 0.5));
  });
});
