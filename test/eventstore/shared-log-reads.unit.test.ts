import type { Pool } from 'pg';
import type { Queryable } from '../../eventstore/postgres/log-queries';
import { SharedLogReads } from '../../eventstore/postgres/shared-log-reads';

/** A connection whose reads answer (no events, nothing held back) or fail, after `ms`. */
function connection(outcome: 'answers' | 'fails', ms: number): Queryable & { reads: number } {
  const conn = {
    reads: 0,
    query: async () => {
      conn.reads += 1;
      await new Promise((r) => setTimeout(r, ms));
      if (outcome === 'fails') throw new Error('connection lost');
      return { rows: [{ held_back: false, position: null }] };
    },
  };
  return conn as unknown as Queryable & { reads: number };
}

describe('shared log reads', () => {
  const from = { commit: 10n, prepare: 20n };

  test("a group that joined another group's read gets it, marked shared; one query for both", async () => {
    const reads = new SharedLogReads({} as Pool);
    const a = connection('answers', 20);
    const b = connection('answers', 0);
    const [first, second] = await Promise.all([reads.after(from, 500, 1, a), reads.after(from, 500, 1, b)]);
    expect(first.shared).toBe(false);
    expect(second.shared).toBe(true);
    expect(a.reads + b.reads).toBe(1);
  });

  test('a read started before the wake-up a group knows of is not shared with it', async () => {
    const reads = new SharedLogReads({} as Pool);
    const a = connection('answers', 20);
    const b = connection('answers', 0);
    await Promise.all([reads.after(from, 500, 1, a), reads.after(from, 500, 2, b)]);
    expect([a.reads, b.reads]).toEqual([1, 1]);
  });

  test("another group's read failing (its connection lost) is not this group's failure: it reads for itself", async () => {
    const reads = new SharedLogReads({} as Pool);
    const broken = connection('fails', 20);
    const healthy = connection('answers', 0);
    const [first, second] = await Promise.allSettled([reads.after(from, 500, 1, broken), reads.after(from, 500, 1, healthy)]);
    expect(first.status).toBe('rejected');
    expect(second.status).toBe('fulfilled');
    expect(second.status === 'fulfilled' && second.value.shared).toBe(false);
    expect(healthy.reads).toBe(1);
  });
});
