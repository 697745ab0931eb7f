import type { TransferCommand } from '../domain/transfer-decider';
import { decideTransfer } from '../domain/transfer-decider';
import type { TransferEvent } from '../domain/transfer-events';
import { transferStream } from '../domain/transfer-events';
import { evolveTransfer, initialTransferState, type TransferState } from '../domain/transfer-state';
import type { Rejection } from '../domain/rejection';
import type { EventStore, GlobalPosition } from '../eventstore/event-store';
import { retryOnConflict } from './conflict-retry';
import { toDomainEvent, toNewEvent, type CommandContext } from './event-envelope';

export interface LoadedTransfer {
  state: TransferState;
  revision: bigint | 'no_stream';
}

/** The transfer's own stream: its lifecycle, so that the event store alone tells the whole story. */
export class TransferLog {
  constructor(private readonly store: EventStore) {}

  async load(transferId: string): Promise<LoadedTransfer> {
    const events = await this.store.readStream(transferStream(transferId));
    let state = initialTransferState();
    for (const e of events) state = evolveTransfer(state, toDomainEvent<TransferEvent>(e), e.metadata.occurredAt);
    return { state, revision: events.at(-1)?.revision ?? 'no_stream' };
  }

  /**
   * Records steps (one command, or several decided in order and appended together). Each step has a
   * deterministic event id, so a retried activity never records it twice.
   */
  async record(
    transferId: string,
    commandOrCommands: TransferCommand | TransferCommand[],
    eventId: (type: string) => string,
    context: CommandContext = {},
    onConflict?: () => void,
  ): Promise<{ ok: true; state: TransferState; position?: GlobalPosition } | { ok: false; rejection: Rejection }> {
    return retryOnConflict(
      async () => {
        const { state, revision } = await this.load(transferId);
        // Steps get their time from the store once recorded (no process clock): '' while deciding.
        let after = state;
        const decided: TransferEvent[] = [];
        for (const command of Array.isArray(commandOrCommands) ? commandOrCommands : [commandOrCommands]) {
          const decision = decideTransfer(after, command);
          if (!decision.ok) return { ok: false as const, rejection: decision.rejection };
          decided.push(...decision.events);
          after = decision.events.reduce((s, e) => evolveTransfer(s, e, ''), after);
        }
        if (decided.length === 0) return { ok: true as const, state };
        const events = decided.map((e) => toNewEvent(e, { ...context, extra: { ...context.extra, transferId } }, eventId(e.type)));
        const result = await this.store.appendToStream(transferStream(transferId), events, { expectedRevision: revision });
        const { recordedAt } = result;
        after = recordedAt !== undefined ? decided.reduce((s, e) => evolveTransfer(s, e, context.occurredAt ?? recordedAt), state) : (await this.load(transferId)).state;
        return { ok: true as const, state: after, position: result.position };
      },
      { onConflict },
    );
  }
}
