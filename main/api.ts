// Entry point of the `api` service (docker-compose): the HTTP API.
import { runService, requireEndpoints } from './run-service';
import { connectEventStore, Metrics, startApi } from './services';

void runService('api', async (config, logger) => {
  const endpoints = requireEndpoints(config);
  const store = await connectEventStore(config, endpoints.databaseUrl);
  const api = await startApi(config, endpoints, store, new Metrics({ defaultMetrics: true }), logger);
  return { stop: async () => { await api.stop(); await store.close(); } };
});
