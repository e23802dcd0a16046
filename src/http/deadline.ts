// REQUEST_TIMEOUT_MS as a deadline for the answer, not only for receiving
// the request (which is all node:http's requestTimeout covers). A request
// still unanswered then gets 503 `temporarily_unavailable` with Retry-After
// (src/http/edge.ts), whatever it is waiting for: a database that does not
// answer, a pool with no free connection. The work it started is left to
// finish or fail on its own timeouts; its late result is dropped (Koa ignores
// status and header changes once the response is sent).

/**
 * Settles when `work` does or when `ms` have passed, whichever comes first:
 * false when `work` finished in time, true when the deadline came first; a
 * rejection of `work` in time is passed on, a late one is ignored (never an
 * unhandled rejection).
 */
export function raceDeadline(work: Promise<unknown>, ms: number): Promise<boolean> {
  // One timer and one promise per request (this wraps every request).
  return new Promise<boolean>((resolve, reject) => {
    const timer = setTimeout(resolve, ms, true);
    work.then(
      () => {
        clearTimeout(timer);
        resolve(false);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
