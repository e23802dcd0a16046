// Policies as code: rules over the access map that every write must keep.
// Pure: a policy is data (the apply file's `policies` entries, stored in the
// access_policies table), evaluated against a Model.
//
// Kinds (docs/security-model.md shows each in YAML):
//   only-clients             {scope, api?, clients}  only these clients reach the scope (no person either)
//   only-people-and-clients  {scope, api?, clients}  people (any role) and these clients only
//   max-chain                {length}                no token-exchange chain longer than `length`
//   max-sensitive-per-client {count}                 no client reaches more than `count` sensitive scopes
//   sensitive-requires-roles {}                      every API with a sensitive scope requires roles
// `api` narrows a scope name that several APIs offer; without it the rule
// holds for that scope on every API.
import { z } from 'zod';
import { ValidationError } from '../kernel/errors.ts';
import { ClientId, ScopeToken, assertPlainInput, checkResourceIdentifier, checked, parseWith } from '../kernel/validation.ts';
import { accessMap, byText, longestChain, pathText, reachOfClient, type Model, type Reach } from './model.ts';

export const POLICY_KINDS = ['only-clients', 'only-people-and-clients', 'max-chain', 'max-sensitive-per-client', 'sensitive-requires-roles'] as const;
export type PolicyKind = (typeof POLICY_KINDS)[number];

export const POLICY_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

const name = checked((v) => (POLICY_NAME.test(v) ? undefined : `'${v}' is not a valid policy name (1-64 letters, digits, . _ : -)`), 64);
const clients = z.array(ClientId).max(100, 'at most 100 clients');
const api = checked(checkResourceIdentifier);

export const Policy = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ name, kind: z.literal('only-clients'), scope: ScopeToken, api: api.optional(), clients }),
    z.strictObject({ name, kind: z.literal('only-people-and-clients'), scope: ScopeToken, api: api.optional(), clients }),
    z.strictObject({ name, kind: z.literal('max-chain'), length: z.number().int().min(0).max(100) }),
    z.strictObject({ name, kind: z.literal('max-sensitive-per-client'), count: z.number().int().min(0).max(100_000) }),
    z.strictObject({ name, kind: z.literal('sensitive-requires-roles') }),
  ],
);
export type Policy = z.output<typeof Policy>;

/** A policy from untrusted input (apply file, admin API): ValidationError naming the field. */
export function parsePolicy(input: unknown): Policy {
  assertPlainInput(input);
  if (!(POLICY_KINDS as readonly unknown[]).includes(input.kind)) {
    throw new ValidationError('kind', input.kind === undefined ? 'is required' : `must be one of: ${POLICY_KINDS.join(', ')}`);
  }
  return parseWith(Policy, input);
}

export interface Violation {
  policy: string;
  kind: PolicyKind;
  /** one line: what breaks the rule */
  message: string;
  /** the offending path, when there is one (pathText) */
  path?: string;
}

const principalText = (p: string) => (p === 'people' ? 'a person with no role' : p.startsWith('role:') ? `a person with role ${p.slice(5)}` : p.slice(7));

function reachViolation(p: Policy, r: Reach): Violation {
  return {
    policy: p.name,
    kind: p.kind,
    message: `${principalText(r.principal)} reaches ${r.scope} on ${r.api}`,
    path: pathText(r.path),
  };
}

/** Every violation of the policies in the model, sorted by policy name (one per offending principal and API). */
export function evaluatePolicies(m: Model, policies: readonly Policy[], map?: Reach[]): Violation[] {
  const out: Violation[] = [];
  let all = map;
  const whole = () => (all ??= accessMap(m));
  for (const p of [...policies].sort((a, b) => byText(a.name, b.name))) {
    switch (p.kind) {
      case 'only-clients':
      case 'only-people-and-clients': {
        const allowed = new Set(p.clients.map((c) => `client:${c}`));
        const seen = new Set<string>();
        for (const r of whole()) {
          if (r.scope !== p.scope || (p.api !== undefined && r.api !== p.api)) continue;
          if (allowed.has(r.principal)) continue;
          if (p.kind === 'only-people-and-clients' && !r.principal.startsWith('client:')) continue;
          const k = `${r.principal}\u0000${r.api}`;
          if (seen.has(k)) continue;
          seen.add(k);
          out.push(reachViolation(p, r));
        }
        break;
      }
      case 'max-chain': {
        const chain = longestChain(m, { moreThan: p.length });
        if (chain.length > p.length) {
          out.push({ policy: p.name, kind: p.kind, message: `a token-exchange chain of length ${chain.length} exists (at most ${p.length} allowed)`, path: pathText(chain.path) });
        }
        break;
      }
      case 'max-sensitive-per-client': {
        const sensitiveOf = new Map<string, Reach[]>();
        if (all) {
          for (const r of all) {
            if (!r.sensitive || !r.principal.startsWith('client:')) continue;
            const list = sensitiveOf.get(r.principal);
            if (list) list.push(r);
            else sensitiveOf.set(r.principal, [r]);
          }
        }
        for (const id of m.clientIds) {
          const reach = all ? (sensitiveOf.get(`client:${id}`) ?? []) : reachOfClient(m, id).filter((r) => r.sensitive);
          if (reach.length > p.count) {
            const listed = reach.map((r) => `${r.scope} on ${r.api}`);
            out.push({ policy: p.name, kind: p.kind, message: `${id} reaches ${reach.length} sensitive scopes (at most ${p.count} allowed): ${listed.join(', ')}` });
          }
        }
        break;
      }
      case 'sensitive-requires-roles': {
        for (const a of [...m.apis.values()].sort((x, y) => byText(x.identifier, y.identifier))) {
          const sensitive = (a.sensitiveScopes ?? []).filter((s) => a.scopes.includes(s));
          if (sensitive.length > 0 && !a.requireRoles) {
            out.push({ policy: p.name, kind: p.kind, message: `${a.identifier} has sensitive scopes (${sensitive.join(' ')}) but does not require roles` });
          }
        }
        break;
      }
    }
  }
  return out;
}

/** Policies must be uniquely named. */
export function assertUniqueNames(policies: readonly Policy[], field = 'policies'): void {
  const seen = new Set<string>();
  for (const [i, p] of policies.entries()) {
    if (seen.has(p.name)) throw new ValidationError(`${field}[${i}].name`, `'${p.name}' is named twice`);
    seen.add(p.name);
  }
}
