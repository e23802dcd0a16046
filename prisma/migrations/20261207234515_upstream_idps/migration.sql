-- CreateTable
CREATE TABLE "upstream_idps" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "issuer" TEXT NOT NULL,
    "client_id" TEXT NOT NULL,
    "client_secret_encrypted" TEXT NOT NULL,
    "scopes" TEXT[],
    "domains" TEXT[],
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,

    CONSTRAINT "upstream_idps_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "upstream_idp_links" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "idp_id" UUID NOT NULL,
    "subject" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "upstream_idp_links_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "federation_requests" (
    "state_digest" TEXT NOT NULL,
    "idp_id" UUID NOT NULL,
    "interaction_uid" TEXT NOT NULL,
    "nonce" TEXT NOT NULL,
    "code_verifier" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "consumed_at" TIMESTAMPTZ(3),

    CONSTRAINT "federation_requests_pkey" PRIMARY KEY ("state_digest")
);

-- CreateIndex
CREATE UNIQUE INDEX "upstream_idps_name_key" ON "upstream_idps"("name");

-- CreateIndex
CREATE INDEX "upstream_idp_links_account_id_idx" ON "upstream_idp_links"("account_id");

-- CreateIndex
CREATE UNIQUE INDEX "upstream_idp_links_idp_id_subject_key" ON "upstream_idp_links"("idp_id", "subject");

-- CreateIndex
CREATE INDEX "federation_requests_expires_at_idx" ON "federation_requests"("expires_at");

-- AddForeignKey
ALTER TABLE "upstream_idp_links" ADD CONSTRAINT "upstream_idp_links_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "upstream_idp_links" ADD CONSTRAINT "upstream_idp_links_idp_id_fkey" FOREIGN KEY ("idp_id") REFERENCES "upstream_idps"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "federation_requests" ADD CONSTRAINT "federation_requests_idp_id_fkey" FOREIGN KEY ("idp_id") REFERENCES "upstream_idps"("id") ON DELETE CASCADE ON UPDATE CASCADE;
