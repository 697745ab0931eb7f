import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { AccountRepository } from '../application/account-repository';
import type { BatchLog } from '../application/batch-log';
import { handleCommandsInBulk } from '../application/bulk-commands';
import { handleLegsInBulk, planLegs, type Leg } from '../application/command-legs';
import type { CommandContext } from '../application/event-envelope';
import type { Loaded } from '../application/event-sourced-repository';
import { transferStepId, type TransferLog } from '../application/transfer-log';
import { currencyMismatch, type AccountCommand } from '../domain/account-decider';
import { legsOf, type AccountState } from '../domain/account-state';
import { deterministicUuid } from '../domain/deterministic-id';
import type { Rejection } from '../domain/rejection';
import {
  batchOutcome,
  countOutcomes,
  type BatchCounts,
  type BatchItem,
  type BatchStatus,
  type ItemFailure,
} from '../domain/transfer-batch';
import type { TransferCommand } from '../domain/transfer-decider';
import { isTerminalStatus, type TerminalTransferStatus, type TransferFailureReason } from '../domain/transfer-events';
import type { TransferState } from '../domain/transfer-state';
import type { ActivityObserver } from './transfer-activities';

/**
 * The batch saga's activities (workflows/batch-saga.ts). Every one of them takes only the batch id (and, for the
 * settlement, why items failed): what moves comes from the batch the API recorded on `batch-<id>`, and whether an
 * item may be credited or must be refunded from its legs on the accounts, never from the saga's input. Each phase
 * groups the items by account and decides an account's legs together: one load of every account involved (one read
 * of the store), then one append per account with the revision read. Leg event ids derive from the item's transfer id
 * and the leg, exactly as a single transfer's do, so a retried phase, or a rerun of the whole batch, moves nothing twice.
 */
export interface BatchActivityDeps {
  accounts: AccountRepository;
  transfers: TransferLog;
  batches: BatchLog;
  observer?: ActivityObserver;
}

export interface AcceptedBatchRun {
  batchId: string;
  atomic: boolean;
  itemCount: number;
  actor: string;
  correlationId?: string;
  /** Set when the batch already ended on its stream: the run only reports it. */
  outcome?: Exclude<BatchStatus, 'pending'>;
  counts?: BatchCounts;
}

export interface PhaseResult {
  /** Items refused in this phase, with why (non-atomic: they are settled; atomic: the batch is). */
  refused: ItemFailure[];
  /** Items whose leg of this phase is on their account (landed now or before). */
  done: number;
}

export interface BatchSettlement {
  outcome: Exclude<BatchStatus, 'pending'>;
  counts: BatchCounts;
}

const UNAUTHORIZED = 'unauthorized';

/** Each leg's event ids: the same as a single transfer's legs (activities/transfer-activities.ts legId). */
const legId = (transferId: string, leg: string) => (index: number, type: string) =>
  deterministicUuid('transfer', transferId, leg, type, String(index));

/**
 * Runs a phase while telling Temporal every second that its worker is alive: the saga gives each attempt a heartbeat
 * timeout, so a phase whose worker died is retried on another within seconds, not at its start-to-close timeout.
 */
async function alive<T>(work: () => Promise<T>): Promise<T> {
  let context: Context | undefined;
  try {
    context = Context.current();
  } catch {
    return work(); // outside an activity (tests)
  }
  const beat = setInterval(() => context.heartbeat(), 1_000);
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}

function activityCausation(): string | undefined {
  try {
    const info = Context.current().info;
    return `${info.workflowExecution?.workflowId ?? 'activity'}/${info.activityType}`;
  } catch {
    return undefined; // called outside an activity (tests)
  }
}

/** Groups items by a key, keeping the items' order within each group. */
function groupBy(items: readonly BatchItem[], key: (item: BatchItem) => string): Map<string, BatchItem[]> {
  const groups = new Map<string, BatchItem[]>();
  for (const item of items) {
    const list = groups.get(key(item));
    if (list) list.push(item);
    else groups.set(key(item), [item]);
  }
  return groups;
}

const failure = (transferId: string, rejection: Rejection): ItemFailure => ({
  transferId,
  reason: rejection.type,
  message: rejection.message,
});

/** An item whose transfer id belongs to another transfer: it moves nothing and never touches that transfer. */
const conflictOf = (item: BatchItem): ItemFailure => ({
  transferId: item.transferId,
  reason: 'transfer_conflict',
  message: `Transfer id ${item.transferId} belongs to another transfer: this item moves nothing`,
});

