-- The account activity log (append-only): one row per account event (sign-in, failed sign-in,
-- sign-out, password / email / second-factor changes, new device, lockout, role changes,
-- deletion …). `user_id` is the account the event is about and `actor_id` who acted (an admin
-- for a role change); neither references "user", so the history of a deleted account stays for
-- the administrators until it is purged (`SECURITY_ACTIVITY_RETENTION`). `device_key` is the
-- browser, operating system and network of the request, for the new-device alert.
CREATE TABLE IF NOT EXISTS "rampart_activity" (
    "id" BIGSERIAL PRIMARY KEY,
    "user_id" BIGINT,
    "actor_id" BIGINT,
    "event" VARCHAR(64) NOT NULL,
    -- JSON object with event details (the sign-in method, the role …), or NULL.
    "detail" TEXT,
    "ip" VARCHAR(64),
    "device" VARCHAR(255),
    "device_key" VARCHAR(255),
    "user_agent" TEXT,
    "created_at" TIMESTAMP WITHOUT TIME ZONE NOT NULL
);
CREATE INDEX IF NOT EXISTS "ix_rampart_activity_user_id" ON "rampart_activity" ("user_id", "id");
CREATE INDEX IF NOT EXISTS "ix_rampart_activity_created_at" ON "rampart_activity" ("created_at");
