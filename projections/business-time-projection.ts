import type { PoolClient } from 'pg';
import {
  ACCOUNT_EVENT_TYPES,
  ACCOUNT_STREAM_PREFIX,
  balanceChange,
  isMovement,
  MOVEMENT_TYPES,
  type AccountEvent,
} from '../domain/account-events';
import { BOOKS_EVENT_TYPES, BOOKS_STREAM_PREFIX, type BooksEvent } from '../domain/books-decider';
import { isBusinessTime } from '../domain/business-calendar';
import { EXCEPTION_EVENT_TYPES, EXCEPTION_STREAM_PREFIX, type ExceptionEvent } from '../domain/late-record-exception';
import { toDomainEvent } from '../application/event-envelope';
import { batchIdOf } from './account-history-projection';
import type { RecordedEvent } from '../eventstore/event-store';
import type { BatchPlan, BatchProjection } from './projection';
import { arrayParams, keyedLines, revisionGuard } from './projection';

/**
 * Business time (issue 14), one projection over three kinds of streams, so that its tables are always
 * a prefix of the one log (PostgreSQL delivers in log order):
 * - rm_statement_movements: every movement of every account with its business time (occurredAt), its
 *   recording time and its position in the log; statements are computed from it (statements-queries.ts);
 * - rm_closed_days: the business days closed (`books-<zone>`), with the position of the close;
 * - rm_correction_notices: a movement whose business time falls on a closed day and that the log holds
 *   after that day's close (a record recorded after the close; one recorded before it is part of the
 *   published statement even when it was late). Decided by positions, not by arrival order: a movement
 *   applied before the close it follows (a redelivery, EventStoreDB's reordering) gets its notice when
 *   the close is applied, so any order of delivery ends with the same rows. A notice is keyed by the
 *   movement's position: GET /corrections pages by it, in the order the notices arose;
 * - rm_exceptions: late records held for manual handling (`exception-<id>`), one row per exception.
 * Every row comes from event fields only, so a rebuild equals live processing; every write is keyed
 * (or revision-guarded), so a redelivery changes nothing.
 */

export const statementMovementsDdl = (t: string) => `
  CREATE TABLE IF NOT EXISTS ${t} (
    account_id              text NOT NULL,
    occurred_at             timestamptz NOT NULL,
    revision                bigint NOT NULL,
    event_id                uuid NOT NULL,
    kind                    text NOT NULL,
    amount                  bigint NOT NULL,
    transfer_id             text,
    counterpart_account_id  text,
    recorded_at             timestamptz NOT NULL,
    pos_commit              bigint NOT NULL,
    pos_prepare             bigint NOT NULL,
    PRIMARY KEY (account_id, occurred_at, revision)
  );
  CREATE INDEX IF NOT EXISTS ${t}_occurred ON ${t} (occurred_at);
  -- Batches (issue 26): the batch a movement belongs to (its metadata.batchId). Nullable, no default: added without
  -- rewriting the table; movements recorded before this column existed read NULL until
  -- 'npm run projections:rebuild -- business-time'.
  ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS batch_id text`;

export const closedDaysDdl = (t: string) => `
  CREATE TABLE IF NOT EXISTS ${t} (
    timezone       text NOT NULL,
    business_date  text NOT NULL,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    closed_at      timestamptz NOT NULL,
    closed_by      text,
    pos_commit     bigint NOT NULL,
    pos_prepare    bigint NOT NULL,
    event_id       uuid NOT NULL,
    PRIMARY KEY (timezone, business_date)
  )`;

export const correctionNoticesDdl = (t: string) => `
  CREATE TABLE IF NOT EXISTS ${t} (
    timezone                text NOT NULL,
    pos_commit              bigint NOT NULL,
    pos_prepare             bigint NOT NULL,
    account_id              text NOT NULL,
    revision                bigint NOT NULL,
    business_date           text NOT NULL,
    kind                    text NOT NULL,
    amount                  bigint NOT NULL,
    occurred_at             timestamptz NOT NULL,
    recorded_at             timestamptz NOT NULL,
    closed_at               timestamptz NOT NULL,
    transfer_id             text,
    counterpart_account_id  text,
    PRIMARY KEY (timezone, pos_commit, pos_prepare)
  )`;

