import type { Pool } from 'pg';
import { AccountRepository } from '../../application/account-repository';
import { TransferLog } from '../../application/transfer-log';
import { ACCOUNT_STREAM_PREFIX } from '../../domain/account-events';
import { TRANSFER_STREAM_PREFIX } from '../../domain/transfer-events';
import type { EventStore, GlobalPosition, RecordedEvent } from '../../eventstore/event-store';
import type { Projection } from '../../projections/projection';

export const MOVEMENT_TYPES = ['MoneyDeposited', 'MoneyWithdrawn', 'TransferDebited', 'TransferCredited', 'TransferRefunded'];

/** Each read-model table's key, for reading whole tables in a stable order. */
export const TABLE_KEYS: Record<string, string> = {
  rm_account_balances: 'account_id COLLATE "C"',
  rm_account_history: 'account_id COLLATE "C", revision',
  rm_transfers: 'transfer_id COLLATE "C"',
  rm_statement_movements: 'account_id COLLATE "C", revision',
  rm_closed_days: 'timezone COLLATE "C", business_date COLLATE "C"',
  rm_correction_notices: 'timezone COLLATE "C", pos_commit, pos_prepare',
  rm_exceptions: 'exception_id COLLATE "C"',
  rm_holds: 'hold_id COLLATE "C"',
  rm_transfer_batches: 'batch_id COLLATE "C"',
  rm_transfer_batch_items: 'batch_id COLLATE "C", item_index',
  rm_transfer_batch_outcomes: 'batch_id COLLATE "C", transfer_id COLLATE "C"',
};

/**
 * Whether a projection keeps an event of its stream prefix and event types (else it answers 'ignored'): the batches
 * read model is given every transfer's outcome and keeps only those of batch items (metadata.batchId); every other
 * projection keeps all it is given.
 */
export function keptBy(projection: Projection, event: RecordedEvent): boolean {
  if (!event.stream.startsWith(projection.streamPrefix)) return false;
  if (projection.eventTypes && !projection.eventTypes.includes(event.type)) return false;
  return projection.name !== 'transfer-batches' || event.stream.startsWith('batch-') || typeof event.metadata.batchId === 'string';
}

/** The whole log, paged. */
export async function readWholeLog(store: EventStore, filter: { streamPrefix?: string } = {}): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  let from: GlobalPosition | undefined;
  for (;;) {
    const page = await store.readAll({ fromPosition: from, maxCount: 5_000, ...filter });
    out.push(...page);
    if (page.length < 5_000) return out;
    from = page.at(-1)!.position;
  }
}

/** A whole table, ordered by its key (bigints as text, timestamps as Dates, jsonb parsed). */
export async function tableRows(pool: Pool, logical: string, physical = logical): Promise<Record<string, unknown>[]> {
  return (await pool.query(`SELECT * FROM ${physical} ORDER BY ${TABLE_KEYS[logical]!}`)).rows as Record<string, unknown>[];
}

/** All three read models, by logical table name, from the given physical names (default: the live tables). */
export async function allTables(
  pool: Pool,
  physical: (logical: string) => string = (t) => t,
): Promise<Record<string, Record<string, unknown>[]>> {
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const logical of Object.keys(TABLE_KEYS)) out[logical] = await tableRows(pool, logical, physical(logical));
  return out;
}

/** Fresh copies of a projection's tables under `<table>__<suffix>`; returns the logical -> physical map. */
export async function freshTables(pool: Pool, projection: Projection, suffix: string): Promise<Record<string, string>> {
  const tables: Record<string, string> = {};
  for (const [name, ddl] of Object.entries(projection.tables)) {
    const physical = `${name}__${suffix}`;
    await pool.query(`DROP TABLE IF EXISTS ${physical}`);
    await pool.query(ddl(physical));
    tables[name] = physical;
  }
  return tables;
}

