// ESLint flat config. Syntax-only (no type information) so `npm run lint` stays fast;
// formatting is Prettier's job (`prettier --check .` in `npm run lint`), hence
// eslint-config-prettier last, which turns off every rule that would fight it.
import { defineConfig, globalIgnores } from 'eslint/config';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';
import globals from 'globals';

export default defineConfig(
  globalIgnores(['node_modules/', 'dist/', 'dist.next-*/', 'coverage/', 'bench/results/', 'test/.tmp-*/', '.redis-test/']),

  js.configs.recommended,
  tseslint.configs.recommended,

  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    rules: {
      // Deliberate endless loops (`for (;;)` with a break/return inside).
      'no-constant-condition': ['error', { checkLoops: false }],
      // A leading underscore marks a parameter or binding kept for its position or documentation.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
      // `any` is used deliberately where the code handles foreign Koa objects (apps, routers,
      // middleware, contexts) by shape rather than by type. Kept as a warning rather than off so
      // that new uses stay visible in the output, without failing the lint.
      '@typescript-eslint/no-explicit-any': 'warn',
    },
  },

  {
    // Plain CommonJS scripts run by Node: the CLI shim, test fixtures, jest config.
    files: ['bin/**/*.js', 'test/fixtures/**/*.js', 'jest.config.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { ...globals.node },
    },
    rules: {
      // CommonJS files load their dependencies with require().
      '@typescript-eslint/no-require-imports': 'off',
    },
  },

  {
    // The dashboard page's script: a classic browser script, with uPlot loaded before it.
    files: ['server/dashboard/assets/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser, uPlot: 'readonly' } },
  },

  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module', globals: { ...globals.node } },
  },

  prettier,
);
