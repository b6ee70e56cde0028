import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{main,preload,renderer,native-helpers,scripts,bench}/**/*.test.{ts,tsx}'],
    exclude: ['**/node_modules/**', 'dist/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests start real servers (nbdkit, qemu-nbd, our engine host); two cores
    // cannot run many of those at once without timing noise.
    maxWorkers: 2,
  },
});
