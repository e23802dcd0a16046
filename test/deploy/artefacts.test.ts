// The deployment examples cannot be run here (no container engine, no
// cluster); these checks keep them consistent with the code they ship.
import { existsSync, readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ConfigError, ENV_VARIABLES, loadConfig } from '../../src/config/config.ts';

const read = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  it('is multi-stage and runs as a non-root user', () => {
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/^USER 10001:10001$/m);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
  });
  it('copies what the runtime needs and starts the gatehouse binary', () => {
    for (const dir of ['dist', 'bin', 'prisma', 'views', 'node_modules']) expect(dockerfile).toContain(`COPY --from=build /app/${dir} ./${dir}`);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "bin\/gatehouse\.js"\]$/m);
    expect(existsSync(new URL('../../bin/gatehouse.js', import.meta.url))).toBe(true);
  });
});

interface Container {
  env: { name: string }[];
  livenessProbe: { httpGet: { path: string } };
  readinessProbe: { httpGet: { path: string } };
  securityContext: { readOnlyRootFilesystem: boolean };
}
/** The parts of the manifests these checks read. */
interface K8sObject {
  kind: string;
  stringData: Record<string, string>;
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: { spec: { containers: Container[]; securityContext: { runAsUser: number }; terminationGracePeriodSeconds: number } };
  };
}

describe('Kubernetes example', () => {
  const docs = parseAllDocuments(read('deploy/kubernetes/gatehouse.yaml')).map((d) => d.toJS() as K8sObject);
  const kinds = docs.map((d) => d.kind);
  const deployment = docs.find((d) => d.kind === 'Deployment')!;
  const container = deployment.spec.template.spec.containers[0]!;

  it('parses and has the expected objects', () => {
    expect(kinds).toEqual(['Secret', 'Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler']);
  });
  it('probes the health endpoints Gatehouse serves', () => {
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
  });
  it('runs as the image user, read-only, with a grace period longer than the drain', () => {
    expect(deployment.spec.template.spec.securityContext.runAsUser).toBe(10001);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(25);
  });
  it('sets only variables Gatehouse knows, and every production requirement', () => {
    const secret = docs.find((d) => d.kind === 'Secret')!;
    const names = [...container.env.map((e) => e.name), ...Object.keys(secret.stringData)];
    for (const n of names) expect(ENV_VARIABLES).toContain(n);
    for (const n of ['NODE_ENV', 'DATABASE_URL', 'ISSUER', 'COOKIE_SECRETS', 'KEY_ENCRYPTION_KEY', 'METRICS_TOKEN']) expect(names).toContain(n);
  });
  it('its settings are valid once the placeholders are replaced, and the placeholders themselves are refused', () => {
    const secret = docs.find((d) => d.kind === 'Secret')!;
    const plain = Object.fromEntries((container.env as unknown as { name: string; value: string }[]).map((e) => [e.name, e.value]));
    const real = {
      DATABASE_URL: 'postgresql://gatehouse@postgres.internal:5432/gatehouse',
      COOKIE_SECRETS: randomBytes(32).toString('base64'),
      KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      METRICS_TOKEN: randomBytes(32).toString('hex'),
    };
    const config = loadConfig({ ...plain, ...real });
    expect(config.production).toBe(true);
    expect(config.trustProxy).toEqual({ mode: 'hops', hops: 1 });
    expect(config.host).toBe('0.0.0.0');
    expect(() => loadConfig({ ...plain, ...secret.stringData })).toThrow(ConfigError);
  });
  it('has a disruption budget selecting the pods', () => {
    const pdb = docs.find((d) => d.kind === 'PodDisruptionBudget')!;
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
  });
});
