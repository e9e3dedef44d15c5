-- One-time codes sent by mail (two-factor sign-in, setup by email, rescue): a fresh random code
-- per mail, of which only a keyed digest (HMAC with the app's secret key) is stored, with its
-- expiry. One live code per user and purpose; a right code is deleted as it is used.
CREATE TABLE IF NOT EXISTS "rampart_mailed_code" (
    "user_id" BIGINT NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE,
    "purpose" VARCHAR(32) NOT NULL,
    "digest" TEXT NOT NULL,
    "expires_at" TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    PRIMARY KEY ("user_id", "purpose")
);
