-- AlterTable
ALTER TABLE "clients" ADD COLUMN     "profile" TEXT,
ADD COLUMN     "require_par" BOOLEAN NOT NULL DEFAULT false;
