-- CreateTable
CREATE TABLE "session_activity" (
    "session_uid" TEXT NOT NULL,
    "account_id" TEXT NOT NULL,
    "user_agent" TEXT,
    "ip" TEXT,
    "first_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "session_activity_pkey" PRIMARY KEY ("session_uid")
);

-- CreateIndex
CREATE INDEX "session_activity_account_id_idx" ON "session_activity"("account_id");

-- CreateIndex
CREATE INDEX "session_activity_last_seen_at_idx" ON "session_activity"("last_seen_at");
