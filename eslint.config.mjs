import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.data/', 'coverage/', 'jest.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no I/O, clocks or randomness of its own.
    files: ['workflows/**/*.ts'],
    rules: {
      // Type-only imports (e.g. the activities' signatures) are erased and allowed.
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                'pg',
                'fs',
                'node:*',
                'http',
                'net',
                'crypto',
                '@eventstore/*',
                '../activities/*',
                '../eventstore/*',
                '../application/*',
                '../api/*',
                '../domain/deterministic-id',
              ],
              allowTypeImports: true,
            },
          ],
        },
      ],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random' }, { object: 'Date', property: 'now' }],
    },
  },
  {
    // State and indexes keyed by outside input (ids that clients choose) are never plain objects: a plain object answers
    // `constructor`, `toString` or `__proto__` from its prototype (issue 23, item 3). Use a Map, or a null-prototype object
    // read through own properties only (Object.hasOwn); a Record<string, ...> or an index signature here needs an
    // eslint-disable comment that says why its keys are not outside input, or how every read is an own-property read.
    files: ['domain/**/*.ts', 'application/**/*.ts', 'activities/**/*.ts', 'workflows/**/*.ts', 'temporal/**/*.ts', 'stores/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "TSTypeReference[typeName.name='Record'] > TSTypeParameterInstantiation > TSStringKeyword:first-child",
          message:
            'A Record<string, ...> keyed by outside input finds inherited names (constructor, __proto__): use a Map, or say why not (eslint-disable with a reason).',
        },
        {
          selector: 'TSIndexSignature',
          message:
            'An index signature keyed by outside input finds inherited names (constructor, __proto__): use a Map, or say why not (eslint-disable with a reason).',
        },
      ],
    },
  },
  {
    // The domain is pure: deciders and folds import nothing with I/O.
    files: ['domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            'pg',
            'fs',
            'http',
            'express',
            '@temporalio/*',
            '@eventstore/*',
            '../eventstore/*',
            '../activities/*',
            '../api/*',
            '../projections/*',
          ],
        },
      ],
    },
  },
);
