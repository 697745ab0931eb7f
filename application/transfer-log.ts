import { transferDecider, type TransferCommand } from '../domain/transfer-decider';
import type { TransferEvent } from '../domain/transfer-events';
import type { TransferState } from '../domain/transfer-state';
import type { EventStore } from '../eventstore/event-store';
import { handleCommand, type CommandResult } from './command-handler';
import type { CommandContext } from './event-envelope';
import { EventSourcedRepository, type Loaded } from './event-sourced-repository';

export type LoadedTransfer = Loaded<TransferState>;

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
  ): Promise<CommandResult<TransferState>> {
    return handleCommand(this, transferId, commands, {
      context: { ...context, extra: { ...context.extra, transferId } },
      eventId: (_index, type) => eventId(type),
      onConflict,
    });
  }
}
