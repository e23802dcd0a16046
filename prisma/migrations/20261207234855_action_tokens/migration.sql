-- CreateTable
CREATE TABLE "action_tokens" (
    "id" UUID NOT NULL,
    "purpose" TEXT NOT NULL,
    "account_id" UUID,
    "email" TEXT NOT NULL,
    "digest" TEXT NOT NULL,
    "data" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "consumed_at" TIMESTAMPTZ(3),

    CONSTRAINT "action_tokens_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "action_tokens_digest_key" ON "action_tokens"("digest");

-- CreateIndex
CREATE INDEX "action_tokens_purpose_email_created_at_idx" ON "action_tokens"("purpose", "email", "created_at");

-- CreateIndex
CREATE INDEX "action_tokens_account_id_purpose_idx" ON "action_tokens"("account_id", "purpose");

-- CreateIndex
CREATE INDEX "action_tokens_expires_at_idx" ON "action_tokens"("expires_at");
