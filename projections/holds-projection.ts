import { HOLD_EVENT_TYPES, HOLD_STREAM_PREFIX, type HoldEvent, type HoldStatus } from '../domain/hold';
import { toDomainEvent } from '../application/event-envelope';
import type { RecordedEvent } from '../eventstore/event-store';
import type { BatchPlan, BatchProjection } from './projection';
import { arrayParams, explainSkippedWrite, streamRuns } from './projection';
import { holdsDdl } from './read-model-schema';

/** Every hold status (a status missing here fails to compile). */
const HOLD_STATUS_SET = {
  pending: true,
  failed: true,
  held: true,
  capturing: true,
  captured: true,
  compensated: true,
  voided: true,
  expired: true,
} as const satisfies Record<HoldStatus, true>;
const HOLD_STATUSES = Object.keys(HOLD_STATUS_SET) as HoldStatus[];

/** The part of a row that depends on the status it had before: its status and what was captured. */
interface StatusPart {
  status: HoldStatus;
  /** undefined: unchanged. */
  captured?: number;
}

/**
 * What a run of a hold's events does to its row, whatever the row held before. The rules are evolveHold's
 * (domain/hold.ts), on the row's columns: most events set a field; two depend on the status before them (a
 * reservation turns `pending` into `held` and keeps any other status; a release after a capture that could not even
 * debit makes it `compensated`, captured 0), and a compensation releases what was reserved. So the run's effect is,
 * for each status the row may have had, the status (and capture) it ends with, and for the other fields a value or
 * "unchanged". One statement then writes it onto a row it has not read (`status = statuses ->> status`): the same
 * write for apply() (one event) and for a batch (a run), so both leave the same row.
 */
interface RunEffect {
  byStatus: Record<HoldStatus, StatusPart>;
  reserved?: number;
  currency?: string;
  failureReason?: string;
  /** 'reserved': what the row had reserved before the run (a compensation of a reservation made earlier). */
  released?: number | 'reserved';
}

function stepStatus(part: StatusPart, event: HoldEvent): StatusPart {
  switch (event.type) {
    case 'HoldRequested':
      return { status: 'pending' };
    case 'HoldReserved':
      return part.status === 'pending' ? { ...part, status: 'held' } : part;
    case 'HoldRefused':
      return { ...part, status: 'failed' };
    case 'HoldCaptureRequested':
      return { ...part, status: 'capturing' };
    case 'HoldVoidRequested':
      return { ...part, status: 'voided' };
    case 'HoldExpiryReached':
      return { ...part, status: 'expired' };
    case 'HoldCaptured':
      return { status: 'captured', captured: event.data.amount };
    case 'HoldCaptureCompensated':
      return { status: 'compensated', captured: 0 };
    case 'HoldReleased':
      return part.status === 'capturing' ? { status: 'compensated', captured: 0 } : part;
  }
}

export function runEffect(events: readonly HoldEvent[]): RunEffect {
  const byStatus = Object.fromEntries(HOLD_STATUSES.map((s) => [s, { status: s }])) as Record<HoldStatus, StatusPart>;
  const effect: RunEffect = { byStatus };
  for (const event of events) {
    for (const s of HOLD_STATUSES) byStatus[s] = stepStatus(byStatus[s], event);
    switch (event.type) {
      case 'HoldReserved':
        effect.reserved = event.data.amount;
        effect.currency = event.data.currency;
        break;
      case 'HoldRefused':
        effect.failureReason = event.data.reason;
        break;
      case 'HoldCaptured':
        effect.released = event.data.released;
        break;
      case 'HoldCaptureCompensated':
        effect.failureReason = event.data.reason;
        effect.released = effect.reserved ?? 'reserved';
        break;
      case 'HoldReleased':
        effect.released = event.data.amount;
        break;
      default:
        break;
    }
  }
  return effect;
}

