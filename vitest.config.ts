import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    // Engine tests train real (small) networks on the portable backend: give them room.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // tfjs keeps one global engine per process; files run in separate forks.
    pool: 'forks',
    fileParallelism: true,
  },
});
