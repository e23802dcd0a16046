-- Two-step verification: the enrolment window and the TOTP replay guard move
-- onto the account row.
--
-- mfa_enrolment_until: until when a first authenticator may be enrolled with
-- only the password (a sign-in that needs MFA on an account without one).
-- New accounts get now() + 7 days from the column default, so account
-- creation needs no code for it; `gatehouse users reset-mfa` opens a new
-- 7-day window; a confirmed enrolment closes it (NULL).
--
-- Existing accounts (upgrade): those without an authenticator get the window
-- they would have had if the rule had always held, created_at + 7 days. An
-- account created in the last week keeps the rest of its week; an older one
-- without an authenticator can no longer enrol with its password alone: when a
-- client or request requires MFA, the person sees "ask your administrator",
-- and `gatehouse users reset-mfa EMAIL` opens a fresh 7-day window. Accounts
-- with an authenticator get no window (NULL): they never need one.
ALTER TABLE "accounts" ADD COLUMN     "mfa_enrolment_until" TIMESTAMPTZ(3) DEFAULT (now() + '7 days'::interval),
ADD COLUMN     "totp_last_step" INTEGER;

UPDATE "accounts" SET "mfa_enrolment_until" = CASE
  WHEN "totp_enabled_at" IS NULL THEN "created_at" + interval '7 days'
  ELSE NULL
END;

-- totp_last_step: the last TOTP time step accepted for the account (a code
-- is accepted only for a later step). It was kept in login_throttles rows
-- `totp-step:<account id>` (in `failures`); carry it over so no code used
-- before the upgrade can be replayed after it, then drop those rows.
UPDATE "accounts" a SET "totp_last_step" = t."failures"
FROM "login_throttles" t
WHERE t."key" = 'totp-step:' || a."id"::text;

DELETE FROM "login_throttles" WHERE "key" LIKE 'totp-step:%';
