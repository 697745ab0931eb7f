import { ACCOUNT_EVENT_TYPES, ACCOUNT_STREAM_PREFIX, isMovement, type AccountEvent } from '../domain/account-events';
import { toDomainEvent } from '../application/event-envelope';
import type { RecordedEvent } from '../eventstore/event-store';
import type { BatchPlan, BatchProjection } from './projection';
import { arrayParams, explainSkippedWrite, streamRuns } from './projection';
import { accountBalancesDdl } from './read-model-schema';

/** rm_account_balances: one row per account, at the revision of the last event applied. */
export const accountBalancesProjection: BatchProjection = {
  name: 'account-balances',
  streamPrefix: ACCOUNT_STREAM_PREFIX,
  eventTypes: ACCOUNT_EVENT_TYPES,
  tables: { rm_account_balances: accountBalancesDdl },
  async apply(client, recorded, tables) {
    const t = tables.rm_account_balances!;
    const event = toDomainEvent<AccountEvent>(recorded, ACCOUNT_EVENT_TYPES);
    const accountId = event.data.accountId;
    const at = recorded.metadata.occurredAt;
    // One guarded write per event: it lands only on the row at the revision just before this event (or, for the
    // first event, where there is no row), so events apply in stream order, once. When it touches nothing, the row
    // says why (explainSkippedWrite): a duplicate, or an earlier event still to come.
    const why = (first: string) =>
      explainSkippedWrite(client, `SELECT revision::text AS revision FROM ${t} WHERE account_id = $1`, accountId, recorded, first);
    if (event.type === 'AccountOpened') {
      // Only the stream's first event creates the row.
      if (recorded.revision !== 0n) return why(`Account ${accountId}: AccountOpened at revision ${recorded.revision}, not the first`);
      const inserted = await client.query(
        `INSERT INTO ${t} (account_id, owner_id, currency, balance, status, revision, opened_at, updated_at)
         VALUES ($1, $2, $3, 0, 'open', $4, $5, $5)
         ON CONFLICT (account_id) DO NOTHING`,
        [accountId, event.data.ownerId, event.data.currency, recorded.revision.toString(), at],
      );
      if (inserted.rowCount === 1) return 'applied';
      return why(`Account ${accountId}: its row vanished`); // it exists (the insert did nothing): duplicate
    }
    // The balance the event carries (the guard applies events in stream order): the domain's own figure, never
    // recomputed here. Events that move no money keep the balance. Likewise what holds reserve (heldAfter of
    // HoldPlaced/HoldReleased); other events keep it.
    const balanceAfter = isMovement(event) ? event.data.balanceAfter : null;
    const updated = await client.query(
      `UPDATE ${t} SET balance = COALESCE($2, balance), status = CASE WHEN $3 THEN 'closed' ELSE status END, revision = $4, updated_at = $5,
         held = COALESCE($6, held)
       WHERE account_id = $1 AND revision = $4::bigint - 1`,
      [accountId, balanceAfter, event.type === 'AccountClosed', recorded.revision.toString(), at, heldAfterOf(event)],
    );
    if (updated.rowCount === 1) return 'applied';
    return why(`Account ${accountId}: ${event.type} before AccountOpened`);
  },
  planBatch: planBalances,
};

/** What open holds reserve on the account after this event (HoldPlaced/HoldReleased carry it), or null: unchanged. */
function heldAfterOf(event: AccountEvent): number | null {
  return event.type === 'HoldPlaced' || event.type === 'HoldReleased' ? event.data.heldAfter : null;
}

/**
 * A batch in one statement (see BatchPlan): per account, its run of events folded into one write, as apply() would
 * leave the row after the last of them. An account opened in the batch is inserted; the others are updated only where
 * the row is at the revision before the run's first event. Anything else (AccountOpened not first, a run that cannot
 * be folded) goes to apply().
 */
