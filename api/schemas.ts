import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import {
  EARLIEST_BUSINESS_DATE,
  EARLIEST_BUSINESS_TIME,
  isBusinessDate,
  isBusinessTime,
  LATEST_BUSINESS_DATE,
  LATEST_BUSINESS_TIME,
} from '../domain/business-calendar';
import { isBigintText } from './validate';

extendZodWithOpenApi(z);

/**
 * An ISO-8601 date-time with a zone, as an instant every store holds (EARLIEST_BUSINESS_TIME..LATEST_BUSINESS_TIME,
 * domain/business-calendar.ts): every field that takes a business time (occurredAt, asOf, the time bounds of a read).
 * Outside the range: 400 naming the field (PostgreSQL has no year 0; a year past 9999 does not round-trip).
 */
const businessTime = (error: string) =>
  z.iso
    .datetime({ offset: true, error })
    .refine(hasStorableOffset, {
      error: 'must have a UTC offset between -14:00 and +14:00',
      when: (payload) => payload.issues.length === 0,
    })
    .refine((text) => isBusinessTime(Date.parse(text)), {
      error: `must be between ${EARLIEST_BUSINESS_TIME} and ${LATEST_BUSINESS_TIME}`,
      when: (payload) => payload.issues.length === 0,
    });

/**
 * A UTC offset of at most 14 hours (the widest in use, Pacific/Kiritimati): Date.parse takes +23:59, PostgreSQL's
 * timestamptz refuses offsets beyond 15:59 (issue 23, item 11).
 */
function hasStorableOffset(text: string): boolean {
  const match = /([+-])(\d{2}):?(\d{2})$/.exec(text);
  return !match || Number(match[2]) * 60 + Number(match[3]) <= 14 * 60;
}

/**
 * A time as the API takes it anywhere (a query bound, a cursor's time): strict ISO-8601 with a zone (calendar-checked,
 * offset within ±14:00) and within EARLIEST_BUSINESS_TIME..LATEST_BUSINESS_TIME, so PostgreSQL stores and compares it.
 */
export const StrictTime = businessTime('must be an ISO-8601 date-time with a zone, e.g. 2026-03-03T00:00:00Z');

/** Request and response shapes: validated with zod, documented in /openapi.json from the same schemas. */

export const AccountId = z.uuid({ error: 'must be a UUID' }).openapi({ example: '0b5e6f8e-2f3c-4c1e-9d7a-5f2b9b1c3d4e' });
export const TransferId = z
  .string({ error: 'must be a string' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, {
    error: 'must be 1-64 characters: letters, digits, _ and -, starting with a letter or digit',
  })
  .openapi({ example: 'order-4711-payout' });
/** Integer minor units (cents): positive, a safe integer, never a float. */
export const Amount = z
  .number({ error: 'must be a number of minor units (an integer, e.g. 1050 for 10.50)' })
  .int({ error: 'must be a whole number of minor units (no fractions) within the safe integer range' })
  .positive({ error: 'must be greater than zero' })
  .max(Number.MAX_SAFE_INTEGER, { error: 'must be a safe integer' })
  .openapi({ example: 1050, description: 'Integer minor units (e.g. cents)' });
export const Currency = z
  .string({ error: 'must be a string' })
  .regex(/^[A-Z]{3}$/, { error: 'must be a 3-letter ISO 4217 code such as EUR' })
  .openapi({ example: 'EUR' });

export const OpenAccountBody = z
  .strictObject({
    ownerId: z
      .string({ error: 'must be a string' })
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$/, { error: 'must be 1-100 characters: letters, digits, _ . : @ -' }),
    currency: Currency,
    initialDeposit: Amount.optional(),
  })
  .openapi('OpenAccountRequest');

export const AmountBody = z.strictObject({ amount: Amount }).openapi('AmountRequest');
export const EmptyBody = z.strictObject({}).openapi('EmptyRequest');

export const CreateTransferBody = z
  .strictObject({
    transferId: TransferId.optional(),
    fromAccountId: AccountId,
    toAccountId: AccountId,
    amount: Amount,
  })
  .refine((b) => b.fromAccountId !== b.toAccountId, { error: 'must differ from fromAccountId', path: ['toAccountId'] })
  .openapi('CreateTransferRequest');

/** POST /transfers/{id}/reversal: how much to move back (default: all that is left), and the reversal's own id (its idempotency key). */
export const ReversalBody = z
  .strictObject({
    amount: Amount.optional(),
    reversalId: TransferId.optional(),
  })
  .openapi('ReversalRequest');

