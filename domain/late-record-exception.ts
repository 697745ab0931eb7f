import { EARLIEST_BUSINESS_TIME, isBusinessTime, LATEST_BUSINESS_TIME } from './business-calendar';
import type { Decider } from './decider';
import type { MinorUnits } from './money';
import { accept, reject, type Decision } from './rejection';

/**
 * A late record refused for being older than MAX_LATENESS, kept for manual handling: the stream
 * `exception-<id>`. Nothing of it reached the account. An operator accepts it (it is then applied to
 * the account as a late record, through the normal command path, marked as an override) or rejects it.
 *
 * Accepting spans two streams, so it goes in steps, each recorded here:
 *   open --ExceptionAcceptanceStarted--> accepting --ExceptionAccepted--> accepted
 *                                        accepting --ExceptionAcceptanceRefused--> open (the account refused it: e.g. insufficient funds)
 *   open --ExceptionRejected--> rejected
 * One attempt runs at a time: the request whose ExceptionAcceptanceStarted was appended (with the
 * expected revision) applies the record; `accepting` refuses a reject (no money may move for a
 * rejected exception) and a second accept (`exception_in_progress`), until the attempt is older than
 * its lease: then an accept takes it over (a new attempt), which finds the old attempt's account
 * event if it landed (the account write's event id derives from the exception id).
 */

export type LateRecordKind = 'deposit' | 'withdrawal';

export interface HeldRequest {
  method: string;
  path: string;
  body: { amount: MinorUnits; occurredAt: string };
  idempotencyKey: string | null;
  requestId: string | null;
}

export interface HeldLateRecord {
  exceptionId: string;
  accountId: string;
  kind: LateRecordKind;
  amount: MinorUnits;
  occurredAt: string;
  lateByMs: number;
  maxLatenessMs: number;
  request: HeldRequest;
  /** Who sent it (the API key id). */
  by: string;
}

export type ExceptionEvent =
  | { type: 'LateRecordHeld'; data: HeldLateRecord & { reason: 'too_late' } }
  /** accountRevision: the account's head before the attempt ('-1': no event), so the attempt's own event is found after it. */
  | { type: 'ExceptionAcceptanceStarted'; data: { exceptionId: string; accountId: string; accountRevision: string; by: string } }
  | { type: 'ExceptionAccepted'; data: { exceptionId: string; accountId: string; accountRevision: string; position: string; by: string } }
  | { type: 'ExceptionAcceptanceRefused'; data: { exceptionId: string; accountId: string; reason: string; message: string } }
  | { type: 'ExceptionRejected'; data: { exceptionId: string; accountId: string; by: string; reason: string | null } };

const EXCEPTION_EVENT_TYPE_SET = {
  LateRecordHeld: true,
  ExceptionAcceptanceStarted: true,
  ExceptionAccepted: true,
  ExceptionAcceptanceRefused: true,
  ExceptionRejected: true,
} as const satisfies Record<ExceptionEvent['type'], true>;
export const EXCEPTION_EVENT_TYPES = Object.keys(EXCEPTION_EVENT_TYPE_SET) as ExceptionEvent['type'][];

export type ExceptionStatus = 'open' | 'accepting' | 'accepted' | 'rejected';

export interface ExceptionState {
  exceptionId: string;
  status: 'none' | ExceptionStatus;
  held?: HeldLateRecord;
  heldAt?: string;
  /** The account's head revision before the first attempt: an attempt's account event can only come after it. */
  firstBaseRevision?: string;
  /** Attempts started so far, and when the current one started (the store's time). */
  attempts: number;
  attemptStartedAt?: string;
  by?: string;
  decidedAt?: string;
  applied?: { accountRevision: string; position: string };
  lastRefusal?: { reason: string; message: string };
  rejectReason?: string | null;
}

export type ExceptionCommand =
  | { type: 'HoldLateRecord'; record: HeldLateRecord }
  /** nowMs and leaseMs: an attempt under way that started longer ago than the lease is taken over. */
  | { type: 'StartAcceptance'; accountRevision: string; by: string; nowMs: number; leaseMs: number }
  | { type: 'RecordAcceptance'; accountRevision: string; position: string }
  | { type: 'RefuseAcceptance'; reason: string; message: string }
  | { type: 'RejectException'; by: string; reason?: string };

export const exceptionStream = (exceptionId: string): string => `exception-${exceptionId}`;
export const EXCEPTION_STREAM_PREFIX = 'exception-';

type ExceptionDecision = Decision<ExceptionEvent>;

function notFound(state: ExceptionState): ExceptionDecision {
  return reject('exception_not_found', `No exception ${state.exceptionId}`);
}

