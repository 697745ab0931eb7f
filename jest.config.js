/** Jest runs TypeScript through SWC (fast, no type check; `npm run typecheck` does that). */
/** Every test file, once, with PostgreSQL and Temporal. The fast tier without servers (`npm run test:unit`) and the rule for which files need servers: jest.unit.config.mjs. */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }] },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 120000,
  verbose: true,
};
