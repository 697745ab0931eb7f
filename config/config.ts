import { z } from 'zod';
import { isTimeZone } from '../domain/business-calendar';
import { parseDuration } from '../domain/lateness';

/**
 * All configuration, read from environment variables and validated once at start.
 * A bad value stops the process with a message naming the variable and what is allowed.
 */

const port = (name: string, fallback: number) =>
  z.coerce
    .number({ error: `${name} must be a TCP port number (1-65535)` })
    .int({ error: `${name} must be a TCP port number (1-65535)` })
    .min(1, { error: `${name} must be a TCP port number (1-65535)` })
    .max(65535, { error: `${name} must be a TCP port number (1-65535)` })
    .default(fallback);

const positiveInt = (name: string, fallback: number, max = 1_000_000) =>
  z.coerce
    .number({ error: `${name} must be a whole number between 1 and ${max}` })
    .int({ error: `${name} must be a whole number between 1 and ${max}` })
    .min(1, { error: `${name} must be a whole number between 1 and ${max}` })
    .max(max, { error: `${name} must be a whole number between 1 and ${max}` })
    .default(fallback);

const url = (name: string, protocols: readonly string[]) =>
  z
    .string()
    .refine(
      (v) => {
        try {
          return protocols.includes(new URL(v).protocol);
        } catch {
          return false; // not a URL: refused with the field named
        }
      },
      { error: `${name} must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
    )
    .optional();

const hostPort = (name: string) =>
  z
    .string()
    .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, { error: `${name} must be host:port, e.g. localhost:7233` })
    .optional();

/** A duration: `5d`, `36h`, `90m`, `30s` or ISO 8601 (`P5D`, `PT36H`), as milliseconds. */
const duration = (name: string, fallback: string, min = 1) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === undefined || ms < min) {
        ctx.addIssue({
          code: 'custom',
          message: `${name} must be a duration such as 5d, 36h, 90m, 30s or P5D${min > 0 ? ' (more than zero)' : ''}`,
        });
        return z.NEVER;
      }
      return ms;
    });

const envSchema = z.object({
  EVENT_STORE: z.enum(['postgres', 'esdb'], { error: "EVENT_STORE must be 'postgres' or 'esdb'" }).default('postgres'),
  DATABASE_URL: url('DATABASE_URL', ['postgres:', 'postgresql:']),
  ESDB_URL: url('ESDB_URL', ['esdb:', 'esdb+discover:']),
  TEMPORAL_ADDRESS: hostPort('TEMPORAL_ADDRESS'),
  TEMPORAL_NAMESPACE: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/, { error: 'TEMPORAL_NAMESPACE must be a Temporal namespace name (letters, digits, . _ -)' })
    .default('default'),
  TASK_QUEUE: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/, { error: 'TASK_QUEUE must be letters, digits, . _ - (1-255 characters)' })
    .default('transfers'),
  PORT: port('PORT', 3000),
  TEMPORAL_PORT: port('TEMPORAL_PORT', 7233),
  TEMPORAL_UI_PORT: port('TEMPORAL_UI_PORT', 8233),
  /** The Temporal Web UI, for the console's links to a transfer's saga (the local stack: its dev server's UI). */
  TEMPORAL_UI_URL: url('TEMPORAL_UI_URL', ['http:', 'https:']),
  POSTGRES_PORT: port('POSTGRES_PORT', 54329),
  DATA_DIR: z.string().min(1, { error: 'DATA_DIR must be a directory path' }).default('.data'),
  TEMPORAL_CLI_PATH: z.string().min(1, { error: 'TEMPORAL_CLI_PATH must be a path to the temporal binary' }).optional(),
  SNAPSHOT_EVERY: positiveInt('SNAPSHOT_EVERY', 50, 100_000),
  LOG_LEVEL: z
    .enum(['debug', 'info', 'warn', 'error'], { error: "LOG_LEVEL must be one of 'debug', 'info', 'warn', 'error'" })
    .default('info'),
  WORKER_MAX_CONCURRENT_ACTIVITIES: positiveInt('WORKER_MAX_CONCURRENT_ACTIVITIES', 100, 10_000),
  WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: positiveInt('WORKER_MAX_CONCURRENT_WORKFLOW_TASKS', 40, 10_000),
  PG_POOL_SIZE: positiveInt('PG_POOL_SIZE', 20, 1000),
  RECONCILE_EVERY_SECONDS: positiveInt('RECONCILE_EVERY_SECONDS', 60, 86_400),
  /** The bootstrap operator key (a bearer secret). Never echoed in a message. */
  OPERATOR_API_KEY: z
    .string()
    .min(32, { error: 'OPERATOR_API_KEY must be at least 32 characters (e.g. openssl rand -base64 32)' })
    .max(512, { error: 'OPERATOR_API_KEY must be at most 512 characters' })
    .regex(/^[\x21-\x7E]+$/, { error: 'OPERATOR_API_KEY must be printable ASCII without spaces (it is sent in an HTTP header)' })
    .optional(),
  RATE_LIMIT_PER_MINUTE: positiveInt('RATE_LIMIT_PER_MINUTE', 600, 1_000_000_000),
  /** Waits in progress per API key (?minPosition reads that wait, ?wait long polls), per API process; beyond -> 429. */
  MAX_CONCURRENT_WAITS_PER_KEY: positiveInt('MAX_CONCURRENT_WAITS_PER_KEY', 16, 1_000_000),
  METRICS_PUBLIC: z
    .enum(['true', 'false'], { error: "METRICS_PUBLIC must be 'true' or 'false'" })
    .default('false')
    .transform((v) => v === 'true'),
  /** Business time: the zone of the business days (closing the books, statements). */
  BOOKS_TIMEZONE: z
    .string()
    .refine(isTimeZone, { error: 'BOOKS_TIMEZONE must be an IANA time zone, e.g. UTC or Europe/Berlin' })
    .default('UTC'),
  /** Business time: a late record older than this is refused (422 too-late) and held as an exception. */
  MAX_LATENESS: duration('MAX_LATENESS', '5d'),
  /** Business time: how far in the future an occurredAt may lie. */
  MAX_CLOCK_SKEW: duration('MAX_CLOCK_SKEW', '2m', 0),
  /**
   * The most items POST /transfer-batches takes in one batch (issue 26). At most 4,000: the accepted batch is one event,
   * and EventStoreDB refuses a single append over 1 MiB by default (4,000 items of the longest ids stay under it).
   */
  TRANSFER_BATCH_MAX_ITEMS: positiveInt('TRANSFER_BATCH_MAX_ITEMS', 1_000, 4_000),
});

export type Config = z.infer<typeof envSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p.variable}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses configuration from an environment (default: process.env). Empty strings count as unset. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const relevant: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') relevant[key] = value;
  }
  const parsed = envSchema.safeParse(relevant);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const variable = String(issue.path[0] ?? 'environment');
        // Every message of the schema starts with its variable's name; make sure of it.
        const message = issue.message.includes(variable) ? issue.message : `${variable}: ${issue.message}`;
        return { variable, message };
      }),
    );
  }
  const config = parsed.data;
  if (config.EVENT_STORE === 'esdb' && !config.ESDB_URL) {
    throw new ConfigError([
      { variable: 'ESDB_URL', message: "ESDB_URL is required when EVENT_STORE is 'esdb' (e.g. esdb://localhost:2113?tls=false)" },
    ]);
  }
  return config;
}

/** For entry points: a bad configuration prints the problems (each naming its variable) and exits with status 2. */
export function loadConfigOrExit(env: Record<string, string | undefined> = process.env): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

/** Every variable the service reads, for documentation and help output. */
export const CONFIG_VARIABLES = Object.keys(envSchema.shape);
