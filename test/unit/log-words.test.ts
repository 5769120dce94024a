// ioredis' wording of a missing connection ("Stream isn't writeable and enableOfflineQueue
// options is false") put in ours wherever a log line quotes it.
import { inOurWords, wordedArgs } from '../../shared/log';

test("ioredis' texts become ours; other text is left as it is", () => {
  expect(inOurWords("worker paused, redis unavailable (Stream isn't writeable and enableOfflineQueue options is false)")).toBe(
    'worker paused, redis unavailable (Redis connection not ready)',
  );
  expect(inOurWords("Cluster isn't ready and enableOfflineQueue options is false")).toBe('Redis Cluster connection not ready');
  expect(inOurWords('Connection is closed.')).toBe('Redis connection closed');
  expect(inOurWords('Reached the max retries per request limit (which is 0). Refer to "maxRetriesPerRequest" option for details.')).toBe(
    'the connection to Redis dropped before Redis answered',
  );
  expect(inOurWords('connect ECONNREFUSED 127.0.0.1:6390')).toBe('connect ECONNREFUSED 127.0.0.1:6390');
});

test("a log call's message, err.message and error are put in our words; the caller's object is copied, not changed", () => {
  const said = "Stream isn't writeable and enableOfflineQueue options is false";
  const fields = { event: 'chore_failed', chore: 'recover', err: { message: said } };
  expect(wordedArgs([fields, `recover failed: ${said}`])).toEqual([
    { event: 'chore_failed', chore: 'recover', err: { message: 'Redis connection not ready' } },
    'recover failed: Redis connection not ready',
  ]);
  expect(fields.err.message).toBe(said);
  expect(wordedArgs([{ event: 'start_failed', error: 'Connection is closed.' }, 'Connection is closed.'])).toEqual([
    { event: 'start_failed', error: 'Redis connection closed' },
    'Redis connection closed',
  ]);
  const plain = { event: 'ready', port: 1 };
  expect(wordedArgs([plain, 'ready'])[0]).toBe(plain);
});
