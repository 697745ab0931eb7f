import { deterministicUuid } from '../domain/deterministic-id';
import {
  transferBatchDecider,
  type TransferBatchCommand,
  type TransferBatchEvent,
  type TransferBatchState,
} from '../domain/transfer-batch';
import type { AcceptedBy } from '../domain/transfer-events';
import type { BatchRequest } from '../domain/transfer-batch';
import type { EventStore } from '../eventstore/event-store';
import { handleCommand, type CommandResult } from './command-handler';
import type { CommandContext } from './event-envelope';
import { EventSourcedRepository, type Loaded } from './event-sourced-repository';

export type LoadedBatch = Loaded<TransferBatchState>;

/** A step's event id on the batch's stream: derived from the batch id and the type (and a part), so a retry never records it twice. */
export const batchStepId =
  (batchId: string) =>
  (type: string, part = ''): string =>
    deterministicUuid('batch', batchId, 'step', type, part);

/** An item's transfer id when the client gave none: derived from the batch id and the item's place, so a retried batch names the same transfers. */
export const batchItemTransferId = (batchId: string, index: number): string => deterministicUuid('batch', batchId, 'item', String(index));

/** The batch's own stream `batch-<id>`: what the API accepted (the one source its saga executes), refused items, its end. */
export class BatchLog extends EventSourcedRepository<TransferBatchState, TransferBatchCommand, TransferBatchEvent> {
  constructor(store: EventStore) {
    super(store, transferBatchDecider);
  }

  record(
    batchId: string,
    command: TransferBatchCommand,
    context: CommandContext = {},
    preloaded?: LoadedBatch,
  ): Promise<CommandResult<TransferBatchState>> {
    // Rejected items may be recorded more than once (a rerun finds more): each record's id names its first item.
    const part = command.type === 'RejectItems' ? (command.items[0]?.transferId ?? '') : '';
    return handleCommand(this, batchId, command, {
      context: { ...context, extra: { ...context.extra, batchId } },
      eventId: (_index, type) => batchStepId(batchId)(type, part),
      ...(preloaded ? { preloaded } : {}),
    });
  }

  /** Records a batch as accepted by the API, with who asked: the one source every run of its saga executes. */
  accept(request: BatchRequest, accepted: AcceptedBy, preloaded?: LoadedBatch): Promise<CommandResult<TransferBatchState>> {
    return this.record(
      request.batchId,
      { type: 'AcceptBatch', request, accepted },
      {
        ...(accepted.correlationId ? { correlationId: accepted.correlationId } : {}),
        causationId: 'api',
        extra: { actor: accepted.actor },
      },
      preloaded,
    );
  }
}
