// Production refuses secrets that are not random: a shipped placeholder
// (deploy/kubernetes has `CHANGE-ME…`), a repeated or sequential pattern, a
// few words, or too little estimated entropy. The estimate is the value's
// length times its per-character Shannon entropy: a random 32-byte value in
// base64 or hex scores about 200 bits; `openssl rand -base64 16` (and any
// 16-byte value) does not reach the floor. Each check returns the reason as
// words that complete "invalid NAME: …" and never quotes the value.

/** The least estimated entropy a production secret must have. */
export const SECRET_ENTROPY_FLOOR_BITS = 128;

// Long enough that a random value contains one only by a negligible chance
// (each letter matches 1 in 32 base64 characters, case-insensitively).
const PLACEHOLDER = /change[\s_-]*(me|it)|placeholder|example|replace[\s_-]*(me|this)|your[\s_-]*(own[\s_-]*)?(secret|token|key|password)|insecure|…|^<.*>$/i;
// lower-case words only: a random base64 value has upper case or digits but for a negligible chance
const WORDS = /^[a-z]+(?:[-_ .][a-z]+)+$/;

/** Bits estimated as length × per-symbol Shannon entropy. */
export function estimatedEntropyBits(symbols: ArrayLike<string | number>): number {
  const counts = new Map<string | number, number>();
  for (let i = 0; i < symbols.length; i++) counts.set(symbols[i]!, (counts.get(symbols[i]!) ?? 0) + 1);
  let perSymbol = 0;
  for (const c of counts.values()) {
    const p = c / symbols.length;
    perSymbol -= p * Math.log2(p);
  }
  return perSymbol * symbols.length;
}

/** Whether the sequence is a shorter unit repeated (period at most half its length). */
function repeats(s: ArrayLike<string | number>): boolean {
  const n = s.length;
  for (let p = 1; p <= n / 2; p++) {
    let i = p;
    while (i < n && s[i] === s[i - p]) i++;
    if (i === n) return true;
  }
  return false;
}

/** Whether most neighbours are equal or one apart (aaaa, abcd, 1234, 0x00 0x01 0x02…). */
function sequential(codes: number[]): boolean {
  let close = 0;
  for (let i = 1; i < codes.length; i++) if (Math.abs(codes[i]! - codes[i - 1]!) <= 1) close++;
  return codes.length > 1 && close * 2 > codes.length - 1;
}

/** Why `value` is not fit to be a production secret, or undefined when it is. */
export function secretWeakness(value: string): string | undefined {
  if (PLACEHOLDER.test(value)) return 'looks like a placeholder; set a random value (e.g. openssl rand -base64 32)';
  const chars = [...value];
  const codes = chars.map((c) => c.codePointAt(0)!);
  if (repeats(chars) || sequential(codes)) return 'is a repeated or sequential pattern; set a random value (e.g. openssl rand -base64 32)';
  if (WORDS.test(value)) return 'looks like words, not a random value (e.g. openssl rand -base64 32)';
  const bits = estimatedEntropyBits(chars);
  if (bits < SECRET_ENTROPY_FLOOR_BITS) {
    return `has about ${Math.floor(bits)} bits of estimated entropy, under the ${SECRET_ENTROPY_FLOOR_BITS}-bit floor (e.g. openssl rand -base64 32)`;
  }
  return undefined;
}

/** Why `key` (decoded KEY_ENCRYPTION_KEY) does not look random, or undefined when it does. */
export function keyWeakness(encoded: string, key: Buffer): string | undefined {
  if (PLACEHOLDER.test(encoded)) return 'looks like a placeholder; set 32 random bytes (openssl rand -base64 32)';
  const bytes = [...key];
  // 32 random bytes have about 30 distinct values; fewer than 16 is never chance.
  if (repeats(bytes) || sequential(bytes) || new Set(bytes).size < 16) {
    return 'does not look random (repeated, sequential or too few distinct bytes); set 32 random bytes (openssl rand -base64 32)';
  }
  return undefined;
}