/** The Idempotency-Key header of POST /transfers: the transfer id, validated under the header's name. */
export const IdempotencyKeyHeader = z.object({ 'Idempotency-Key': TransferId });

/**
 * The Idempotency-Key header of the account writes (Stripe's convention): 1-255 characters, letters,
 * digits and . _ : ~ + / = @ - (a UUID, a ULID, base64 or "order-4711:deposit" all fit).
 */
export const AccountIdempotencyKey = z
  .string({ error: 'must be a string' })
  .min(1, { error: 'must not be empty' })
  .max(255, { error: 'must be at most 255 characters' })
  .regex(/^[A-Za-z0-9._:~+/=@-]+$/, { error: 'may contain only letters, digits and . _ : ~ + / = @ -' })
  .openapi({ example: '5f0c7a2e-0d7b-4a53-9f0e-2b1f3c4d5e6f' });
export const AccountIdempotencyKeyHeader = z.object({ 'Idempotency-Key': AccountIdempotencyKey });

export const PositionText = z
  .string()
  .regex(/^\d{1,19}\.\d{1,19}$/, { error: 'must be a position as returned by a write (e.g. 812.40)' })
  .refine((text) => text.split('.').every(isBigintText), {
    error: 'must be a position as returned by a write (each part at most 9223372036854775807)',
    when: (payload) => payload.issues.length === 0,
  })
  .openapi({ example: '812.40' });

export const AccountParams = z.strictObject({ id: AccountId });
export const TransferParams = z.strictObject({ id: TransferId });
export const ReadQuery = z.strictObject({ minPosition: PositionText.optional() });
export const HistoryQuery = z.strictObject({
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be an integer' }).min(1).max(500).default(50),
  cursor: z
    .string()
    .regex(/^\d{1,19}$/, { error: 'must be a cursor returned by a previous page' })
    .refine(isBigintText, {
      error: 'must be a cursor returned by a previous page (at most 9223372036854775807)',
      when: (payload) => payload.issues.length === 0,
    })
    .optional(),
  minPosition: PositionText.optional(),
});
export const BalanceQuery = z.strictObject({
  asOf: businessTime('must be an ISO-8601 date-time, e.g. 2026-03-03T00:00:00Z'),
  basis: z.enum(['business', 'recorded'], { error: "must be 'business' or 'recorded'" }).default('business').openapi({
    description:
      '`business` (default): every record that had happened by asOf (business time, late records included). `recorded`: what the system knew at asOf (a replay of the log to that moment, by recording time).',
  }),
});
const EventType = z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,99}$/, { error: 'must be an event type name' });
const IsoTime = businessTime('must be an ISO-8601 date-time, e.g. 2026-03-03T00:00:00Z');

/** GET /events: the global log, filtered, in log order, paged by position. */
export const EventsQuery = z.strictObject({
  type: z
    .union([z.string().max(5000), z.array(z.string().max(100)).max(50)])
    .transform((v) => (Array.isArray(v) ? v : v.split(',')))
    .pipe(z.array(EventType).min(1).max(50))
    .optional()
    .openapi({ description: 'One or several event types (repeat the parameter, or separate by commas)' }),
  streamPrefix: z.string().min(1).max(200).optional().openapi({ description: 'Only streams whose name starts with this, e.g. account-' }),
  from: IsoTime.optional().openapi({ description: 'Recorded at or after (the store clock)' }),
  to: IsoTime.optional().openapi({ description: 'Recorded at or before' }),
  occurredFrom: IsoTime.optional().openapi({ description: 'Happened at or after (business time)' }),
  occurredTo: IsoTime.optional().openapi({ description: 'Happened at or before (business time)' }),
  after: PositionText.optional().openapi({ description: 'The `next` of the previous page: events strictly after this position' }),
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be an integer' }).min(1).max(1000).default(100),
});

/** GET /transfers: filters, and the cursor of the previous page (oldest first, by creation time). */
export const TransferListQuery = z.strictObject({
  accountId: AccountId.optional().openapi({ description: 'Transfers from or to this account' }),
  status: z.enum(['pending', 'completed', 'failed', 'compensated']).optional(),
  batchId: TransferId.optional().openapi({ description: 'Only the items of this batch (issue 26)' }),
  from: StrictTime.optional().openapi({ description: 'Created at or after' }),
  to: StrictTime.optional().openapi({ description: 'Created before' }),
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be an integer' }).min(1).max(500).default(50),
  after: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,400}$/, { error: 'must be a cursor returned by a previous page' })
    .optional(),
});

