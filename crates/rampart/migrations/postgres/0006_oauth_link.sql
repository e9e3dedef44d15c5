-- Social sign-in: which provider account (provider name, the provider's subject) signs in as
-- which user, with the email the provider gave when the link was made. One user may have many
-- links; a provider account links to one user only.
CREATE TABLE IF NOT EXISTS "rampart_oauth_link" (
    "id" BIGSERIAL PRIMARY KEY,
    "provider" VARCHAR(64) NOT NULL,
    "subject" VARCHAR(255) NOT NULL,
    "user_id" BIGINT NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE,
    "email" VARCHAR(255),
    "created_at" TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    "last_used_at" TIMESTAMP WITHOUT TIME ZONE
);
CREATE UNIQUE INDEX IF NOT EXISTS "ix_rampart_oauth_link_subject" ON "rampart_oauth_link" ("provider", "subject");
CREATE INDEX IF NOT EXISTS "ix_rampart_oauth_link_user_id" ON "rampart_oauth_link" ("user_id");
