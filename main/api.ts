// Entry point of the `api` service (docker-compose): the HTTP API.
import { runService, requireEndpoints } from './run-service';
import { connectEventStore, Metrics, startApi } from './services';

void runService('api', async (config, logger) => {
  const endpoints = requireEndpoints(config);
  if (!config.OPERATOR_API_KEY)
    logger.log({ level: 'warn', msg: 'OPERATOR_API_KEY is not set: only keys in the api_keys table are accepted' });
  const eventStore = await connectEventStore(config, endpoints.databaseUrl, logger);
  const { store } = eventStore;
  const api = await startApi(config, endpoints, eventStore, new Metrics({ defaultMetrics: true }), logger);
  return {
    stop: async () => {
      await api.stop();
      await store.close();
    },
  };
});
