// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'src/generated/', 'coverage/', '.data/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': ['error', { allow: ['error', 'warn'] }],
    },
  },
  {
    // The CLI, the admin API and apply change things only through the domains'
    // write functions (src/<domain>/writes.ts: the change, its authority check
    // and its audit event in one transaction), never through the stores
    // underneath or the audit table.
    files: ['src/cli/**', 'src/admin/**', 'src/declarative/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...[
              ['clients/store.ts', ['createClient', 'updateClient', 'deleteClient', 'rotateClientSecret']],
              ['resources/store.ts', ['createResource', 'updateResource', 'deleteResource']],
              ['resources/roles.ts', ['createRole', 'updateRole', 'deleteRole', 'addRoleToAccount', 'removeRoleFromAccount']],
              ['accounts/store.ts', ['createAccount', 'updateAccount', 'setDisabled', 'setPassword', 'deleteAccount']],
              ['accounts/mfa.ts', ['resetMfa', 'removeTotp', 'replaceRecoveryCodes']],
              ['accounts/passkeys.ts', ['insertPasskey', 'renamePasskey', 'deletePasskey']],
              ['keys/store.ts', ['rotateSigningKey']],
              ['keys/index.ts', ['rotateSigningKey']],
              ['audit/audit.ts', ['recordAudit', 'auditChange']],
              ['access/store.ts', ['putPolicy', 'deletePolicy']],
            ].map(([file, importNames]) => ({
              group: [`**/${file}`],
              importNames,
              message: 'change things through the domain write functions (src/<domain>/writes.ts), which check the actor and audit in the same transaction',
            })),
          ],
        },
      ],
    },
  },
  {
    // the pages' small same-origin scripts run in the browser
    files: ['views/static/**/*.js'],
    languageOptions: { globals: { window: 'readonly', document: 'readonly', navigator: 'readonly', Blob: 'readonly' } },
  },
  {
    files: ['test/**', 'bench/**', 'scripts/**', 'examples/**', 'src/cli/**'],
    rules: { 'no-console': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
