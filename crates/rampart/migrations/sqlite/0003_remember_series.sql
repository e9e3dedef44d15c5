-- One row per remember-me cookie ("series"): the cookie carries a random series id, only its
-- SHA-256 is stored. Signing out deletes the row, so that cookie is dead even if it was copied,
-- while the user's other devices stay remembered.
CREATE TABLE IF NOT EXISTS "rampart_remember" (
    "series_hash" TEXT PRIMARY KEY NOT NULL,
    "user_id" INTEGER NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE,
    "created_at" DATETIME NOT NULL,
    "last_used_at" DATETIME,
    "expires_at" DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS "rampart_remember_user_id" ON "rampart_remember" ("user_id");
