-- Rampart framework schema, SQLite flavour (keep in step with ../postgres/0001_fsqla_v3_and_rampart.sql).
--
-- The first four tables are Flask-Security's `fsqla_v3` models (same table and column names), so a
-- database created by Flask-Security opens unchanged: every statement is `IF NOT EXISTS`.
-- Datetimes are naive UTC, stored as text the way sqlx's `time::PrimitiveDateTime` writes them.
-- Framework migrations use versions 1..999; applications use 1000 and above.

CREATE TABLE IF NOT EXISTS "user" (
    "id" INTEGER PRIMARY KEY,
    "email" VARCHAR(255) NOT NULL UNIQUE,
    "username" VARCHAR(255) UNIQUE,
    "password" VARCHAR(255),
    "active" BOOLEAN NOT NULL,
    "fs_uniquifier" VARCHAR(64) NOT NULL UNIQUE,
    "confirmed_at" DATETIME,
    "last_login_at" DATETIME,
    "current_login_at" DATETIME,
    "last_login_ip" VARCHAR(64),
    "current_login_ip" VARCHAR(64),
    "login_count" INTEGER,
    "tf_primary_method" VARCHAR(64),
    "tf_totp_secret" VARCHAR(255),
    "tf_phone_number" VARCHAR(128),
    "us_totp_secrets" TEXT,
    "us_phone_number" VARCHAR(128) UNIQUE,
    "fs_webauthn_user_handle" VARCHAR(64) UNIQUE,
    "mf_recovery_codes" TEXT,
    "create_datetime" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "update_datetime" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Email and username are compared case-insensitively, and unique that way.
CREATE UNIQUE INDEX IF NOT EXISTS "ix_user_email_lower" ON "user" (lower("email"));
CREATE UNIQUE INDEX IF NOT EXISTS "ix_user_username_lower" ON "user" (lower("username"));

CREATE TABLE IF NOT EXISTS "role" (
    "id" INTEGER PRIMARY KEY,
    "name" VARCHAR(80) NOT NULL UNIQUE,
    "description" VARCHAR(255),
    -- Comma separated (Flask-Security's AsaList).
    "permissions" TEXT,
    "update_datetime" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE IF NOT EXISTS "roles_users" (
    "user_id" INTEGER NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE,
    "role_id" INTEGER NOT NULL REFERENCES "role" ("id") ON DELETE CASCADE,
    CONSTRAINT "roles_users_user_id_role_id_key" UNIQUE ("user_id", "role_id")
);
CREATE INDEX IF NOT EXISTS "ix_roles_users_role_id" ON "roles_users" ("role_id");

CREATE TABLE IF NOT EXISTS "webauthn" (
    "id" INTEGER PRIMARY KEY,
    "credential_id" BLOB NOT NULL,
    "public_key" BLOB NOT NULL,
    "sign_count" INTEGER DEFAULT 0,
    -- Comma separated (Flask-Security's AsaList).
    "transports" TEXT,
    "backup_state" BOOLEAN NOT NULL,
    "device_type" VARCHAR(64) NOT NULL,
    "extensions" VARCHAR(255),
    "create_datetime" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastuse_datetime" DATETIME NOT NULL,
    "name" VARCHAR(64) NOT NULL,
    "usage" VARCHAR(64) NOT NULL,
    "user_id" INTEGER NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE
);
CREATE UNIQUE INDEX IF NOT EXISTS "ix_webauthn_credential_id" ON "webauthn" ("credential_id");
CREATE INDEX IF NOT EXISTS "ix_webauthn_user_id" ON "webauthn" ("user_id");

-- Rampart's own tables.

CREATE TABLE IF NOT EXISTS "rampart_session" (
    -- A hash of the session id: the id itself is never stored.
    "id" TEXT PRIMARY KEY NOT NULL,
    "user_id" INTEGER REFERENCES "user" ("id") ON DELETE CASCADE,
    -- JSON.
    "data" TEXT NOT NULL,
    "expiry_date" DATETIME NOT NULL,
    "created_at" DATETIME NOT NULL,
    "last_seen_at" DATETIME
);
CREATE INDEX IF NOT EXISTS "ix_rampart_session_user_id" ON "rampart_session" ("user_id");
CREATE INDEX IF NOT EXISTS "ix_rampart_session_expiry_date" ON "rampart_session" ("expiry_date");

-- Fixed-window rate limit counters.
CREATE TABLE IF NOT EXISTS "rampart_rate_limit" (
    "key" TEXT PRIMARY KEY NOT NULL,
    "window_start" DATETIME NOT NULL,
    "hits" INTEGER NOT NULL
);
