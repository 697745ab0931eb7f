/**
 * The fast tier: `npm run test:unit`. No global setup, so no PostgreSQL and no Temporal: the pure tests and those
 * that run on the in-memory event store, in seconds.
 *
 * Which test files need servers, by folder or name (the rule; `npm test` runs every file once, whatever its tier):
 * - no server: everything under test/domain/, test/application/, test/config/ and test/compose/ (static checks of the
 *   compose file), and any file named `*.unit.test.ts` (e.g. test/eventstore/in-memory-event-store.unit.test.ts,
 *   test/api/request-schemas.unit.test.ts);
 * - servers (the PostgreSQL and Temporal that jest.config.js's global setup starts): every other `*.test.ts`.
 * A file of the no-server kind that uses the event store takes it from test/support/unit-or-postgres-store.ts
 * (in memory here, PostgreSQL in `npm test`). In this tier the server addresses are unset (test/support/unit-tier.ts),
 * so a file that reaches for a server by mistake fails loudly.
 */
import base from './jest.config.js';

const { globalSetup: _setup, globalTeardown: _teardown, ...shared } = base;

/** @type {import('jest').Config} */
export default {
  ...shared,
  displayName: 'unit',
  testMatch: [
    '<rootDir>/test/domain/**/*.test.ts',
    '<rootDir>/test/application/**/*.test.ts',
    '<rootDir>/test/config/**/*.test.ts',
    '<rootDir>/test/compose/**/*.test.ts',
    '<rootDir>/test/**/*.unit.test.ts',
  ],
  setupFiles: ['<rootDir>/test/support/unit-tier.ts'],
  testTimeout: 30000,
};
