-- Refresh token rotation after a lost answer (src/oidc/refresh-rotation.ts):
-- when a rotated token's answer was written out, and when its one retry was granted.
-- AlterTable
ALTER TABLE "oidc_payloads" ADD COLUMN     "delivered_at" TIMESTAMPTZ(3),
ADD COLUMN     "retried_at" TIMESTAMPTZ(3);
