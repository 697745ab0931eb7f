// Entry point of the `worker` service (docker-compose): runs the transfer saga and its activities.
import { runService, requireEndpoints } from './run-service';
import { connectEventStore, Metrics, startWorker } from './services';

void runService('worker', async (config, logger) => {
  const endpoints = requireEndpoints(config);
  const { store } = await connectEventStore(config, endpoints.databaseUrl, logger);
  const worker = await startWorker(config, endpoints, store, new Metrics({ defaultMetrics: true }), logger);
  return {
    stop: async () => {
      await worker.stop();
      await store.close();
    },
  };
});
