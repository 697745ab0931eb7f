import { loadConfigOrExit, type Config } from '../config/config';
import { createLogger, type Logger } from '../infra/logger';

/**
 * Runs one long-lived part of the service: validates configuration first (a bad value stops the
 * process with a message naming the variable), then stops cleanly on SIGINT/SIGTERM.
 */
export async function runService(
  name: string,
  start: (config: Config, logger: Logger) => Promise<{ stop(): Promise<void> }>,
): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config.LOG_LEVEL, { service: name });
  let running: { stop(): Promise<void> };
  try {
    running = await start(config, logger);
  } catch (error) {
    logger.log({ level: 'error', msg: `${name} failed to start`, error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log({ msg: `${name} stopping`, signal });
    const force = setTimeout(() => process.exit(1), 30_000);
    force.unref();
    await running.stop().catch((error: unknown) => logger.log({ level: 'error', msg: 'stop failed', error: String(error) }));
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

export function requireEndpoints(config: Config): { databaseUrl: string; temporalAddress: string } {
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is required (read models live in PostgreSQL)');
  if (!config.TEMPORAL_ADDRESS) throw new Error('TEMPORAL_ADDRESS is required (e.g. temporal:7233)');
  return { databaseUrl: config.DATABASE_URL, temporalAddress: config.TEMPORAL_ADDRESS };
}
