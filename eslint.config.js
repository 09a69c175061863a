// Lint: the recommended rules of eslint and typescript-eslint, plus a few house rules.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'data/**', 'tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
      'prefer-const': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // Type-aware rules for the daemon's code: a promise nobody awaits or handles is a crash waiting for
    // a rejection (Node exits on an unhandled one). Background work goes through BackgroundTasks.
    files: ['src/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false }],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // The storage engine and the hint store run inside the whole-cluster simulator (src/sim/): every file
    // access goes through an injected FsIo (src/storage/fsio.ts) and every timer, time read and random
    // draw through an injected Clock (src/clock.ts), never node:fs or the globals directly.
    files: ['src/storage/**/*.ts', 'src/cluster/hints.ts'],
    ignores: ['src/storage/fsio.ts', 'src/storage/liveness.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['fs', 'node:fs', 'fs/promises', 'node:fs/promises'].map((name) => ({
            name,
            message: 'Go through the injected FsIo (src/storage/fsio.ts), so the simulator can give a simulated disk.',
          })),
        },
      ],
    },
  },
  {
    files: ['src/storage/**/*.ts', 'src/cluster/hints.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        ...['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate'].map((name) => ({
          name,
          message: 'Use the injected Clock (src/clock.ts): the simulator runs these on simulated time.',
        })),
      ],
      'no-restricted-properties': [
        'error',
        ...[
          ['Date', 'now'],
          ['Math', 'random'],
          ['performance', 'now'],
          ['process', 'hrtime'],
        ].map(([object, property]) => ({ object, property, message: 'Use the injected Clock (src/clock.ts).' })),
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'Use the injected Clock (src/clock.ts).' },
      ],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
