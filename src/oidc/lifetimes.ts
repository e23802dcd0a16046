// The longest any token Gatehouse signs can live. JWT access tokens and ID
// tokens are capped at one day by the resource and client TTL limits, so a
// retired signing key must stay published that long after it stops signing.
// (Refresh tokens are opaque: no signature to verify.)
export const LONGEST_SIGNED_TOKEN_SECONDS = 86_400;
