-- AlterTable
ALTER TABLE "resources" ADD COLUMN     "sensitive_scopes" TEXT[] DEFAULT ARRAY[]::TEXT[];
