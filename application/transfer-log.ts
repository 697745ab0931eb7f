import { deterministicUuid } from '../domain/deterministic-id';
import { transferDecider, type TransferCommand } from '../domain/transfer-decider';
import type { AcceptedBy, TransferEvent, TransferRequest } from '../domain/transfer-events';
import type { TransferState } from '../domain/transfer-state';
import type { EventStore } from '../eventstore/event-store';
import { handleCommand, type CommandResult } from './command-handler';
import type { CommandContext } from './event-envelope';
import { EventSourcedRepository, type Loaded } from './event-sourced-repository';

export type LoadedTransfer = Loaded<TransferState>;

/** The id of a step's event on the transfer's stream: derived from the transfer id and the type, so a retry never records it twice. */
export const transferStepId =
  (transferId: string) =>
  (type: string): string =>
    deterministicUuid('transfer', transferId, 'step', type);

/** The transfer's own stream: its lifecycle, so that the event store alone tells the whole story. */
export class TransferLog extends EventSourcedRepository<TransferState, TransferCommand, TransferEvent> {
  constructor(store: EventStore) {
    super(store, transferDecider);
  }

  /**
   * Records steps (one command, or several decided in order and appended together) through the one
   * command path. Each step has a deterministic event id, so a retried activity never records it twice.
   */
  record(
    transferId: string,
    commands: TransferCommand | TransferCommand[],
    eventId: (type: string) => string,
    context: CommandContext = {},
    onConflict?: () => void,
    preloaded?: LoadedTransfer,
  ): Promise<CommandResult<TransferState>> {
    return handleCommand(this, transferId, commands, {
      context: { ...context, extra: { ...context.extra, transferId } },
      eventId: (_index, type) => eventId(type),
      onConflict,
      ...(preloaded ? { preloaded } : {}),
    });
  }

  /**
   * Records a request as accepted by the API, with who asked: the one source every run of its saga executes. The same
   * request again writes nothing (and answers the recorded state); the same id with another payload is refused
   * (`transfer_conflict`), and so is an invalid request. Written with the request's correlation id and actor.
   */
  accept(request: TransferRequest, accepted: AcceptedBy, preloaded?: LoadedTransfer): Promise<CommandResult<TransferState>> {
    return this.record(
      request.transferId,
      [{ type: 'RequestTransfer', request, accepted }],
      transferStepId(request.transferId),
      {
        ...(accepted.correlationId ? { correlationId: accepted.correlationId } : {}),
        causationId: 'api',
        extra: { actor: accepted.actor },
      },
      undefined,
      preloaded,
    );
  }
}