export function createBatchActivities({ accounts, transfers, batches, observer }: BatchActivityDeps) {
  /** The batch the API accepted, or a non-retryable `unauthorized` when none is recorded (nothing moves). */
  async function accepted(batchId: string, activity: string) {
    const { state } = await batches.load(batchId);
    if (!state.request || !state.accepted) {
      const why = 'no batch accepted by the API is recorded under this id';
      observer?.unauthorized?.(batchId, activity, why);
      throw ApplicationFailure.nonRetryable(`Batch ${batchId}: ${why}; nothing moves`, UNAUTHORIZED);
    }
    const context = (item: BatchItem): CommandContext => ({
      ...(state.accepted!.correlationId ? { correlationId: state.accepted!.correlationId } : {}),
      causationId: activityCausation(),
      extra: { transferId: item.transferId, batchId, actor: state.accepted!.actor },
    });
    return { state, request: state.request, accepted: state.accepted, context };
  }

  /** The items registered as this batch's transfers: not refused at registration. */
  const registered = (batch: Awaited<ReturnType<typeof accepted>>) =>
    batch.request.items.filter((i) => !batch.state.rejected.has(i.transferId));

  async function loadAccounts(ids: Iterable<string>): Promise<Map<string, Loaded<AccountState>>> {
    const list = [...new Set(ids)];
    const loaded = await accounts.loadMany(list);
    return new Map(list.map((id, i) => [id, loaded[i]!]));
  }

  /** Every item's transfer stream, in one read of the store. */
  async function loadTransfers(items: readonly BatchItem[]): Promise<Map<string, Loaded<TransferState>>> {
    const loaded = await transfers.loadMany(items.map((i) => i.transferId));
    return new Map(items.map((item, i) => [item.transferId, loaded[i]!]));
  }

  /**
   * One phase: each account's legs (`legsFor`) decided together and appended once, the accounts side by side.
   * Atomic: every account's legs are first decided on the states just read; any refusal and nothing is appended.
   */
  async function runPhase(
    groups: Map<string, BatchItem[]>,
    loaded: Map<string, Loaded<AccountState>>,
    legsFor: (accountId: string, items: BatchItem[]) => Leg<AccountCommand>[],
    atomic: boolean,
    activity: string,
  ): Promise<ItemFailure[]> {
    const refused: ItemFailure[] = [];
    const entries = [...groups.entries()];
    if (atomic) {
      for (const [accountId, items] of entries) {
        for (const [transferId, rejection] of planLegs(accounts, loaded.get(accountId)!.state, legsFor(accountId, items)).refused)
          refused.push(failure(transferId, rejection));
      }
      if (refused.length > 0) return refused;
    }
    const results = await handleLegsInBulk(
      accounts,
      entries.map(([accountId, items]) => ({ id: accountId, legs: legsFor(accountId, items), loaded: loaded.get(accountId)! })),
      { atomic, onConflict: () => observer?.conflict(activity) },
    );
    for (const result of results) for (const [transferId, rejection] of result.refused) refused.push(failure(transferId, rejection));
    return refused;
  }

  /** Records steps on each item's transfer stream: every stream's append sent together (handleCommandsInBulk). */
  async function recordSteps(
    batch: Awaited<ReturnType<typeof accepted>>,
    steps: { item: BatchItem; commands: TransferCommand[] }[],
    known: Map<string, Loaded<TransferState>>,
  ): Promise<void> {
    const results = await handleCommandsInBulk(
      transfers,
      steps.map(({ item, commands }) => ({
        id: item.transferId,
        commands,
        eventId: (_index: number, type: string) => transferStepId(item.transferId)(type),
        context: { ...batch.context(item), extra: { ...batch.context(item).extra, transferId: item.transferId } },
        loaded: known.get(item.transferId)!,
      })),
    );
    results.forEach((result, i) => {
      if (!result.ok && result.rejection.type !== 'transfer_finished') {
        const { item, commands } = steps[i]!;
        throw new Error(`recording ${commands.map((c) => c.type).join('+')} on transfer ${item.transferId}: ${result.rejection.message}`);
      }
    });
  }

  return {
    /** The batch the API recorded (its shape, who asked), or null when none is: the run then moves and writes nothing. */
    async acceptedBatch(input: { batchId: string }): Promise<AcceptedBatchRun | null> {
      const batchId = String(input.batchId);
      const { state } = await batches.load(batchId);
      if (!state.request || !state.accepted) {
        observer?.unauthorized?.(batchId, 'acceptedBatch', 'no batch accepted by the API is recorded under this id');
        return null;
      }
      return {
        batchId,
        atomic: state.request.atomic,
        itemCount: state.request.items.length,
        actor: state.accepted.actor,
        ...(state.accepted.correlationId ? { correlationId: state.accepted.correlationId } : {}),
        ...(state.status !== 'pending' ? { outcome: state.status, ...(state.counts ? { counts: state.counts } : {}) } : {}),
      };
    },

    /**
     * Gives every item its transfer stream: its request, marked with the batch's id and the batch's actor. An item whose
     * id is taken by another transfer (another payload, or not this batch's) is refused (`transfer_conflict`) and
     * recorded as such on the batch's stream; it never touches that transfer.
     */
    async registerBatchItems(input: { batchId: string }): Promise<PhaseResult> {
      return alive(async () => {
        const batch = await accepted(String(input.batchId), 'registerBatchItems');
        const items = registered(batch);
        const existing = await loadTransfers(items);
        const acceptedBy = { ...batch.accepted, batchId: batch.request.batchId };
        const refused: ItemFailure[] = [];
        const fresh = items.filter((item) => {
          const before = existing.get(item.transferId)!.state;
          if (before.request && before.accepted?.batchId === batch.request.batchId) return false; // registered by an earlier attempt
          if (before.request) {
            refused.push(conflictOf(item));
            return false;
          }
          return true;
        });
        const results = await handleCommandsInBulk(
          transfers,
          fresh.map((item) => ({
            id: item.transferId,
            commands: [{ type: 'RequestTransfer', request: { ...item }, accepted: acceptedBy } as TransferCommand],
            eventId: (_index: number, type: string) => transferStepId(item.transferId)(type),
            context: batch.context(item),
            loaded: existing.get(item.transferId)!,
          })),
        );
        results.forEach((result, i) => {
          // Refused, or recorded by someone else meanwhile (another transfer took the id first).
          if (!result.ok || result.state.accepted?.batchId !== batch.request.batchId) refused.push(conflictOf(fresh[i]!));
        });
        if (refused.length > 0) {
          // In the batch's order, so that the record is the same whichever attempt makes it.
          const order = new Map(batch.request.items.map((item, i) => [item.transferId, i]));
          refused.sort((a, b) => order.get(a.transferId)! - order.get(b.transferId)!);
          const recorded = await batches.record(
            batch.request.batchId,
            { type: 'RejectItems', items: refused },
            batch.context(batch.request.items[0]!),
          );
          if (!recorded.ok) throw new Error(`recording refused items of batch ${batch.request.batchId}: ${recorded.rejection.message}`);
        }
        return { refused, done: items.length - refused.length };
      });
    },

    /**
     * The debits: every source account's items decided together (a hot account's hundred debits are one decision and one
     * append). An item refused by the rules (funds, a closed account, the currency) moves nothing. Atomic: any refusal
     * and no debit is appended at all.
     */
    async debitBatch(input: { batchId: string }): Promise<PhaseResult> {
      return alive(async () => {
        const batch = await accepted(String(input.batchId), 'debitBatch');
        // Every registered item: a leg already applied decides to nothing, and one of an item already settled is refused
        // by the account (its debit was given back or voided), so no transfer stream needs reading here.
        const items = registered(batch);
        const loaded = await loadAccounts(items.flatMap((i) => [i.fromAccountId, i.toAccountId]));
        const refused: ItemFailure[] = [];
        const movable: BatchItem[] = [];
        for (const item of items) {
          const mismatch = currencyMismatch(loaded.get(item.fromAccountId)!.state, loaded.get(item.toAccountId)!.state);
          if (mismatch) refused.push(failure(item.transferId, mismatch));
          else movable.push(item);
        }
        if (batch.request.atomic && refused.length > 0) return { refused, done: 0 };
        const legs = (accountId: string, list: BatchItem[]): Leg<AccountCommand>[] =>
          list.map((item) => ({
            key: item.transferId,
            command: {
              type: 'DebitForTransfer',
              transferId: item.transferId,
              amount: item.amount,
              currency: loaded.get(accountId)!.state.currency,
              toAccountId: item.toAccountId,
            },
            eventId: legId(item.transferId, 'debit'),
            context: batch.context(item),
          }));
        refused.push(
          ...(await runPhase(
            groupBy(movable, (i) => i.fromAccountId),
            loaded,
            legs,
            batch.request.atomic,
            'debitBatch',
          )),
        );
        return { refused, done: movable.length - refused.length };
      });
    },

    /**
     * The credits of every item whose debit is on its source (and not given back): every target account's credits
     * decided together. An item refused (a closed target, its limit) is settled. Atomic: any refusal and no credit is
     * appended at all.
     */
    async creditBatch(input: { batchId: string }): Promise<PhaseResult> {
      return alive(async () => {
        const batch = await accepted(String(input.batchId), 'creditBatch');
        const pending = registered(batch);
        const loaded = await loadAccounts(pending.flatMap((i) => [i.fromAccountId, i.toAccountId]));
        // A credit follows only a debit that landed: never one the saga merely believes happened.
        const debited = pending.filter((item) => {
          const legs = legsOf(loaded.get(item.fromAccountId)!.state, item.transferId);
          return legs?.debited !== undefined && legs.refunded === undefined;
        });
        const legs = (accountId: string, list: BatchItem[]): Leg<AccountCommand>[] =>
          list.map((item) => ({
            key: item.transferId,
            command: {
              type: 'CreditForTransfer',
              transferId: item.transferId,
              amount: item.amount,
              currency: loaded.get(item.fromAccountId)!.state.currency,
              fromAccountId: item.fromAccountId,
            },
            eventId: legId(item.transferId, 'credit'),
            context: batch.context(item),
          }));
        const refused = await runPhase(
          groupBy(debited, (i) => i.toAccountId),
          loaded,
          legs,
          batch.request.atomic,
          'creditBatch',
        );
        return { refused, done: debited.length - refused.length };
      });
    },

    /**
     * Ends every item that is still pending, from what landed on its accounts (never from what the saga believes):
     * - its credit is on the target: `completed`;
     * - otherwise the target is closed to a late credit first (a debited item's credit is voided there; should the
     *   credit have landed meanwhile, the item completes), then the source gets back what this item debited
     *   (`compensated`), or the item's debit is voided there when none landed (`failed`: nothing moved).
     * Each item's outcome is recorded on its own stream, then the batch's on the batch's stream, with the counts.
     * `failures` says why items failed (from the phases); `reason` is for the others (an atomic batch's abort, a cancel).
     * Idempotent: run again, it finds what it did. A refund the rules refuse stops it (non-retryable `settlement_refused`)
     * before any outcome is recorded: the saga then waits for a person.
     */
    async settleBatch(input: {
      batchId: string;
      failures: ItemFailure[];
      reason: TransferFailureReason;
      message: string;
    }): Promise<BatchSettlement> {
      return alive(async () => {
        const batch = await accepted(String(input.batchId), 'settleBatch');
        const why = new Map((Array.isArray(input.failures) ? input.failures : []).map((f) => [String(f.transferId), f]));
        const items = registered(batch);
        const known = await loadTransfers(items);
        const outcomes = new Map<string, TerminalTransferStatus>();
        for (const item of items) {
          const status = known.get(item.transferId)!.state.status;
          if (isTerminalStatus(status)) outcomes.set(item.transferId, status);
        }
        const open = items.filter((i) => !outcomes.has(i.transferId));
        const loaded = await loadAccounts(open.flatMap((i) => [i.fromAccountId, i.toAccountId]));
        const debitedOn = (item: BatchItem, state: AccountState) => legsOf(state, item.transferId)?.debited;
        const creditedOn = (item: BatchItem, state: AccountState) => legsOf(state, item.transferId)?.credited !== undefined;

        // 1. The targets: an item debited but not credited has its credit voided, so that no late attempt can land.
        const toVoid = open.filter(
          (i) => debitedOn(i, loaded.get(i.fromAccountId)!.state) !== undefined && !creditedOn(i, loaded.get(i.toAccountId)!.state),
        );
        const targets = new Map<string, AccountState>();
        const voidGroups = [...groupBy(toVoid, (i) => i.toAccountId).entries()];
        const voided = await handleLegsInBulk(
          accounts,
          voidGroups.map(([accountId, list]) => ({
            id: accountId,
            loaded: loaded.get(accountId)!,
            legs: list.map((item) => ({
              key: item.transferId,
              command: { type: 'VoidCreditForTransfer', transferId: item.transferId } as AccountCommand,
              eventId: legId(item.transferId, 'void-credit'),
              context: batch.context(item),
            })),
          })),
          { onConflict: () => observer?.conflict('settleBatch') },
        );
        voidGroups.forEach(([accountId], i) => targets.set(accountId, voided[i]!.state));
        const targetState = (item: BatchItem) => targets.get(item.toAccountId) ?? loaded.get(item.toAccountId)!.state;
        const completed = open.filter((i) => creditedOn(i, targetState(i)));
        for (const item of completed) outcomes.set(item.transferId, 'completed');

        // 2. The sources: everything else gets back what it debited (or has its debit voided).
        const toRefund = open.filter((i) => !outcomes.has(i.transferId));
        const sources = new Map<string, AccountState>();
        const refusedRefunds: ItemFailure[] = [];
        const refundGroups = [...groupBy(toRefund, (i) => i.fromAccountId).entries()];
        const refunds = await handleLegsInBulk(
          accounts,
          refundGroups.map(([accountId, list]) => ({
            id: accountId,
            loaded: loaded.get(accountId)!,
            legs: list.map((item) => ({
              key: item.transferId,
              command: { type: 'RefundForTransfer', transferId: item.transferId } as AccountCommand,
              eventId: legId(item.transferId, 'refund'),
              context: batch.context(item),
            })),
          })),
          { onConflict: () => observer?.conflict('settleBatch') },
        );
        refundGroups.forEach(([accountId], i) => {
          for (const [transferId, rejection] of refunds[i]!.refused) refusedRefunds.push(failure(transferId, rejection));
          sources.set(accountId, refunds[i]!.state);
        });
        if (refusedRefunds.length > 0) {
          const first = refusedRefunds[0]!;
          throw ApplicationFailure.nonRetryable(
            `${refusedRefunds.length} refund(s) of batch ${batch.request.batchId} refused, first ${first.transferId}: ${first.message}`,
            'settlement_refused',
          );
        }

        // 3. Each item's outcome on its own stream (with its steps, so its stream alone tells its story).
        const steps: { item: BatchItem; commands: TransferCommand[] }[] = [];
        for (const item of open) {
          const source = sources.get(item.fromAccountId) ?? loaded.get(item.fromAccountId)!.state;
          const legs = legsOf(source, item.transferId);
          const debited = {
            type: 'RecordSourceDebited',
            accountId: item.fromAccountId,
            amount: legs?.debited ?? item.amount,
            currency: source.currency,
          } as const;
          if (outcomes.get(item.transferId) === 'completed') {
            steps.push({
              item,
              commands: [
                debited,
                { type: 'RecordTargetCredited', accountId: item.toAccountId, amount: item.amount },
                { type: 'CompleteTransfer' },
              ],
            });
            continue;
          }
          const cause = why.get(item.transferId) ?? { reason: input.reason, message: String(input.message) };
          const refunded = legs?.refunded ?? 0;
          if (refunded > 0) {
            outcomes.set(item.transferId, 'compensated');
            steps.push({
              item,
              commands: [
                debited,
                { type: 'RecordSourceRefunded', accountId: item.fromAccountId, amount: refunded },
                { type: 'CompensateTransfer', reason: cause.reason, message: cause.message },
              ],
            });
          } else {
            outcomes.set(item.transferId, 'failed');
            steps.push({ item, commands: [{ type: 'FailTransfer', reason: cause.reason, message: cause.message }] });
          }
        }
        await recordSteps(batch, steps, known);

        // 4. The batch's end, with the counts (items refused at registration count as failed).
        const counts = countOutcomes(outcomes.values());
        counts.failed += batch.state.rejected.size;
        const outcome = batchOutcome(counts);
        const message =
          batch.request.atomic && outcome === 'partially_completed'
            ? 'An atomic batch could not be kept all or nothing (an account changed between its decision and its append): the items that completed stand; reverse them if needed'
            : undefined;
        if (message) observer?.needsAttention?.(batch.request.batchId, 'atomicity_broken', message);
        const settled = await batches.record(
          batch.request.batchId,
          { type: 'SettleBatch', outcome, counts, ...(message ? { message } : {}) },
          batch.context(batch.request.items[0]!),
        );
        if (!settled.ok) throw new Error(`recording the end of batch ${batch.request.batchId}: ${settled.rejection.message}`);
        const final = settled.state;
        return { outcome: final.status === 'pending' ? outcome : final.status, counts: final.counts ?? counts };
      });
    },

    /** A batch that cannot settle waits for a person: counted and logged (never silently failed). */
    async reportBatchNeedsAttention(input: { batchId: string; reason: string; message: string }): Promise<void> {
      observer?.needsAttention?.(String(input.batchId), String(input.reason), String(input.message));
    },
  };
}

export type BatchActivities = ReturnType<typeof createBatchActivities>;