/**
 * occurred_at is NULL for an exception an earlier version held with a time PostgreSQL cannot store (e.g. year 0, issue
 * 23): the row still comes, so a replay of that parked event repairs the read model, and the time is shown from the
 * request kept with it; the API no longer holds such a time.
 */
export const exceptionsDdl = (t: string) => `
  CREATE TABLE IF NOT EXISTS ${t} (
    exception_id      text PRIMARY KEY,
    account_id        text NOT NULL,
    kind              text NOT NULL,
    amount            bigint NOT NULL,
    occurred_at       timestamptz,
    late_by_ms        bigint NOT NULL,
    max_lateness_ms   bigint NOT NULL,
    request           jsonb NOT NULL,
    held_at           timestamptz NOT NULL,
    held_by           text,
    held_commit       bigint NOT NULL,
    held_prepare      bigint NOT NULL,
    status            text NOT NULL,
    decided_by        text,
    decided_at        timestamptz,
    reject_reason     text,
    last_refusal      jsonb,
    applied_revision  bigint,
    applied_position  text,
    revision          bigint NOT NULL
  );
  DO $$ BEGIN
    -- Tables made before issue 23 had it NOT NULL (only altered when so: the ALTER takes a lock).
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = '${t}' AND column_name = 'occurred_at' AND is_nullable = 'NO') THEN
      ALTER TABLE ${t} ALTER COLUMN occurred_at DROP NOT NULL;
    END IF;
  END $$`;

export const BUSINESS_TIME_TABLES = {
  rm_statement_movements: statementMovementsDdl,
  rm_closed_days: closedDaysDdl,
  rm_correction_notices: correctionNoticesDdl,
  rm_exceptions: exceptionsDdl,
};

const pos = (e: RecordedEvent) => [e.position.commit.toString(), e.position.prepare.toString()];

const MOVEMENT_COLUMNS =
  'account_id, occurred_at, revision, event_id, kind, amount, transfer_id, counterpart_account_id, recorded_at, pos_commit, pos_prepare, batch_id';
const MOVEMENT_TYPES_SQL = [
  'text',
  'timestamptz',
  'bigint',
  'uuid',
  'text',
  'bigint',
  'text',
  'text',
  'timestamptz',
  'bigint',
  'bigint',
  'text',
];

/** A movement's row (in MOVEMENT_COLUMNS' order); undefined for an account event that moves no money. */
function movementRow(recorded: RecordedEvent): unknown[] | undefined {
  const event = toDomainEvent<AccountEvent>(recorded, ACCOUNT_EVENT_TYPES);
  if (!isMovement(event)) return undefined;
  const d: { accountId: string; transferId?: string; toAccountId?: string; fromAccountId?: string } = event.data;
  const [commit, prepare] = pos(recorded);
  return [
    d.accountId,
    recorded.metadata.occurredAt,
    recorded.revision.toString(),
    recorded.id,
    event.type,
    balanceChange(event),
    d.transferId ?? null,
    d.toAccountId ?? d.fromAccountId ?? null,
    recorded.recordedAt,
    commit,
    prepare,
    batchIdOf(recorded),
  ];
}

/**
 * The movements inserted by the CTE `moved` (RETURNING every column) and, for each one that was new, its correction
 * notice: a day closed before the movement was recorded, whose hours hold its business time, is corrected by it.
 */
const noticesOfMoved = (t: Record<string, string>) => `noticed AS (
  INSERT INTO ${t.rm_correction_notices!} (timezone, pos_commit, pos_prepare, account_id, revision, business_date, kind, amount, occurred_at, recorded_at, closed_at, transfer_id, counterpart_account_id)
  SELECT m.timezone, mv.pos_commit, mv.pos_prepare, mv.account_id, mv.revision, m.business_date, mv.kind, mv.amount, mv.occurred_at, mv.recorded_at, m.closed_at, mv.transfer_id, mv.counterpart_account_id
  FROM moved mv JOIN ${t.rm_closed_days!} m
    ON m.starts_at <= mv.occurred_at AND m.ends_at > mv.occurred_at AND (m.pos_commit, m.pos_prepare) < (mv.pos_commit, mv.pos_prepare)
  ON CONFLICT DO NOTHING
)`;