function planBalances(events: RecordedEvent[], tables: Record<string, string>): BatchPlan {
  const t = tables.rm_account_balances!;
  const { runs, broken } = streamRuns(events);
  const rest = [...broken];
  const units: BatchPlan['units'] = [];
  const ins = {
    id: [] as string[],
    owner: [] as string[],
    currency: [] as string[],
    balance: [] as number[],
    closed: [] as boolean[],
    held: [] as number[],
  };
  const insRev: string[] = [];
  const insOpened: string[] = [];
  const insAt: string[] = [];
  const upd = {
    id: [] as string[],
    first: [] as string[],
    last: [] as string[],
    balance: [] as (number | null)[],
    closed: [] as boolean[],
    held: [] as (number | null)[],
  };
  const updAt: string[] = [];
  for (const run of runs) {
    const domain = run.map((e) => toDomainEvent<AccountEvent>(e, ACCOUNT_EVENT_TYPES));
    const opened = domain[0]!.type === 'AccountOpened' ? domain[0] : undefined;
    const opensLater = domain.some((e, i) => e.type === 'AccountOpened' && (i > 0 || run[0]!.revision !== 0n));
    if (opensLater || (opened === undefined && run[0]!.revision === 0n)) {
      rest.push(...run); // apply() refuses these with the reason
      continue;
    }
    const accountId = domain[0]!.data.accountId;
    const movements = domain.filter(isMovement);
    const balanceAfter = movements.length > 0 ? movements.at(-1)!.data.balanceAfter : null;
    const closed = domain.some((e) => e.type === 'AccountClosed');
    const helds = domain.map(heldAfterOf).filter((h) => h !== null);
    const heldAfter = helds.length > 0 ? helds.at(-1)! : null;
    const at = run.at(-1)!.metadata.occurredAt;
    if (opened?.type === 'AccountOpened') {
      ins.id.push(accountId);
      ins.owner.push(opened.data.ownerId);
      ins.currency.push(opened.data.currency);
      ins.balance.push(balanceAfter ?? 0);
      ins.closed.push(closed);
      ins.held.push(heldAfter ?? 0);
      insRev.push(run.at(-1)!.revision.toString());
      insOpened.push(run[0]!.metadata.occurredAt);
      insAt.push(at);
    } else {
      upd.id.push(accountId);
      upd.first.push(run[0]!.revision.toString());
      upd.last.push(run.at(-1)!.revision.toString());
      upd.balance.push(balanceAfter);
      upd.closed.push(closed);
      upd.held.push(heldAfter);
      updAt.push(at);
    }
    units.push({ key: accountId, events: run });
  }
  return {
    ctes: [
      `ins AS (
        INSERT INTO ${t} (account_id, owner_id, currency, balance, status, revision, opened_at, updated_at, held)
        SELECT id, owner, currency, balance, CASE WHEN closed THEN 'closed' ELSE 'open' END, revision, opened_at, at, held
        FROM unnest(${arrayParams(1, ['text', 'text', 'text', 'bigint', 'boolean', 'bigint', 'timestamptz', 'timestamptz', 'bigint'])})
             AS u(id, owner, currency, balance, closed, revision, opened_at, at, held)
        ON CONFLICT (account_id) DO NOTHING
        RETURNING account_id
      )`,
      `upd AS (
        UPDATE ${t} SET balance = COALESCE(u.balance, ${t}.balance), status = CASE WHEN u.closed THEN 'closed' ELSE ${t}.status END,
          revision = u.last, updated_at = u.at, held = COALESCE(u.held, ${t}.held)
        FROM unnest(${arrayParams(10, ['text', 'bigint', 'bigint', 'bigint', 'boolean', 'timestamptz', 'bigint'])})
             AS u(id, first, last, balance, closed, at, held)
        WHERE ${t}.account_id = u.id AND ${t}.revision = u.first - 1
        RETURNING ${t}.account_id
      )`,
    ],
    values: [
      ins.id,
      ins.owner,
      ins.currency,
      ins.balance,
      ins.closed,
      insRev,
      insOpened,
      insAt,
      ins.held,
      upd.id,
      upd.first,
      upd.last,
      upd.balance,
      upd.closed,
      updAt,
      upd.held,
    ],
    written: 'SELECT account_id AS k FROM ins UNION ALL SELECT account_id FROM upd',
    units,
    unwritten: 'one-by-one',
    ignored: [],
    rest,
  };
}
