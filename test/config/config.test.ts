import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../config/config';

describe('configuration', () => {
  test('defaults describe the local stack', () => {
    expect(loadConfig({})).toMatchObject({
      EVENT_STORE: 'postgres',
      PORT: 3000,
      TEMPORAL_NAMESPACE: 'default',
      TASK_QUEUE: 'transfers',
      TEMPORAL_UI_PORT: 8233,
      SNAPSHOT_EVERY: 50,
    });
  });

  test('good values are accepted and coerced', () => {
    const config = loadConfig({
      EVENT_STORE: 'esdb',
      ESDB_URL: 'esdb://eventstore:2113?tls=false',
      DATABASE_URL: 'postgres://u:p@db:5432/transfers',
      TEMPORAL_ADDRESS: 'temporal:7233',
      PORT: '8080',
      SNAPSHOT_EVERY: '10',
    });
    expect(config).toMatchObject({ EVENT_STORE: 'esdb', PORT: 8080, SNAPSHOT_EVERY: 10, TEMPORAL_ADDRESS: 'temporal:7233' });
  });

  const bad: [string, Record<string, string>][] = [
    ['EVENT_STORE', { EVENT_STORE: 'mysql' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://localhost/db' }],
    ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
    ['ESDB_URL', { ESDB_URL: 'http://localhost:2113' }],
    ['ESDB_URL', { EVENT_STORE: 'esdb' }],
    ['TEMPORAL_ADDRESS', { TEMPORAL_ADDRESS: 'temporal' }],
    ['TEMPORAL_ADDRESS', { TEMPORAL_ADDRESS: 'http://temporal:7233' }],
    ['TEMPORAL_NAMESPACE', { TEMPORAL_NAMESPACE: 'has spaces' }],
    ['TASK_QUEUE', { TASK_QUEUE: 'q/with/slashes' }],
    ['PORT', { PORT: 'abc' }],
    ['PORT', { PORT: '70000' }],
    ['PORT', { PORT: '0' }],
    ['PORT', { PORT: '80.5' }],
    ['TEMPORAL_PORT', { TEMPORAL_PORT: '-1' }],
    ['TEMPORAL_UI_PORT', { TEMPORAL_UI_PORT: 'ui' }],
    ['TEMPORAL_UI_URL', { TEMPORAL_UI_URL: 'localhost:8233' }],
    ['TEMPORAL_UI_URL', { TEMPORAL_UI_URL: 'javascript:alert(1)' }],
    ['POSTGRES_PORT', { POSTGRES_PORT: '99999' }],
    ['SNAPSHOT_EVERY', { SNAPSHOT_EVERY: '0' }],
    ['SNAPSHOT_EVERY', { SNAPSHOT_EVERY: 'often' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'verbose' }],
    ['WORKER_MAX_CONCURRENT_ACTIVITIES', { WORKER_MAX_CONCURRENT_ACTIVITIES: '0' }],
    ['WORKER_MAX_CONCURRENT_WORKFLOW_TASKS', { WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: 'many' }],
    ['PG_POOL_SIZE', { PG_POOL_SIZE: '-5' }],
    ['RECONCILE_EVERY_SECONDS', { RECONCILE_EVERY_SECONDS: '0' }],
    ['OPERATOR_API_KEY', { OPERATOR_API_KEY: 'too-short-for-a-key' }],
    ['OPERATOR_API_KEY', { OPERATOR_API_KEY: 'has spaces in it, which no HTTP header value keeps' }],
    ['RATE_LIMIT_PER_MINUTE', { RATE_LIMIT_PER_MINUTE: '0' }],
    ['RATE_LIMIT_PER_MINUTE', { RATE_LIMIT_PER_MINUTE: 'lots' }],
    ['MAX_CONCURRENT_WAITS_PER_KEY', { MAX_CONCURRENT_WAITS_PER_KEY: '0' }],
    ['METRICS_PUBLIC', { METRICS_PUBLIC: 'yes' }],
    ['BOOKS_TIMEZONE', { BOOKS_TIMEZONE: 'Mars/Olympus_Mons' }],
    ['MAX_LATENESS', { MAX_LATENESS: 'five days' }],
    ['MAX_LATENESS', { MAX_LATENESS: '0d' }],
    ['MAX_CLOCK_SKEW', { MAX_CLOCK_SKEW: '-1m' }],
    ['TRANSFER_BATCH_MAX_ITEMS', { TRANSFER_BATCH_MAX_ITEMS: '0' }],
    ['TRANSFER_BATCH_MAX_ITEMS', { TRANSFER_BATCH_MAX_ITEMS: '4001' }],
  ];
  test.each(bad)('%s is refused with its name in the message (%o)', (variable, env) => {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.variable)).toContain(variable);
    expect((error as ConfigError).message).toContain(variable);
  });

  test('TRANSFER_BATCH_MAX_ITEMS: 1000 by default, configurable up to 4000', () => {
    expect(loadConfig({}).TRANSFER_BATCH_MAX_ITEMS).toBe(1_000);
    expect(loadConfig({ TRANSFER_BATCH_MAX_ITEMS: '4000' }).TRANSFER_BATCH_MAX_ITEMS).toBe(4_000);
  });

  test('every variable of the schema is refused when malformed, or documented as free text', () => {
    const covered = new Set(bad.map(([v]) => v));
    const freeText = ['DATA_DIR', 'TEMPORAL_CLI_PATH'];
    expect(CONFIG_VARIABLES.filter((v) => !covered.has(v) && !freeText.includes(v))).toEqual([]);
  });

  test('business time: BOOKS_TIMEZONE (UTC), MAX_LATENESS (5 days), MAX_CLOCK_SKEW (2 minutes), as milliseconds', () => {
    expect(loadConfig({})).toMatchObject({ BOOKS_TIMEZONE: 'UTC', MAX_LATENESS: 5 * 86_400_000, MAX_CLOCK_SKEW: 120_000 });
    expect(loadConfig({ BOOKS_TIMEZONE: 'Europe/Berlin', MAX_LATENESS: 'P2DT12H', MAX_CLOCK_SKEW: '0s' })).toMatchObject({
      BOOKS_TIMEZONE: 'Europe/Berlin',
      MAX_LATENESS: 60 * 3_600_000,
      MAX_CLOCK_SKEW: 0,
    });
  });

  test('access control: OPERATOR_API_KEY (32+ characters), RATE_LIMIT_PER_MINUTE (600), METRICS_PUBLIC (false)', () => {
    const defaults = loadConfig({});
    expect(defaults.OPERATOR_API_KEY).toBeUndefined();
    expect(defaults).toMatchObject({ RATE_LIMIT_PER_MINUTE: 600, METRICS_PUBLIC: false });
    const key = 'k'.repeat(32);
    expect(loadConfig({ OPERATOR_API_KEY: key, RATE_LIMIT_PER_MINUTE: '60', METRICS_PUBLIC: 'true' })).toMatchObject({
      OPERATOR_API_KEY: key,
      RATE_LIMIT_PER_MINUTE: 60,
      METRICS_PUBLIC: true,
    });
  });

  test('a refused OPERATOR_API_KEY is never echoed in the message', () => {
    const secret = 'short-secret-9f2c';
    expect(() => loadConfig({ OPERATOR_API_KEY: secret })).toThrow(ConfigError);
    try {
      loadConfig({ OPERATOR_API_KEY: secret });
    } catch (error) {
      expect(JSON.stringify((error as ConfigError).problems)).not.toContain(secret);
      expect((error as ConfigError).message).not.toContain(secret);
    }
  });

  test('several problems are reported together', () => {
    expect(() => loadConfig({ PORT: 'x', LOG_LEVEL: 'loud' })).toThrow(/PORT[\s\S]*LOG_LEVEL|LOG_LEVEL[\s\S]*PORT/);
  });
});
