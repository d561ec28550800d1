-- The pipeline's queue. A job asks for some processors on one file; each processor is a step
-- that any worker may claim (FOR UPDATE SKIP LOCKED) once the steps it depends on completed.
-- A running step carries its worker's heartbeat; a stale one is put back for another worker.

CREATE TABLE jobs (
    id          BIGSERIAL PRIMARY KEY,
    file_uuid   TEXT NOT NULL REFERENCES files (file_uuid) ON DELETE CASCADE,
    status      TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    processors  TEXT[] NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at  TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);

CREATE INDEX jobs_status_created ON jobs (status, created_at);
CREATE INDEX jobs_file ON jobs (file_uuid, created_at DESC);

CREATE TABLE job_steps (
    job_id       BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    processor    TEXT NOT NULL,
    depends_on   TEXT[] NOT NULL DEFAULT '{}',
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'completed', 'failed', 'skipped')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    worker       TEXT,
    heartbeat_at TIMESTAMPTZ,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    duration_ms  BIGINT,
    reason       TEXT,
    PRIMARY KEY (job_id, processor)
);

CREATE INDEX job_steps_pending ON job_steps (job_id) WHERE status = 'pending';
CREATE INDEX job_steps_running ON job_steps (heartbeat_at) WHERE status = 'running';

-- Every processor's result document, as also written to output/{file_uuid}.{processor}.json.
CREATE TABLE results (
    file_uuid  TEXT NOT NULL REFERENCES files (file_uuid) ON DELETE CASCADE,
    processor  TEXT NOT NULL,
    job_id     BIGINT REFERENCES jobs (id) ON DELETE SET NULL,
    document   JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (file_uuid, processor)
);

-- Shots (cut), scenes (scene) and on-screen text (ocr), one row each, for queries.
CREATE TABLE shots (
    file_uuid   TEXT NOT NULL REFERENCES files (file_uuid) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    start_time  DOUBLE PRECISION NOT NULL,
    end_time    DOUBLE PRECISION NOT NULL,
    start_frame BIGINT NOT NULL,
    end_frame   BIGINT NOT NULL,
    transition  TEXT NOT NULL,
    score       DOUBLE PRECISION NOT NULL,
    keyframe    TEXT,
    PRIMARY KEY (file_uuid, idx)
);

CREATE TABLE scenes (
    file_uuid  TEXT NOT NULL REFERENCES files (file_uuid) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    start_time DOUBLE PRECISION NOT NULL,
    end_time   DOUBLE PRECISION NOT NULL,
    first_shot INTEGER NOT NULL,
    last_shot  INTEGER NOT NULL,
    PRIMARY KEY (file_uuid, idx)
);

CREATE TABLE text_spans (
    id         BIGSERIAL PRIMARY KEY,
    file_uuid  TEXT NOT NULL REFERENCES files (file_uuid) ON DELETE CASCADE,
    source     TEXT NOT NULL,
    start_time DOUBLE PRECISION NOT NULL,
    end_time   DOUBLE PRECISION NOT NULL,
    text       TEXT NOT NULL,
    confidence DOUBLE PRECISION,
    box        INTEGER[]
);

CREATE INDEX text_spans_file ON text_spans (file_uuid, source, start_time);
