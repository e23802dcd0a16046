// Metrics across node:cluster workers: a /metrics request lands on one
// worker, which asks the primary; the primary collects every worker's
// registry (prom-client's AggregatorRegistry) and answers with the sum.
import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import client from 'prom-client';
import type { Metrics } from './metrics.ts';

const ASK = 'gatehouse:metrics:ask';
const ANSWER = 'gatehouse:metrics:answer';

interface Ask {
  type: typeof ASK;
  id: string;
}
interface Answer {
  type: typeof ANSWER;
  id: string;
  text?: string;
  error?: string;
}

/** In the primary: answer workers' requests for cluster-wide metrics. */
export function serveClusterMetrics(): void {
  const aggregator = new client.AggregatorRegistry();
  cluster.on('message', (worker: Worker, msg: unknown) => {
    const m = msg as Partial<Ask>;
    const id = m?.id;
    if (m?.type !== ASK || typeof id !== 'string') return;
    aggregator.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ type: ANSWER, id, text } satisfies Answer),
      (err: Error) => worker.isConnected() && worker.send({ type: ANSWER, id, error: err.message } satisfies Answer),
    );
  });
}

/**
 * In a worker: make this worker's registry the one the primary collects, and
 * return the function that fetches the cluster-wide text (falling back to
 * this worker's own metrics if the primary does not answer in time).
 */
export function clusterMetricsForWorker(metrics: Metrics, timeoutMs = 3_000): () => Promise<string> {
  client.AggregatorRegistry.setRegistries([metrics.registry]);
  // Constructing one installs prom-client's worker-side listener that answers
  // the primary's collection requests.
  new client.AggregatorRegistry();
  const pending = new Map<string, (a: Answer) => void>();
  process.on('message', (msg: unknown) => {
    const a = msg as Partial<Answer>;
    if (a?.type === ANSWER && typeof a.id === 'string') pending.get(a.id)?.(a as Answer);
  });
  return () =>
    new Promise<string>((resolve) => {
      const id = randomUUID();
      const fallback = () => {
        pending.delete(id);
        metrics.registry.metrics().then(resolve, () => resolve(''));
      };
      const timer = setTimeout(fallback, timeoutMs);
      pending.set(id, (a) => {
        clearTimeout(timer);
        pending.delete(id);
        if (a.text !== undefined) resolve(a.text);
        else fallback();
      });
      process.send?.({ type: ASK, id } satisfies Ask);
    });
}
