// Lint: typescript-eslint's type-checked rules over every TypeScript file (src, scripts, test).
// Formatting is Prettier's job (`npm run format`), C++ is clang-format's (`npm run lint:native`).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'bench-results/**', '**/*.js', '**/*.cjs', '**/*.mjs'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Unused names are compile errors already (tsconfig noUnusedLocals/Parameters); `_x` marks a
      // parameter an interface requires.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // An `async` method without `await` is how an implementation of a Promise-returning interface
      // (the memory stores, fakes) turns a throw into a rejection, as its contract says; dropping
      // `async` would make those throws synchronous.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests read untyped JSON answers from the daemon and the scripts and assert on their fields;
    // typing every answer would add casts, not safety. Promise and correctness rules stay on.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