const INSERT_TYPES = ['text', 'text', 'text', 'bigint', 'text', 'bigint', 'bigint', 'bigint', 'text', 'text', 'timestamptz'];
const INSERT_TYPES_2 = ['bigint', 'bigint', 'bigint', 'timestamptz', 'timestamptz'];
const UPDATE_TYPES = [
  'text',
  'bigint',
  'bigint',
  'jsonb',
  'jsonb',
  'bigint',
  'text',
  'text',
  'bigint',
  'boolean',
  'bigint',
  'bigint',
  'timestamptz',
];

/** The INSERT of runs that begin with HoldRequested (revision 0), over parameters $first.. (16 arrays). */
function insertSql(t: string, first: number): string {
  return `INSERT INTO ${t} (hold_id, from_account_id, to_account_id, amount, currency, reserved, captured, released, status, failure_reason,
      expires_at, revision, pos_commit, pos_prepare, created_at, updated_at)
    SELECT * FROM unnest(${arrayParams(first, INSERT_TYPES)}, ${arrayParams(first + INSERT_TYPES.length, INSERT_TYPES_2)})
    ON CONFLICT (hold_id) DO NOTHING
    RETURNING hold_id`;
}

/** The guarded UPDATE of runs on an existing row (at the revision before the run), over parameters $first.. (13 arrays). */
function updateSql(t: string, first: number): string {
  return `UPDATE ${t} SET status = u.statuses ->> ${t}.status,
      captured = COALESCE((u.captures ->> ${t}.status)::bigint, ${t}.captured),
      reserved = COALESCE(u.reserved, ${t}.reserved), currency = COALESCE(u.currency, ${t}.currency),
      failure_reason = COALESCE(u.failure_reason, ${t}.failure_reason),
      released = CASE WHEN u.released_reserved THEN COALESCE(${t}.reserved, 0) ELSE COALESCE(u.released, ${t}.released) END,
      revision = u.last, pos_commit = u.pos_commit, pos_prepare = u.pos_prepare, updated_at = u.at
    FROM unnest(${arrayParams(first, UPDATE_TYPES)})
      AS u(id, first, last, statuses, captures, reserved, currency, failure_reason, released, released_reserved, pos_commit, pos_prepare, at)
    WHERE ${t}.hold_id = u.id AND ${t}.revision = u.first - 1
    RETURNING ${t}.hold_id`;
}

/** One row's insert (a run from HoldRequested on), in insertSql's parameter order. */
function insertRow(run: RecordedEvent[], domain: HoldEvent[]): unknown[] {
  const requested = domain[0]! as Extract<HoldEvent, { type: 'HoldRequested' }>;
  const r = requested.data;
  const effect = runEffect(domain);
  const part = effect.byStatus.pending; // the status before the first event does not matter: HoldRequested sets it
  const last = run.at(-1)!;
  return [
    r.holdId,
    r.fromAccountId,
    r.toAccountId,
    r.amount,
    effect.currency ?? null,
    effect.reserved ?? null,
    part.captured ?? null,
    effect.released === 'reserved' ? 0 : (effect.released ?? null),
    part.status,
    effect.failureReason ?? null,
    r.expiresAt,
    last.revision.toString(),
    last.position.commit.toString(),
    last.position.prepare.toString(),
    run[0]!.metadata.occurredAt,
    last.metadata.occurredAt,
  ];
}

/** One row's update (a run on an existing row), in updateSql's parameter order. */
function updateRow(holdId: string, run: RecordedEvent[], domain: HoldEvent[]): unknown[] {
  const effect = runEffect(domain);
  const statuses = Object.fromEntries(HOLD_STATUSES.map((s) => [s, effect.byStatus[s].status]));
  const captures = Object.fromEntries(
    HOLD_STATUSES.filter((s) => effect.byStatus[s].captured !== undefined).map((s) => [s, effect.byStatus[s].captured]),
  );
  const last = run.at(-1)!;
  return [
    holdId,
    run[0]!.revision.toString(),
    last.revision.toString(),
    JSON.stringify(statuses),
    JSON.stringify(captures),
    effect.reserved ?? null,
    effect.currency ?? null,
    effect.failureReason ?? null,
    typeof effect.released === 'number' ? effect.released : null,
    effect.released === 'reserved',
    last.position.commit.toString(),
    last.position.prepare.toString(),
    last.metadata.occurredAt,
  ];
}

