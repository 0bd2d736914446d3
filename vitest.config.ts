import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/unit/**/*.test.ts', 'tests/integration/**/*.test.ts', 'tests/node-gpu/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    env: { ERGON_LOG: 'silent' },
  },
});