/** What the read models must hold, computed from the event store alone (folds of the streams). */
export async function expectedReadModels(store: EventStore): Promise<{
  balances: Record<string, string>[];
  history: Record<string, string | null>[];
  transfers: Record<string, unknown>[];
  accountIds: string[];
  transferIds: string[];
}> {
  const accounts = new AccountRepository(store);
  const log = new TransferLog(store);
  const accountEvents = await readWholeLog(store, { streamPrefix: ACCOUNT_STREAM_PREFIX });
  const transferEvents = await readWholeLog(store, { streamPrefix: TRANSFER_STREAM_PREFIX });
  // Code-point order, as ORDER BY ... COLLATE "C" sorts.
  const accountIds = [...new Set(accountEvents.map((e) => e.stream.slice(ACCOUNT_STREAM_PREFIX.length)))].sort();
  const transferIds = [...new Set(transferEvents.map((e) => e.stream.slice(TRANSFER_STREAM_PREFIX.length)))].sort();

  const balances: Record<string, string>[] = [];
  for (const accountId of accountIds) {
    const { state, revision } = await accounts.loadWithoutSnapshot(accountId);
    balances.push({
      account_id: accountId,
      owner_id: state.ownerId,
      currency: state.currency,
      balance: String(state.balance),
      held: String(state.held),
      status: state.status,
      revision: String(revision),
    });
  }
  const history = accountEvents
    .filter((e) => MOVEMENT_TYPES.includes(e.type))
    .map((e) => {
      const d = e.data as {
        accountId: string;
        amount: number;
        balanceAfter: number;
        transferId?: string;
        toAccountId?: string;
        fromAccountId?: string;
      };
      const signed = e.type === 'MoneyWithdrawn' || e.type === 'TransferDebited' ? -d.amount : d.amount;
      return {
        account_id: d.accountId,
        revision: String(e.revision),
        event_id: e.id,
        kind: e.type,
        amount: String(signed),
        balance_after: String(d.balanceAfter),
        transfer_id: d.transferId ?? null,
        counterpart_account_id: d.toAccountId ?? d.fromAccountId ?? null,
      };
    })
    .sort((a, b) => (a.account_id === b.account_id ? Number(a.revision) - Number(b.revision) : a.account_id < b.account_id ? -1 : 1));
  const transfers: Record<string, unknown>[] = [];
  for (const transferId of transferIds) {
    const { state, revision } = await log.load(transferId);
    transfers.push({
      transfer_id: transferId,
      from_account_id: state.request!.fromAccountId,
      to_account_id: state.request!.toAccountId,
      amount: String(state.request!.amount),
      currency: state.currency ?? null,
      status: state.status,
      failure_reason: state.failureReason ?? null,
      steps: state.steps,
      revision: String(revision),
    });
  }
  return { balances, history, transfers, accountIds, transferIds };
}

/** The read models as the fold comparison sees them (the columns derived from events). */
export async function projectedReadModels(pool: Pool, physical: (logical: string) => string = (t) => t) {
  const balances = await pool.query(
    `SELECT account_id, owner_id, currency, balance::text AS balance, held::text AS held, status, revision::text AS revision FROM ${physical('rm_account_balances')} ORDER BY account_id COLLATE "C"`,
  );
  const history = await pool.query(
    `SELECT account_id, revision::text AS revision, event_id::text AS event_id, kind, amount::text AS amount, balance_after::text AS balance_after, transfer_id, counterpart_account_id
     FROM ${physical('rm_account_history')} h ORDER BY h.account_id COLLATE "C", h.revision`,
  );
  const transfers = await pool.query(
    `SELECT transfer_id, from_account_id, to_account_id, amount::text AS amount, currency, status, failure_reason, steps, revision::text AS revision
     FROM ${physical('rm_transfers')} ORDER BY transfer_id COLLATE "C"`,
  );
  return { balances: balances.rows, history: history.rows, transfers: transfers.rows };
}

/** Asserts the read models equal the folds of the event store: balances, every movement line, every transfer's status and steps. */
export async function expectReadModelsToMatchStore(
  store: EventStore,
  pool: Pool,
  physical?: (logical: string) => string,
): Promise<{ accounts: number; movements: number; transfers: number }> {
  const expected = await expectedReadModels(store);
  const actual = await projectedReadModels(pool, physical);
  expect(actual.balances).toEqual(expected.balances);
  // History: one line per movement event, so the count per account equals the movement count of its stream.
  const countBy = (rows: Record<string, unknown>[]) => {
    const counts: Record<string, number> = {};
    for (const r of rows) counts[String(r.account_id)] = (counts[String(r.account_id)] ?? 0) + 1;
    return counts;
  };
  expect(countBy(actual.history)).toEqual(countBy(expected.history));
  expect(actual.history).toEqual(expected.history);
  expect(actual.transfers.map((t) => [t.transfer_id, t.status])).toEqual(expected.transfers.map((t) => [t.transfer_id, t.status]));
  expect(actual.transfers).toEqual(expected.transfers);
  return { accounts: expected.balances.length, movements: expected.history.length, transfers: expected.transfers.length };
}

/** A small deterministic PRNG (mulberry32), so a shuffled run is reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
