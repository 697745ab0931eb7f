import type { EventMetadata, JsonObject, RecordedEvent } from '../event-store';

export interface EventRow {
  position: string;
  txid: string;
  stream: string;
  revision: string;
  id: string;
  type: string;
  data: JsonObject;
  metadata: EventMetadata;
  recorded_at: Date;
}

/** Columns matching EventRow, for SELECTs over es_events (optionally under a table alias). */
export function eventColumns(alias?: string): string {
  const t = alias ? `${alias}.` : '';
  return `${t}position::text AS position, ${t}transaction_id::text AS txid, ${t}stream AS stream, ${t}revision::text AS revision, ${t}id::text AS id, ${t}type AS type, ${t}data AS data, ${t}metadata AS metadata, ${t}recorded_at AS recorded_at`;
}

export const EVENT_COLUMNS = eventColumns();

export function toRecordedEvent(row: EventRow): RecordedEvent {
  return {
    id: row.id,
    type: row.type,
    data: row.data,
    metadata: row.metadata,
    stream: row.stream,
    revision: BigInt(row.revision),
    position: { commit: BigInt(row.txid), prepare: BigInt(row.position) },
    recordedAt: row.recorded_at.toISOString(),
  };
}
// Note: these aliases shadow the table's columns in ORDER BY. Always qualify ORDER BY columns
// (es_events.position), or Postgres sorts by the text alias ('9' > '10').
