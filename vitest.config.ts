import { defineConfig } from 'vitest/config';

// Two projects: unit (no root, no network namespaces; seconds, anywhere) and system (root,
// TUN devices, namespaces, real wireguard-go; each test skips with its reason without them).
export default defineConfig({
  test: {
    // Integration tests create namespaces and daemons; keep them in separate processes.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The machine has 2 cores; the namespace tests are heavy.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'system', include: ['test/system/**/*.test.ts'] } },
    ],
  },
});
