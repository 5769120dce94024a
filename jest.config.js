/** Tests run TypeScript sources through ts-jest; tests that spawn processes use the built dist/ (npm test builds first). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  setupFiles: ['<rootDir>/test/setup-env.ts'],
  testTimeout: 60000,
  maxWorkers: 2,
  // A safety net: a leaked connection must not hang CI for 90 minutes.
  forceExit: true,
};
