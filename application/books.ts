import { addDays } from '../domain/business-calendar';
import { booksDecider, type BooksCommand, type BooksEvent, type BooksState } from '../domain/books-decider';
import type { EventStore } from '../eventstore/event-store';
import { formatPosition } from '../eventstore/event-store';
import { handleCommand } from './command-handler';
import type { CommandContext } from './event-envelope';
import { EventSourcedRepository } from './event-sourced-repository';
import type { Rejection } from '../domain/rejection';

/** The books of each time zone: `books-<zone>`, one BusinessDayClosed per closed day, in order. */
export class Books extends EventSourcedRepository<BooksState, BooksCommand, BooksEvent> {
  constructor(store: EventStore) {
    super(store, booksDecider);
  }
}

export type CloseResult =
  | {
      ok: true;
      timezone: string;
      /** The days this request closed (empty when the day was closed already). */
      closed: string[];
      firstClosedDate: string | null;
      lastClosedDate: string | null;
      /** Position of the last event written (absent when nothing was written). */
      position?: string;
    }
  | { ok: false; rejection: Rejection };

/**
 * Closes a business day (and the open days before it) through the one command path: the append
 * carries the revision read, so concurrent closes are ordered and a repeated close writes nothing.
 * `nowMs` is the moment the day must have ended by.
 */
export async function closeBusinessDay(
  books: Books,
  zone: string,
  date: string,
  nowMs: number,
  context: CommandContext,
): Promise<CloseResult> {
  const result = await handleCommand(books, zone, { type: 'CloseBusinessDay', date, nowMs }, { context });
  if (!result.ok) return { ok: false, rejection: result.rejection };
  // The days this append closed: consecutive, ending with the last closed one.
  const last = result.state.lastClosed;
  const closed =
    last === undefined ? [] : Array.from({ length: result.eventsWritten }, (_, i) => addDays(last, i - result.eventsWritten + 1));
  return {
    ok: true,
    timezone: zone,
    closed,
    firstClosedDate: result.state.firstClosed ?? null,
    lastClosedDate: result.state.lastClosed ?? null,
    ...(result.position ? { position: formatPosition(result.position) } : {}),
  };
}