/** The values of one row as single-element arrays (apply() runs the batch's statements for one event). */
const single = (row: unknown[]) => row.map((v) => [v]);

const holdIdOf = (recorded: RecordedEvent): string => recorded.stream.slice(HOLD_STREAM_PREFIX.length);

/**
 * rm_holds: one row per hold, from the hold's own stream `hold-<id>` (domain/hold.ts), at the revision and position of
 * the last event applied. Guarded like the balances and transfers (one write per event or run, landing only on the row
 * at the revision before it), so a redelivery is a duplicate and an event ahead of its stream is retried.
 */
export const holdsProjection: BatchProjection = {
  name: 'holds',
  streamPrefix: HOLD_STREAM_PREFIX,
  eventTypes: HOLD_EVENT_TYPES,
  tables: { rm_holds: holdsDdl },
  async apply(client, recorded, tables) {
    const t = tables.rm_holds!;
    const event = toDomainEvent<HoldEvent>(recorded, HOLD_EVENT_TYPES);
    const holdId = holdIdOf(recorded);
    const why = (first: string) =>
      explainSkippedWrite(client, `SELECT revision::text AS revision FROM ${t} WHERE hold_id = $1`, holdId, recorded, first);
    if (event.type === 'HoldRequested') {
      // Only the stream's first event creates the row.
      if (recorded.revision !== 0n) return why(`Hold ${holdId}: HoldRequested at revision ${recorded.revision}, not the first`);
      const inserted = await client.query(insertSql(t, 1), single(insertRow([recorded], [event])));
      if (inserted.rowCount === 1) return 'applied';
      return why(`Hold ${holdId}: its row vanished`); // it exists (the insert did nothing): duplicate
    }
    const updated = await client.query(updateSql(t, 1), single(updateRow(holdId, [recorded], [event])));
    if (updated.rowCount === 1) return 'applied';
    return why(`Hold ${holdId}: ${event.type} before HoldRequested`);
  },
  planBatch: planHolds,
};

/**
 * A batch in one statement (see BatchPlan): per hold, its run of events folded into one write (runEffect), as apply()
 * would leave the row after the last of them. A hold requested in the batch is inserted; the others are updated only
 * where the row is at the revision before the run's first event. A run that cannot be folded (HoldRequested not
 * first, a stream's first event not HoldRequested) goes to apply(), which refuses it with the reason.
 */
function planHolds(events: RecordedEvent[], tables: Record<string, string>): BatchPlan {
  const t = tables.rm_holds!;
  const { runs, broken } = streamRuns(events);
  const rest = [...broken];
  const units: BatchPlan['units'] = [];
  const ins: unknown[][] = Array.from({ length: INSERT_TYPES.length + INSERT_TYPES_2.length }, () => []);
  const upd: unknown[][] = Array.from({ length: UPDATE_TYPES.length }, () => []);
  for (const run of runs) {
    const domain = run.map((e) => toDomainEvent<HoldEvent>(e, HOLD_EVENT_TYPES) as HoldEvent);
    const requestedFirst = domain[0]!.type === 'HoldRequested' && run[0]!.revision === 0n;
    const unfoldable = domain.some((e, i) => e.type === 'HoldRequested' && (i > 0 || run[0]!.revision !== 0n));
    if (unfoldable || (!requestedFirst && run[0]!.revision === 0n)) {
      rest.push(...run);
      continue;
    }
    const holdId = holdIdOf(run[0]!);
    const row = requestedFirst ? insertRow(run, domain) : updateRow(holdId, run, domain);
    row.forEach((v, i) => (requestedFirst ? ins : upd)[i]!.push(v));
    units.push({ key: holdId, events: run });
  }
  return {
    ctes: [`ins AS (${insertSql(t, 1)})`, `upd AS (${updateSql(t, 1 + ins.length)})`],
    values: [...ins, ...upd],
    written: 'SELECT hold_id AS k FROM ins UNION ALL SELECT hold_id FROM upd',
    units,
    unwritten: 'one-by-one',
    ignored: [],
    rest,
  };
}
