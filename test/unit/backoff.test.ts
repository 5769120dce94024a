// Retry policy: what a run's status means, and when the next attempt is due.
import { retryDelayMs, verdictFor } from '../../worker/backoff';

test('2xx/3xx done, 4xx dead at once, 5xx retried while attempts remain', () => {
  expect(verdictFor(200, 1, 5)).toBe('done');
  expect(verdictFor(302, 1, 5)).toBe('done');
  expect(verdictFor(404, 1, 5)).toBe('dead');
  expect(verdictFor(500, 4, 5)).toBe('retry');
  expect(verdictFor(503, 5, 5)).toBe('dead');
});

test('the delay doubles each attempt, with half of it random, capped at an hour', () => {
  expect(retryDelayMs(1000, 1, () => 0)).toBe(500);
  expect(retryDelayMs(1000, 1, () => 1)).toBe(1000);
  expect(retryDelayMs(1000, 3, () => 0)).toBe(2000);
  expect(retryDelayMs(1000, 3, () => 1)).toBe(4000);
  expect(retryDelayMs(1000, 40, () => 1)).toBe(3_600_000);
});