/** GET /accounts: one owner's accounts (a customer: its own), by account id, cursor-paginated. */
export const AccountListQuery = z.strictObject({
  ownerId: z
    .string({ error: 'must be a string' })
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$/, { error: 'must be 1-100 characters: letters, digits, _ . : @ -' })
    .optional()
    .openapi({ description: "Only this owner's accounts (operators: any owner; a customer sees its own only)" }),
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be an integer' }).min(1).max(500).default(50),
  after: AccountId.optional().openapi({ description: 'The `next` of the previous page' }),
  minPosition: PositionText.optional(),
});

export const TransferQuery = z.strictObject({
  wait: z.coerce.number({ error: 'must be a number of seconds' }).min(0).max(30, { error: 'must be at most 30 seconds' }).optional(),
  minPosition: PositionText.optional(),
});
export const StreamsQuery = z.strictObject({
  prefix: z.string().max(200).optional(),
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
export const StreamParams = z.strictObject({ name: z.string().min(1).max(200) });
export const StreamQuery = z.strictObject({
  fromRevision: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const AccountView = z
  .object({
    accountId: AccountId,
    ownerId: z.string(),
    currency: Currency,
    balance: z.number().int(),
    held: z.number().int().openapi({ description: 'Reserved by open holds (issue 25): part of the balance that cannot be paid out' }),
    available: z.number().int().openapi({ description: 'What the account can pay out now: balance - held' }),
    status: z.enum(['open', 'closed']),
    revision: z.number().int(),
    updatedAt: z.string(),
  })
  .openapi('Account');

export const WriteResult = z
  .object({
    accountId: AccountId,
    balance: z.number().int(),
    status: z.enum(['open', 'closed']),
    revision: z.number().int(),
    position: PositionText.optional(),
  })
  .openapi('AccountWriteResult');

export const Movement = z
  .object({
    revision: z.number().int(),
    kind: z.string(),
    amount: z.number().int().describe('Signed: negative leaves the account'),
    balanceAfter: z.number().int(),
    transferId: z.string().nullable(),
    counterpartAccountId: z.string().nullable(),
    occurredAt: z.string(),
    recordedAt: z.string(),
    batchId: z.string().optional().openapi({ description: 'The batch of transfers this movement belongs to (issue 26), when it does' }),
  })
  .openapi('Movement');

export const TransferView = z
  .object({
    transferId: TransferId,
    fromAccountId: AccountId,
    toAccountId: AccountId,
    amount: z.number().int(),
    status: z.enum(['pending', 'completed', 'failed', 'compensated']),
    failureReason: z.string().optional(),
    steps: z.array(z.object({ name: z.string(), at: z.string(), status: z.string().optional() })),
    createdAt: z.string().optional(),
    updatedAt: z.string().optional(),
    /** This transfer reverses that one. */
    reversalOf: TransferId.optional(),
    /** Reversals of this transfer, with the amount each holds (released: it moved nothing back). */
    reversedBy: z.array(z.object({ reversalId: TransferId, amount: z.number().int(), released: z.boolean().optional() })).optional(),
    /** This transfer is an item of that batch (issue 26). */
    batchId: z.string().optional().openapi({ description: 'The batch this transfer is an item of (issue 26), when it is one' }),
  })
  .openapi('Transfer');

export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
    retryAfterSeconds: z.number().int().optional().openapi({ description: '429: seconds until a retry can succeed (as Retry-After)' }),
  })
  // RFC 9457 extension members: a problem type may add its own (e.g. maxConcurrentWaits, projection, parkedEvents).
  .catchall(z.unknown())
  .openapi('Problem');

// --- Business time (issue 14): late records, exceptions, closing the books, statements, corrections ---

export const OccurredAt = businessTime('must be an ISO-8601 date-time with a zone, e.g. 2026-03-02T16:30:00+01:00').openapi({
  example: '2026-03-02T16:30:00Z',
  description: `When it happened (business time), for a record reported late, between ${EARLIEST_BUSINESS_TIME} and ${LATEST_BUSINESS_TIME} (else 400). Not before the account was opened (422 before-account-opened), at most MAX_LATENESS ago (older: 422 too-late, held as an exception) and not in the future beyond MAX_CLOCK_SKEW. Absent: now.`,
});
/** A deposit or withdrawal: its amount and, for a late record, when it happened. */
export const MovementBody = z.strictObject({ amount: Amount, occurredAt: OccurredAt.optional() }).openapi('MovementRequest');

export const BusinessDate = z
  .string({ error: 'must be a date YYYY-MM-DD' })
  .regex(/^\d{4}-\d{2}-\d{2}$/, { error: 'must be a date YYYY-MM-DD' })
  .refine(isBusinessDate, { error: 'must be a calendar date (YYYY-MM-DD)' })
  .refine((d) => d >= EARLIEST_BUSINESS_DATE && d <= LATEST_BUSINESS_DATE, {
    error: `must be between ${EARLIEST_BUSINESS_DATE} and ${LATEST_BUSINESS_DATE}`,
  })
  .openapi({ example: '2026-03-02', description: 'A business day in BOOKS_TIMEZONE' });

export const CloseBooksBody = z.strictObject({ date: BusinessDate }).openapi('CloseBooksRequest');
export const BooksClosed = z
  .object({
    timezone: z.string(),
    closed: z.array(BusinessDate).describe('The days this request closed (empty: closed already)'),
    firstClosedDate: BusinessDate.nullable(),
    lastClosedDate: BusinessDate.nullable(),
    position: PositionText.optional(),
  })
  .openapi('BooksClosed');

export const StatementParams = z.strictObject({ id: AccountId, date: BusinessDate });
export const StatementLine = z
  .object({
    revision: z.number().int(),
    kind: z.string(),
    amount: z.number().int().describe('Signed: negative leaves the account'),
    balanceAfter: z.number().int().describe('Running balance in business-time order'),
    belowZero: z
      .boolean()
      .describe('The running balance is below zero here (a late record can do that; the overdraft rule holds in recorded order)'),
    occurredAt: z.string(),
    recordedAt: z.string(),
    transferId: z.string().nullable(),
    counterpartAccountId: z.string().nullable(),
    batchId: z.string().optional().openapi({ description: 'The batch of transfers this movement belongs to (issue 26), when it does' }),
  })
  .openapi('StatementLine');
export const StatementCorrection = z
  .object({
    revision: z.number().int(),
    kind: z.string(),
    amount: z.number().int(),
    occurredAt: z.string(),
    recordedAt: z.string().describe('Recorded after the day closed'),
    transferId: z.string().nullable(),
    counterpartAccountId: z.string().nullable(),
    batchId: z.string().optional().openapi({ description: 'The batch of transfers this movement belongs to (issue 26), when it does' }),
    cursor: PositionText.describe('Its place in GET /corrections'),
  })
  .openapi('StatementCorrection');
export const Statement = z
  .object({
    accountId: AccountId,
    date: BusinessDate,
    timezone: z.string(),
    from: z.string().describe('First instant of the day'),
    to: z.string().describe('First instant of the next day'),
    status: z.enum(['open', 'closed']),
    closedAt: z.string().nullable(),
    openingBalance: z.number().int(),
    movements: z.array(StatementLine),
    closingBalance: z.number().int(),
    belowZero: z.boolean().describe('Some running balance of the day is below zero'),
    corrections: z.array(StatementCorrection).describe('Records of this closed day recorded after it closed, in recorded order'),
    correctedOpeningBalance: z
      .number()
      .int()
      .describe('The opening balance with every record known now (late records of earlier days included)'),
    correctedClosingBalance: z.number().int().describe('The closing balance with every record known now'),
    openHolds: z
      .array(
        z.object({
          holdId: z.string(),
          toAccountId: AccountId,
          amount: z.number().int().describe('Reserved on this account'),
          expiresAt: z.string(),
        }),
      )
      .describe('Holds that reserved money on the account at the end of the day (recorded times): they lower available, not the balance'),
    heldAtClose: z.number().int().describe('What those holds reserved in all at the end of the day'),
  })
  .openapi('Statement');

export const CorrectionsQuery = z.strictObject({
  after: PositionText.optional().openapi({ description: 'The `next` of the previous page (absent: from the first)' }),
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be an integer' }).min(1).max(500).default(100),
  minPosition: PositionText.optional(),
});
export const CorrectionNotice = z
  .object({
    cursor: PositionText,
    accountId: AccountId,
    date: BusinessDate,
    timezone: z.string(),
    revision: z.number().int(),
    kind: z.string(),
    amount: z.number().int(),
    occurredAt: z.string(),
    recordedAt: z.string(),
    closedAt: z.string(),
    transferId: z.string().nullable(),
    counterpartAccountId: z.string().nullable(),
  })
  .openapi('CorrectionNotice');
export const CorrectionsPage = z
  .object({ corrections: z.array(CorrectionNotice), next: PositionText.nullable().describe('Poll again with after=next (null: none yet)') })
  .openapi('CorrectionsPage');

export const ExceptionStatus = z.enum(['open', 'accepting', 'accepted', 'rejected']);
export const ExceptionParams = z.strictObject({ id: z.uuid({ error: 'must be a UUID' }) });
export const ExceptionsQuery = z.strictObject({
  status: ExceptionStatus.optional(),
  accountId: AccountId.optional(),
  after: PositionText.optional().openapi({ description: 'The `next` of the previous page' }),
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be an integer' }).min(1).max(500).default(50),
  minPosition: PositionText.optional(),
});
export const RejectExceptionBody = z
  .strictObject({ reason: z.string({ error: 'must be a string' }).min(1).max(500, { error: 'must be at most 500 characters' }).optional() })
  .openapi('RejectExceptionRequest');
export const LateRecordException = z
  .object({
    exceptionId: z.uuid(),
    status: ExceptionStatus,
    accountId: AccountId,
    kind: z.enum(['deposit', 'withdrawal']),
    amount: z.number().int(),
    occurredAt: z.string(),
    reason: z.literal('too_late'),
    lateBy: z.string().describe('How late it was when refused, e.g. 6d 2h 3m 4s'),
    maxLateness: z.string(),
    heldAt: z.string(),
    request: z.object({
      method: z.string(),
      path: z.string(),
      body: z.object({ amount: z.number().int(), occurredAt: z.string() }),
      idempotencyKey: z.string().nullable(),
      requestId: z.string().nullable(),
    }),
    heldBy: z.string().nullable(),
    decidedBy: z.string().nullable(),
    decidedAt: z.string().nullable(),
    rejectReason: z.string().nullable(),
    lastRefusal: z.object({ reason: z.string(), message: z.string() }).nullable(),
    applied: z.object({ revision: z.number().int(), position: PositionText }).nullable(),
  })
  .openapi('LateRecordException');
export const ExceptionsPage = z
  .object({ exceptions: z.array(LateRecordException), next: PositionText.nullable() })
  .openapi('ExceptionsPage');
export const ExceptionDecision = z
  .object({
    exception: LateRecordException,
    account: z.object({ accountId: AccountId, balance: z.number().int(), revision: z.number().int(), position: PositionText }).optional(),
    position: PositionText.optional().describe('Read-your-writes: pass as minPosition to GET /exceptions'),
  })
  .openapi('ExceptionDecision');

// --- Holds (two-phase transfers, issue 25; docs/holds.md) ---

/** Every status of a hold (domain/hold.ts). */
export const HOLD_STATUSES = ['pending', 'failed', 'held', 'capturing', 'captured', 'compensated', 'voided', 'expired'] as const;
export const HoldStatusEnum = z.enum(HOLD_STATUSES, { error: `must be one of ${HOLD_STATUSES.join(', ')}` });
/** A hold's id: its idempotency key, and the id of the transfer its capture makes (the same form as a transfer id). */
export const HoldId = z
  .string({ error: 'must be a string' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, {
    error: 'must be 1-64 characters: letters, digits, _ and -, starting with a letter or digit',
  })
  .openapi({ example: 'order-4711-hold' });
/** Seconds until an open hold is voided by itself: default 7 days, at most 30. */
export const DEFAULT_HOLD_EXPIRES_IN = 604_800;
export const MAX_HOLD_EXPIRES_IN = 2_592_000;
export const CreateHoldBody = z
  .strictObject({
    holdId: HoldId.optional(),
    fromAccountId: AccountId,
    toAccountId: AccountId,
    amount: Amount,
    expiresIn: z
      .number({ error: 'must be a number of seconds' })
      .int({ error: 'must be a whole number of seconds' })
      .min(1, { error: 'must be at least 1 second' })
      .max(MAX_HOLD_EXPIRES_IN, { error: `must be at most ${MAX_HOLD_EXPIRES_IN} seconds (30 days)` })
      .optional()
      .openapi({
        example: 3600,
        description: `Seconds from acceptance until the hold expires (released by itself); default ${DEFAULT_HOLD_EXPIRES_IN} (7 days), at most ${MAX_HOLD_EXPIRES_IN} (30 days)`,
      }),
  })
  .refine((b) => b.fromAccountId !== b.toAccountId, { error: 'must differ from fromAccountId', path: ['toAccountId'] })
  .openapi('CreateHoldRequest');
/** POST /holds/{id}/capture: how much to move (default: all that is held). */
export const CaptureHoldBody = z
  .strictObject({ amount: Amount.optional().openapi({ description: 'At most what is held; absent: all of it' }) })
  .openapi('CaptureHoldRequest');
export const HoldParams = z.strictObject({ id: HoldId });
/** GET /holds: filters, and the cursor of the previous page. */
export const HoldListQuery = z.strictObject({
  accountId: AccountId.optional().openapi({ description: 'Holds from or to this account' }),
  status: HoldStatusEnum.optional(),
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be an integer' }).min(1).max(500).default(50),
  after: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,400}$/, { error: 'must be a cursor returned by a previous page' })
    .optional()
    .openapi({ description: 'The `next` of the previous page' }),
});

// --- Batches of transfers (issue 26; domain/transfer-batch.ts) ---

/** A batch's id: its idempotency key, of the same form as a transfer id (and scoped to a customer's owner as those are). */
export const BatchId = z
  .string({ error: 'must be a string' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, {
    error: 'must be 1-64 characters: letters, digits, _ and -, starting with a letter or digit',
  })
  .openapi({ example: 'payroll-2026-03' });
/** One item of POST /transfer-batches: a transfer as POST /transfers takes it. */
export const TransferBatchItemBody = z
  .strictObject({
    transferId: TransferId.optional().openapi({
      description: "The item's transfer id (its own idempotency key); absent: derived from the batch id and the item's place",
    }),
    fromAccountId: AccountId,
    toAccountId: AccountId,
    amount: Amount,
  })
  .refine((b) => b.fromAccountId !== b.toAccountId, { error: 'must differ from fromAccountId', path: ['toAccountId'] })
  .openapi('TransferBatchItemRequest');
export const CreateTransferBatchBody = z
  .strictObject({
    batchId: BatchId.optional(),
    atomic: z
      .boolean({ error: 'must be true or false' })
      .default(false)
      .openapi({ description: 'All or nothing: one item refused and nothing of the batch moves (default false: each item on its own)' }),
    items: z
      .array(TransferBatchItemBody, { error: 'must be an array of transfers' })
      .openapi({ description: 'The transfers, at least 1 and at most TRANSFER_BATCH_MAX_ITEMS (default 1,000)' }),
  })
  .openapi('CreateTransferBatchRequest');
export const TransferBatchParams = z.strictObject({ id: BatchId });
/** Every status of a batch (domain/transfer-batch.ts) and of one of its items (a transfer's). */
export const BATCH_STATUSES = ['pending', 'completed', 'failed', 'partially_completed'] as const;
export const BATCH_ITEM_STATUSES = ['pending', 'completed', 'failed', 'compensated'] as const;
export const BatchStatusEnum = z.enum(BATCH_STATUSES, { error: `must be one of ${BATCH_STATUSES.join(', ')}` });
export const BatchItemStatusEnum = z.enum(BATCH_ITEM_STATUSES, { error: `must be one of ${BATCH_ITEM_STATUSES.join(', ')}` });
/** GET /transfer-batches/{id}: a page of its items (by their place in the batch), filtered by outcome. */
export const TransferBatchQuery = z.strictObject({
  status: BatchItemStatusEnum.optional().openapi({ description: 'Only the items with this outcome' }),
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be an integer' }).min(1).max(500).default(100),
  cursor: z
    .string()
    .regex(/^\d{1,9}$/, { error: 'must be a cursor returned by a previous page' })
    .optional()
    .openapi({ description: 'The `nextCursor` of the previous page: the items after it' }),
  minPosition: PositionText.optional(),
});
/** GET /transfer-batches: newest first, by status, paged by a keyset cursor. */
export const TransferBatchListQuery = z.strictObject({
  status: BatchStatusEnum.optional(),
  limit: z.coerce.number({ error: 'must be a number' }).int({ error: 'must be an integer' }).min(1).max(500).default(50),
  after: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,400}$/, { error: 'must be a cursor returned by a previous page' })
    .optional()
    .openapi({ description: 'The `next` of the previous page' }),
  minPosition: PositionText.optional(),
});
