// The deployment examples cannot be run here (no container engine, no
// cluster); these checks keep them consistent with the code they ship.
import { existsSync, readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ENV_VARIABLES } from '../../src/config/config.ts';

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
    for (const n of ['NODE_ENV', 'DATABASE_URL', 'ISSUER', 'COOKIE_SECRETS', 'KEY_ENCRYPTION_KEY']) expect(names).toContain(n);
  });
  it('has a disruption budget selecting the pods', () => {
    const pdb = docs.find((d) => d.kind === 'PodDisruptionBudget')!;
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
  });
});