async function applyMovement(
  client: PoolClient,
  recorded: RecordedEvent,
  t: Record<string, string>,
): Promise<'applied' | 'duplicate' | 'ignored'> {
  const row = movementRow(recorded);
  if (!row) return 'ignored';
  // One statement: the movement, and, only when it was new, its correction notice.
  const result = await client.query<{ moved: number }>(
    `WITH moved AS (
       INSERT INTO ${t.rm_statement_movements!} (${MOVEMENT_COLUMNS})
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING
       RETURNING ${MOVEMENT_COLUMNS}
     ), ${noticesOfMoved(t)}
     SELECT count(*)::int AS moved FROM moved`,
    row,
  );
  if (result.rows[0]!.moved !== 1) return 'duplicate';
  return 'applied';
}

/**
 * A batch in one statement (see BatchPlan): its movements and their correction notices, keyed, so a movement already
 * there is a duplicate. Closes of the books and exceptions (rare) go to apply(): a close gives the notices of the
 * movements recorded after it whichever comes first, so the order between the two does not matter.
 */
function planBusinessTime(events: RecordedEvent[], t: Record<string, string>): BatchPlan {
  const { columns, units, ignored, rest } = keyedLines(events, MOVEMENT_TYPES_SQL.length, (recorded) => {
    if (!recorded.stream.startsWith(ACCOUNT_STREAM_PREFIX))
      return recorded.stream.startsWith(BOOKS_STREAM_PREFIX) || recorded.stream.startsWith(EXCEPTION_STREAM_PREFIX) ? 'rest' : 'ignored';
    const row = movementRow(recorded);
    return row ? { row, key: `${row[0]}:${row[2]}` } : 'ignored';
  });
  return {
    ctes: [
      `moved AS (
        INSERT INTO ${t.rm_statement_movements!} (${MOVEMENT_COLUMNS})
        SELECT * FROM unnest(${arrayParams(1, MOVEMENT_TYPES_SQL)})
        ON CONFLICT DO NOTHING
        RETURNING ${MOVEMENT_COLUMNS}
      )`,
      noticesOfMoved(t),
    ],
    values: columns,
    written: `SELECT account_id || ':' || revision AS k FROM moved`,
    units,
    unwritten: 'duplicate',
    ignored,
    rest,
  };
}

