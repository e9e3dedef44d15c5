-- The last time step of a one-time code (two-factor) each user has used: a code is accepted only
-- for a later step, so an intercepted code cannot be replayed inside its window.
CREATE TABLE IF NOT EXISTS "rampart_otp_used_step" (
    "user_id" BIGINT PRIMARY KEY NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE,
    "step" BIGINT NOT NULL
);