export function decideException(state: ExceptionState, command: ExceptionCommand): ExceptionDecision {
  const id = state.exceptionId;
  switch (command.type) {
    case 'HoldLateRecord':
      // The same request held again (a retry with its Idempotency-Key): nothing new.
      if (state.status !== 'none') return accept([]);
      // The API refuses such a time at its edge; an event with it could not be projected (issue 23).
      if (!isBusinessTime(Date.parse(command.record.occurredAt)))
        return reject(
          'invalid_date',
          `occurredAt ${command.record.occurredAt} is outside ${EARLIEST_BUSINESS_TIME} .. ${LATEST_BUSINESS_TIME}: nothing is held`,
        );
      return accept([{ type: 'LateRecordHeld', data: { ...command.record, reason: 'too_late' } }]);
    case 'StartAcceptance':
      switch (state.status) {
        case 'none':
          return notFound(state);
        case 'rejected':
          return reject('exception_closed', `Exception ${id} was rejected: it cannot be accepted`);
        case 'accepted':
          return accept([]); // answered with the acceptance recorded
        case 'accepting': {
          const startedMs = Date.parse(state.attemptStartedAt ?? '');
          if (!(command.nowMs - startedMs > command.leaseMs)) {
            return reject(
              'exception_in_progress',
              `Exception ${id} is being accepted (attempt ${state.attempts} started at ${state.attemptStartedAt}); retry shortly`,
            );
          }
          return accept([
            {
              type: 'ExceptionAcceptanceStarted',
              data: { exceptionId: id, accountId: state.held!.accountId, accountRevision: command.accountRevision, by: command.by },
            },
          ]);
        }
        case 'open':
          return accept([
            {
              type: 'ExceptionAcceptanceStarted',
              data: { exceptionId: id, accountId: state.held!.accountId, accountRevision: command.accountRevision, by: command.by },
            },
          ]);
      }
      break;
    case 'RecordAcceptance':
      // The record landed on the account: this must say so, whatever happened here meanwhile.
      if (state.status === 'accepted') return accept([]);
      if (state.status === 'none') return notFound(state);
      return accept([
        {
          type: 'ExceptionAccepted',
          data: {
            exceptionId: id,
            accountId: state.held!.accountId,
            accountRevision: command.accountRevision,
            position: command.position,
            by: state.by ?? 'unknown',
          },
        },
      ]);
    case 'RefuseAcceptance':
      if (state.status !== 'accepting') return accept([]);
      return accept([
        {
          type: 'ExceptionAcceptanceRefused',
          data: { exceptionId: id, accountId: state.held!.accountId, reason: command.reason, message: command.message },
        },
      ]);
    case 'RejectException':
      switch (state.status) {
        case 'none':
          return notFound(state);
        case 'rejected':
          return accept([]);
        case 'accepted':
          return reject('exception_closed', `Exception ${id} was accepted: it cannot be rejected (undo the late record with a new one)`);
        case 'accepting':
          return reject('exception_in_progress', `Exception ${id} is being accepted: accept it again to finish, then it is closed`);
        case 'open':
          return accept([
            {
              type: 'ExceptionRejected',
              data: { exceptionId: id, accountId: state.held!.accountId, by: command.by, reason: command.reason ?? null },
            },
          ]);
      }
  }
  return notFound(state);
}

export function evolveException(state: ExceptionState, event: ExceptionEvent & { occurredAt?: string }): ExceptionState {
  switch (event.type) {
    case 'LateRecordHeld': {
      const { reason: _reason, ...held } = event.data;
      return { ...state, status: 'open', held, heldAt: event.occurredAt };
    }
    case 'ExceptionAcceptanceStarted':
      return {
        ...state,
        status: 'accepting',
        firstBaseRevision: state.firstBaseRevision ?? event.data.accountRevision,
        attempts: state.attempts + 1,
        attemptStartedAt: event.occurredAt,
        by: event.data.by,
      };
    case 'ExceptionAccepted':
      return {
        ...state,
        status: 'accepted',
        applied: { accountRevision: event.data.accountRevision, position: event.data.position },
        decidedAt: event.occurredAt,
        by: event.data.by,
      };
    case 'ExceptionAcceptanceRefused':
      return { ...state, status: 'open', lastRefusal: { reason: event.data.reason, message: event.data.message } };
    case 'ExceptionRejected':
      return { ...state, status: 'rejected', decidedAt: event.occurredAt, by: event.data.by, rejectReason: event.data.reason };
  }
}

export const exceptionDecider: Decider<ExceptionState, ExceptionCommand, ExceptionEvent> = {
  name: 'LateRecordException',
  streamName: exceptionStream,
  eventTypes: EXCEPTION_EVENT_TYPES,
  initialState: (exceptionId) => ({ exceptionId, status: 'none', attempts: 0 }),
  evolve: evolveException,
  decide: decideException,
};