async function applyClose(client: PoolClient, recorded: RecordedEvent, t: Record<string, string>): Promise<'applied' | 'duplicate'> {
  const event = toDomainEvent<BooksEvent>(recorded, BOOKS_EVENT_TYPES);
  const { timezone, date, startsAt, endsAt } = event.data;
  const [commit, prepare] = pos(recorded);
  const actor = typeof recorded.metadata.actor === 'string' ? recorded.metadata.actor : null;
  const inserted = await client.query(
    `INSERT INTO ${t.rm_closed_days!} (timezone, business_date, starts_at, ends_at, closed_at, closed_by, pos_commit, pos_prepare, event_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
    [timezone, date, startsAt, endsAt, recorded.recordedAt, actor, commit, prepare, recorded.id],
  );
  if (inserted.rowCount !== 1) return 'duplicate';
  // Movements of that day already here but recorded after the close (delivered before it): their notices.
  await client.query(
    `INSERT INTO ${t.rm_correction_notices!} (timezone, pos_commit, pos_prepare, account_id, revision, business_date, kind, amount, occurred_at, recorded_at, closed_at, transfer_id, counterpart_account_id)
     SELECT $1, m.pos_commit, m.pos_prepare, m.account_id, m.revision, $2, m.kind, m.amount, m.occurred_at, m.recorded_at, $5, m.transfer_id, m.counterpart_account_id
     FROM ${t.rm_statement_movements!} m
     WHERE m.occurred_at >= $3 AND m.occurred_at < $4 AND (m.pos_commit, m.pos_prepare) > ($6::bigint, $7::bigint)
     ON CONFLICT DO NOTHING`,
    [timezone, date, startsAt, endsAt, recorded.recordedAt, commit, prepare],
  );
  return 'applied';
}

async function applyException(client: PoolClient, recorded: RecordedEvent, t: Record<string, string>): Promise<'applied' | 'duplicate'> {
  const table = t.rm_exceptions!;
  const event = toDomainEvent<ExceptionEvent>(recorded, EXCEPTION_EVENT_TYPES);
  const id = event.data.exceptionId;
  const row = await client.query<{ revision: string }>(
    `SELECT revision::text AS revision FROM ${table} WHERE exception_id = $1 FOR UPDATE`,
    [id],
  );
  const current = row.rows[0];
  if (revisionGuard(recorded.stream, current ? BigInt(current.revision) : undefined, recorded.revision) === 'duplicate') return 'duplicate';
  const revision = recorded.revision.toString();
  const at = recorded.metadata.occurredAt;
  if (event.type === 'LateRecordHeld') {
    const h = event.data;
    const [commit, prepare] = pos(recorded);
    await client.query(
      `INSERT INTO ${table} (exception_id, account_id, kind, amount, occurred_at, late_by_ms, max_lateness_ms, request, held_at, held_by, held_commit, held_prepare, status, revision)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'open', $13)`,
      [
        id,
        h.accountId,
        h.kind,
        h.amount,
        isBusinessTime(Date.parse(h.occurredAt)) ? h.occurredAt : null,
        h.lateByMs,
        h.maxLatenessMs,
        JSON.stringify(h.request),
        at,
        h.by ?? null,
        commit,
        prepare,
        revision,
      ],
    );
    return 'applied';
  }
  if (!current) throw new Error(`Exception ${id}: ${event.type} before LateRecordHeld`);
  switch (event.type) {
    case 'ExceptionAcceptanceStarted':
      await client.query(`UPDATE ${table} SET status = 'accepting', revision = $2 WHERE exception_id = $1`, [id, revision]);
      break;
    case 'ExceptionAccepted':
      await client.query(
        `UPDATE ${table} SET status = 'accepted', decided_by = $2, decided_at = $3, applied_revision = $4, applied_position = $5, revision = $6 WHERE exception_id = $1`,
        [id, event.data.by, at, event.data.accountRevision, event.data.position, revision],
      );
      break;
    case 'ExceptionAcceptanceRefused':
      await client.query(`UPDATE ${table} SET status = 'open', last_refusal = $2, revision = $3 WHERE exception_id = $1`, [
        id,
        JSON.stringify({ reason: event.data.reason, message: event.data.message }),
        revision,
      ]);
      break;
    case 'ExceptionRejected':
      await client.query(
        `UPDATE ${table} SET status = 'rejected', decided_by = $2, decided_at = $3, reject_reason = $4, revision = $5 WHERE exception_id = $1`,
        [id, event.data.by, at, event.data.reason, revision],
      );
      break;
  }
  return 'applied';
}

export const businessTimeProjection: BatchProjection = {
  name: 'business-time',
  // Three stream kinds (account-, books-, exception-): every stream, narrowed by event type.
  streamPrefix: '',
  eventTypes: [...MOVEMENT_TYPES, ...BOOKS_EVENT_TYPES, ...EXCEPTION_EVENT_TYPES],
  tables: BUSINESS_TIME_TABLES,
  async apply(client, recorded, tables) {
    if (recorded.stream.startsWith(ACCOUNT_STREAM_PREFIX)) return applyMovement(client, recorded, tables);
    if (recorded.stream.startsWith(BOOKS_STREAM_PREFIX)) return applyClose(client, recorded, tables);
    if (recorded.stream.startsWith(EXCEPTION_STREAM_PREFIX)) return applyException(client, recorded, tables);
    return 'ignored';
  },
  planBatch: planBusinessTime,
};
