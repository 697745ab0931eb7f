import { formatPosition, parsePosition } from '../eventstore/event-store';
import { projectionByName } from '../projections/all-projections';
import { waitForProjection } from '../projections/projection-runner';
import type { ReadScope } from '../projections/read-scope';
import type { ApiDeps } from './api-deps';
import { HttpProblem, problemType } from './problem';
import { minPositionWait } from './wait-limits';

/**
 * Read-your-writes: a write answers with the position it wrote; a read with ?minPosition= waits
 * (bounded) until the projection it reads from has applied that position. When the projection has
 * parked an event at or before that position, it cannot answer consistently until the parked events
 * are replayed: the read is refused at once (503, projection-degraded) rather than answered with stale data.
 * A read that has to wait counts under its API key's cap of waits in progress (429 beyond it, see wait-limits.ts); the
 * waiters of a projection are answered together from one read of its progress per tick (waitForProjection).
 * `scope`: what the read depends on (projections/read-scope.ts): a parked event outside it does not refuse the read.
 */
export async function awaitProjection(
  deps: ApiDeps,
  projection: string,
  minPosition: string | undefined,
  scope?: ReadScope,
): Promise<void> {
  if (!minPosition) return;
  const position = parsePosition(minPosition)!;
  const timeoutMs = deps.maxConsistencyWaitMs ?? 10_000;
  const progress = await waitForProjection(deps.store, deps.readModels, projectionByName(projection)!, position, timeoutMs, {
    ...minPositionWait(timeoutMs),
    ...(scope ? { scope } : {}),
  });
  if (progress.state === 'degraded') {
    throw new HttpProblem(
      503,
      problemType('projection-degraded'),
      'Read model degraded',
      `The ${projection} read model has ${progress.parkedEvents} parked event(s) at or before position ${minPosition} (the first at ${formatPosition(progress.firstParked)}); it lacks them until an operator replays them (npm run projections:parked -- list ${projection})`,
      undefined,
      { projection, parkedEvents: progress.parkedEvents, firstParkedPosition: formatPosition(progress.firstParked) },
    );
  }
  if (progress.state === 'behind') {
    throw new HttpProblem(
      503,
      problemType('projection-behind'),
      'Read model not caught up yet',
      `The ${projection} read model has not reached position ${minPosition}; retry shortly`,
    );
  }
}
