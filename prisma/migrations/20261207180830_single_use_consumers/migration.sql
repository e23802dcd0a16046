-- AlterTable
ALTER TABLE "oidc_payloads" ADD COLUMN     "consumed_by" TEXT,
ADD COLUMN     "undelivered_at" TIMESTAMPTZ(3);
