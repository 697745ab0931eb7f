import { deterministicUuid } from '../domain/deterministic-id';
import { holdDecider, type HoldCommand, type HoldEvent, type HoldRequest, type HoldState } from '../domain/hold';
import type { AcceptedBy } from '../domain/transfer-events';
import type { EventStore } from '../eventstore/event-store';
import { handleCommand, type CommandResult } from './command-handler';
import type { CommandContext } from './event-envelope';
import { EventSourcedRepository, type Loaded } from './event-sourced-repository';

export type LoadedHold = Loaded<HoldState>;

/** A step's event id on the hold's stream: derived from the hold id and the type, so a retry never records it twice. */
export const holdStepId =
  (holdId: string) =>
  (type: string): string =>
    deterministicUuid('hold', holdId, 'step', type);

/** The hold's own stream `hold-<id>`: where its request, capture, void and expiry are decided, once each. */
export class HoldLog extends EventSourcedRepository<HoldState, HoldCommand, HoldEvent> {
  constructor(store: EventStore) {
    super(store, holdDecider);
  }

  record(
    holdId: string,
    commands: HoldCommand | HoldCommand[],
    context: CommandContext = {},
    preloaded?: LoadedHold,
  ): Promise<CommandResult<HoldState>> {
    return handleCommand(this, holdId, commands, {
      context: { ...context, extra: { ...context.extra, holdId } },
      eventId: (_index, type) => holdStepId(holdId)(type),
      ...(preloaded ? { preloaded } : {}),
    });
  }

  /** Records what the API accepted (a request, a capture, a void), with who asked: the one source the saga acts on. */
  accept(holdId: string, command: HoldCommand, accepted: AcceptedBy, preloaded?: LoadedHold): Promise<CommandResult<HoldState>> {
    return this.record(
      holdId,
      command,
      {
        ...(accepted.correlationId ? { correlationId: accepted.correlationId } : {}),
        causationId: 'api',
        extra: { actor: accepted.actor },
      },
      preloaded,
    );
  }

  acceptRequest(request: HoldRequest, accepted: AcceptedBy, preloaded?: LoadedHold): Promise<CommandResult<HoldState>> {
    return this.accept(request.holdId, { type: 'RequestHold', request, accepted }, accepted, preloaded);
  }
}
