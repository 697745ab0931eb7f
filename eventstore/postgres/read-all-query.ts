import type { ReadAllOptions } from '../event-store';
import { EventStoreValidationError } from '../errors';
import { escapeLike, positionParams, VISIBLE_TO_READERS } from './log-queries';
import { EVENT_COLUMNS, eventColumns } from './row-mapping';

/** A stream prefix matching at most this many streams is read stream by stream. */
export const FEW_STREAMS = 16;
/** A business-time range holding at most this many events (in all the log) is read through es_events_occurred_at. */
export const FEW_IN_OCCURRED_RANGE = 1000;

/**
 * The statement of PostgresEventStore.readAll: the first `limit` events after a position, in the log's order
 * (transaction_id, position), that readers may see and that pass the filters. The filters decide where the read
 * goes, so that a page costs about what it returns, not what lies between the cursor and its first matches, and the
 * plan does not depend on the table's statistics (a freshly filled log has none: the planner then chose to read all
 * 100,000 events of a prefix or of a business day and sort them, for a page of 100):
 *
 * - Time (recorded `recordedFrom`/`recordedTo`, business `occurredFrom`/`occurredTo`): the read starts at the time
 *   marks' floor of the stretch asked for (es_time_floor, migration 5: a transaction_id at or below every event of that
 *   stretch) when it lies after the cursor, instead of at the cursor; no mark in the stretch: no event, an empty page.
 *   The events skipped cannot match, so the page is the same; the times are still checked on every event read.
 * - A business-time range that holds at most FEW_IN_OCCURRED_RANGE events (late records of a day, say, which are
 *   scattered over the log): those events, through es_events_occurred_at, sorted.
 * - Else a stream prefix that matches at most FEW_STREAMS streams (es_streams, same statement and snapshot): one
 *   ordered range of es_events_stream_order per stream, merged.
 * - Else types: one ordered range of es_events_type_order per type (one type too), merged.
 * - Else the log's own order (es_events_global_order).
 *
 * Which of these runs is decided inside the statement (one-time conditions on small counts), so the page comes from one
 * snapshot. The filters that do not choose the read are checked on each event in a form no index answers (a prefix
 * as left(stream, n) = prefix, a time comparison as `(…) IS TRUE`), so the planner cannot turn them into "read every
 * match and sort". Every branch reads in the log's order from its start and stops at `limit` (or sorts at most
 * FEW_IN_OCCURRED_RANGE events), so the page is the same as one read of the whole log filtered in order, cut at `limit`.
 */
