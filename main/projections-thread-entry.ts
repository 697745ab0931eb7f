// Runs in the projections thread of the local stack (main/projections-thread.ts starts it): its own event-store client
// and read-model pool, its own event loop. Nothing here loads the Temporal SDK.
import { parentPort, workerData } from 'node:worker_threads';
import type { RecordedEvent } from '../eventstore/event-store';
import { createLogger } from '../infra/logger';
import type { ProjectionOutcome } from '../projections/projection-runner';
import type { AppliedNote, ProjectionsThreadData, ToParent, ToThread } from './projections-thread';
import { connectEventStore, recoveredErrorLogger, startProjections } from './store-services';

const port = parentPort;
if (!port) throw new Error('main/projections-thread-entry.ts runs in a worker thread (main/projections-thread.ts starts it)');
const { config, endpoints } = workerData as ProjectionsThreadData;
const logger = createLogger(config.LOG_LEVEL, { service: 'projections' });
const send = (message: ToParent) => port.postMessage(message);

// Outcomes go to the parent (its metrics) in one message per turn of this thread's loop, not one per event.
let notes: AppliedNote[] = [];
const flush = () => {
  const batch = notes;
  notes = [];
  send({ kind: 'applied', notes: batch });
};
const observer = {
  applied(projection: string, event: RecordedEvent, outcome: ProjectionOutcome) {
    notes.push({ projection, type: event.type, recordedAt: event.recordedAt, appliedAt: Date.now(), outcome });
    if (notes.length === 1) setImmediate(flush);
  },
};

void (async () => {
  const { store } = await connectEventStore(config, endpoints.databaseUrl, logger.child({ part: 'event-store' }));
  let projections: { stop(): Promise<void> };
  try {
    projections = await startProjections(endpoints, store, observer, logger);
  } catch (error) {
    // The start's own error is the one to report; a failed close of a store that never served is not news.
    await store.close().catch(() => undefined);
    throw error;
  }
  port.on('message', (message: ToThread) => {
    if (message.kind !== 'stop') return;
    void (async () => {
      const warn = recoveredErrorLogger(logger, 'projections thread');
      await projections.stop().catch((error: unknown) => warn(error, 'stop'));
      await store.close().catch((error: unknown) => warn(error, 'closing the event store'));
      if (notes.length > 0) flush();
      send({ kind: 'stopped' });
      port.close();
    })();
  });
  send({ kind: 'started' });
})().catch((error: unknown) => {
  // The thread ends with the error; the parent sees it as the thread's 'error' event.
  setImmediate(() => {
    throw error;
  });
});
