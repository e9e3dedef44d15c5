-- The sample app's profile: one row per user, created in the same transaction as the user
-- (`on_user_created_sql`) and removed with it (`ON DELETE CASCADE`).
CREATE TABLE IF NOT EXISTS "profile" (
    "user_id" BIGINT PRIMARY KEY NOT NULL REFERENCES "user" ("id") ON DELETE CASCADE,
    "first_name" VARCHAR(100),
    "last_name" VARCHAR(100),
    "dob" DATE,
    "gender" VARCHAR(20),
    "phone" VARCHAR(32),
    "address" VARCHAR(255),
    "city" VARCHAR(100),
    "zip" VARCHAR(20),
    "country" VARCHAR(100),
    "avatar" VARCHAR(255)
);

-- Users created before this migration get their (empty) profile now.
INSERT INTO "profile" ("user_id") SELECT "id" FROM "user" WHERE "id" NOT IN (SELECT "user_id" FROM "profile");
