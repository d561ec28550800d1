-- The identity library: known people, mirrored on disk under REELBASE_IDENTITIES_DIR.

CREATE TABLE identities (
    id         TEXT PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
    name       TEXT NOT NULL,
    source     TEXT NOT NULL DEFAULT 'manual',
    status     TEXT NOT NULL DEFAULT 'active',
    tmdb_id    BIGINT UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
