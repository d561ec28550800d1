-- Faces: vectors of known people (made from their photos) and the face tracks found in
-- footage, each matched to an identity or left to an unknown-person label.
CREATE TABLE identity_faces (
    id          BIGSERIAL PRIMARY KEY,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    photo       TEXT NOT NULL,
    vector      REAL[] NOT NULL CHECK (cardinality(vector) = 128),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX identity_faces_identity ON identity_faces (identity_id);

CREATE TABLE face_tracks (
    id          BIGSERIAL PRIMARY KEY,
    file_uuid   TEXT NOT NULL REFERENCES files (file_uuid) ON DELETE CASCADE,
    track       INTEGER NOT NULL,
    shot        INTEGER,
    start_time  DOUBLE PRECISION NOT NULL,
    end_time    DOUBLE PRECISION NOT NULL,
    detections  INTEGER NOT NULL,
    -- The mean of the track's face vectors, unit length.
    vector      REAL[] NOT NULL CHECK (cardinality(vector) = 128),
    -- The unknown-person label the file's clustering gave (UNKNOWN_1, ...).
    cluster     TEXT NOT NULL,
    identity_id TEXT REFERENCES identities (id) ON DELETE SET NULL,
    -- Cosine distance to the matched identity's nearest face; null when bound by hand.
    distance    DOUBLE PRECISION,
    -- Set by a person: matching never changes it.
    bound       BOOLEAN NOT NULL DEFAULT false,
    boxes       JSONB NOT NULL,
    UNIQUE (file_uuid, track)
);

CREATE INDEX face_tracks_identity ON face_tracks (identity_id) WHERE identity_id IS NOT NULL;