export function readAllStatement(options: ReadAllOptions, limit: number): { text: string; values: unknown[] } {
  const values: unknown[] = [...positionParams(options.fromPosition), limit];
  const param = (value: unknown, cast: string) => {
    values.push(value);
    return `$${values.length}::${cast}`;
  };

  // Checked on every event read: visibility, and the time bounds (in the unindexed form).
  const checks: string[] = [VISIBLE_TO_READERS];
  const floors: string[] = [];
  let occurred: { from?: string; to?: string } | undefined;
  for (const [kind, column, from, fromField, to, toField] of [
    ['o', 'occurred_at', options.occurredFrom, 'occurredFrom', options.occurredTo, 'occurredTo'],
    ['r', 'recorded_at', options.recordedFrom, 'recordedFrom', options.recordedTo, 'recordedTo'],
  ] as const) {
    if (from === undefined && to === undefined) continue;
    for (const [bound, field] of [
      [from, fromField],
      [to, toField],
    ] as const) {
      if (bound !== undefined && Number.isNaN(Date.parse(bound)))
        throw new EventStoreValidationError(field, 'must be an ISO-8601 timestamp');
    }
    const fromParam = from === undefined ? undefined : param(from, 'timestamptz');
    const toParam = to === undefined ? undefined : param(to, 'timestamptz');
    if (fromParam) checks.push(`(${column} >= ${fromParam}) IS TRUE`);
    if (toParam) checks.push(`(${column} <= ${toParam}) IS TRUE`);
    floors.push(`es_time_floor('${kind}', ${fromParam ?? 'NULL'}, ${toParam ?? 'NULL'})`);
    if (kind === 'o') occurred = { from: fromParam, to: toParam };
  }
  const types = options.eventTypes !== undefined ? param([...new Set(options.eventTypes)], 'text[]') : undefined;
  const prefix = options.streamPrefix !== undefined ? param(options.streamPrefix, 'text') : undefined;
  const prefixLike = options.streamPrefix !== undefined ? param(`${escapeLike(options.streamPrefix)}%`, 'text') : undefined;
  const typeCheck = types !== undefined ? [`type = ANY(${types})`] : [];
  const prefixCheck = prefix !== undefined ? [`left(stream, char_length(${prefix})) = ${prefix}`] : [];

  // Where the reads start: the cursor, or the time marks' floor when it lies after it (NULL: nothing can match).
  const ctes =
    floors.length === 0
      ? [`start AS MATERIALIZED (SELECT $1::text::xid8 AS c, $2::bigint AS p)`]
      : [
          `start AS MATERIALIZED (
            SELECT CASE WHEN f.floor IS NULL THEN NULL WHEN f.floor > $1::text::xid8 THEN f.floor ELSE $1::text::xid8 END AS c,
                   CASE WHEN f.floor > $1::text::xid8 THEN 0::bigint ELSE $2::bigint END AS p
            FROM (SELECT CASE WHEN ${floors.map((_, i) => `f${i} IS NULL`).join(' OR ')} THEN NULL
                              ELSE greatest(${floors.map((_, i) => `f${i}`).join(', ')}) END AS floor
                  FROM (SELECT ${floors.map((f, i) => `${f} AS f${i}`).join(', ')}) x) f)`,
        ];
  /** The first `limit` events of one ordered index range from the start. */
  const range = (where: string[]) => `(
      SELECT ${EVENT_COLUMNS}, es_events.transaction_id AS order_txid, es_events.position AS order_position FROM es_events
      WHERE (es_events.transaction_id, es_events.position) > (start.c, start.p) AND ${where.join(' AND ')}
      ORDER BY es_events.transaction_id, es_events.position LIMIT $3
    ) e`;

  // The branches, each with the condition under which it is the one that reads (the first that holds).
  const branches: { when?: string; sql: string }[] = [];
  if (occurred) {
    const inRange = [occurred.from && `occurred_at >= ${occurred.from}`, occurred.to && `occurred_at <= ${occurred.to}`].filter(Boolean);
    ctes.push(`occurred_range AS MATERIALIZED (
        SELECT position FROM es_events WHERE ${inRange.join(' AND ')} ORDER BY occurred_at LIMIT ${FEW_IN_OCCURRED_RANGE + 1})`);
    branches.push({
      when: `(SELECT count(*) <= ${FEW_IN_OCCURRED_RANGE} FROM occurred_range)`,
      sql: `SELECT ${eventColumns('es_events')}, es_events.transaction_id AS order_txid, es_events.position AS order_position
        FROM start CROSS JOIN occurred_range r JOIN es_events ON es_events.position = r.position
        WHERE (es_events.transaction_id, es_events.position) > (start.c, start.p) AND ${[...checks, ...typeCheck, ...prefixCheck].join(' AND ')}`,
    });
  }
  if (prefixLike !== undefined) {
    branches.push({
      when: `(SELECT count(*) <= ${FEW_STREAMS} FROM (SELECT 1 FROM es_streams WHERE stream LIKE ${prefixLike} LIMIT ${FEW_STREAMS + 1}) n)`,
      sql: `SELECT e.* FROM start CROSS JOIN (SELECT stream AS stream_name FROM es_streams WHERE stream LIKE ${prefixLike}) s
        CROSS JOIN LATERAL ${range([...checks, 'stream = s.stream_name', ...typeCheck])}`,
    });
  }
  branches.push({
    sql:
      types !== undefined
        ? `SELECT e.* FROM start CROSS JOIN unnest(${types}) AS wanted(type_name)
           CROSS JOIN LATERAL ${range([...checks, 'type = wanted.type_name', ...prefixCheck])}`
        : `SELECT e.* FROM start CROSS JOIN LATERAL ${range([...checks, ...prefixCheck])}`,
  });
  // Each condition once (a CTE), and checked once, before its branch reads anything (a condition on no row: an InitPlan).
  branches.forEach((b, i) => b.when && ctes.push(`gate${i} AS MATERIALIZED (SELECT ${b.when} AS yes)`));
  const gated = branches.map((b, i) => {
    const conditions = branches.flatMap((e, j) =>
      e.when === undefined || j > i ? [] : [j < i ? `NOT (SELECT yes FROM gate${j})` : `(SELECT yes FROM gate${j})`],
    );
    return conditions.length === 0 ? b.sql : `SELECT * FROM (${b.sql}) b WHERE ${conditions.join(' AND ')}`;
  });
  const text = `WITH ${ctes.join(',\n')}
    SELECT p.* FROM (${gated.join('\n UNION ALL\n')}) p ORDER BY p.order_txid, p.order_position LIMIT $3`;
  return { text, values };
}
