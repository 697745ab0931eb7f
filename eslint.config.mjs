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
