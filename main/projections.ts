// Entry point of the `projections` service (docker-compose): feeds the read models.
import { runService, requireEndpoints } from './run-service';
import { connectEventStore, Metrics, projectionMetrics, startProjections } from './services';

void runService('projections', async (config, logger) => {
  const endpoints = requireEndpoints(config);
  const { store } = await connectEventStore(config, endpoints.databaseUrl, logger);
  const projections = await startProjections(endpoints, store, projectionMetrics(new Metrics({ defaultMetrics: true })), logger);
  return {
    stop: async () => {
      await projections.stop();
      await store.close();
    },
  };
});
