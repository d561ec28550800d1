-- The embedded vector store: pgvector. A pgvector column's dimension is part of its type, so
-- each collection gets a table of its own, `vectors_<name>`, made by
-- vector_collection_ensure(): the one place that knows a collection table's shape, used both
-- here (for the collections reelbase ships with) and by the application (for any other).
--
-- CREATE EXTENSION needs a superuser (pgvector is not a trusted extension); tools/setup makes
-- the local role one. Elsewhere, have an administrator run it once before migrating.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE vector_collections (
    -- At most 40 characters: with the prefix and index suffixes, names stay within 63 bytes.
    name       TEXT PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    -- HNSW indexes vectors of at most 2,000 dimensions.
    dimension  INTEGER NOT NULL CHECK (dimension BETWEEN 1 AND 2000),
    distance   TEXT NOT NULL DEFAULT 'cosine' CHECK (distance = 'cosine'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Makes the collection if it is new; returns the dimension it has (which may differ from the
-- one asked for, when it already existed: the caller reports that, nothing is dropped).
CREATE FUNCTION vector_collection_ensure(collection TEXT, wanted INTEGER)
RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    existing INTEGER;
    tbl      TEXT := 'vectors_' || collection;
BEGIN
    -- A concurrent caller making the same collection waits here on the primary key until
    -- the first commits, then finds the row.
    INSERT INTO vector_collections (name, dimension) VALUES (collection, wanted)
    ON CONFLICT (name) DO NOTHING;
    IF NOT FOUND THEN
        SELECT dimension INTO existing FROM vector_collections WHERE name = collection;
        RETURN existing;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I (
             id        TEXT PRIMARY KEY,
             embedding vector(%s) NOT NULL,
             payload   JSONB NOT NULL DEFAULT ''{}''
         )', tbl, wanted);
    -- HNSW rather than IVFFlat: it needs no training on existing rows, so it works from the
    -- first insert, and it keeps its recall as the table grows.
    EXECUTE format('CREATE INDEX %I ON %I USING hnsw (embedding vector_cosine_ops)',
                   tbl || '_hnsw', tbl);
    -- Payload filters are containment tests (payload @> {"key": value}).
    EXECUTE format('CREATE INDEX %I ON %I USING gin (payload jsonb_path_ops)',
                   tbl || '_payload', tbl);
    RETURN wanted;
END
$$;

SELECT vector_collection_ensure('reelbase_faces', 128);
SELECT vector_collection_ensure('reelbase_visual_chunks', 384);
SELECT vector_collection_ensure('reelbase_transcripts', 384);
