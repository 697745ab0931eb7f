import { parsePosition } from '../eventstore/event-store';
import { projectionByName } from '../projections/all-projections';
import { waitForProjection } from '../projections/projection-runner';
import type { ApiDeps } from './api-deps';
import { HttpProblem, problemType } from './problem';

/**
 * Read-your-writes: a write answers with the position it wrote; a read with ?minPosition= waits
 * (bounded) until the projection it reads from has applied that position.
 */
export async function awaitProjection(deps: ApiDeps, projection: string, minPosition: string | undefined): Promise<void> {
  if (!minPosition) return;
  const position = parsePosition(minPosition)!;
  const ok = await waitForProjection(deps.store, deps.readModels, projectionByName(projection)!, position, deps.maxConsistencyWaitMs ?? 10_000);
  if (!ok) {
    throw new HttpProblem(503, problemType('projection-behind'), 'Read model not caught up yet', `The ${projection} read model has not reached position ${minPosition}; retry shortly`);
  }
}
