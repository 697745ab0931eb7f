/** Structured JSON logs, one object per line, with the request's correlation id where there is one. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  log(entry: { level?: LogLevel; msg: string } & Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(
  level: LogLevel = 'info',
  fields: Record<string, unknown> = {},
  write: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): Logger {
  return {
    log(entry) {
      const entryLevel = entry.level ?? 'info';
      if (ORDER[entryLevel] < ORDER[level]) return;
      write(
        JSON.stringify({ time: new Date().toISOString(), ...fields, ...entry, level: entryLevel }, (_k, v) =>
          typeof v === 'bigint' ? v.toString() : v,
        ),
      );
    },
    child(more) {
      return createLogger(level, { ...fields, ...more }, write);
    },
  };
}

export const silentLogger: Logger = { log: () => undefined, child: () => silentLogger };
