-- What is visible: objects the `yolo` processor found on sampled frames, body keypoints
-- from `pose`, and the chunks `visual_chunk` made by following objects through shots.
CREATE TABLE object_detections (
    id         BIGSERIAL PRIMARY KEY,
    file_uuid  TEXT NOT NULL REFERENCES files (file_uuid) ON DELETE CASCADE,
    sample     INTEGER NOT NULL,
    time       DOUBLE PRECISION NOT NULL,
    label      TEXT NOT NULL,
    score      REAL NOT NULL,
    -- x, y, width, height as fractions (0-1) of the frame.
    box        REAL[] NOT NULL CHECK (cardinality(box) = 4)
);

CREATE INDEX object_detections_file ON object_detections (file_uuid, time);
CREATE INDEX object_detections_label ON object_detections (label);

CREATE TABLE poses (
    id         BIGSERIAL PRIMARY KEY,
    file_uuid  TEXT NOT NULL REFERENCES files (file_uuid) ON DELETE CASCADE,
    sample     INTEGER NOT NULL,
    time       DOUBLE PRECISION NOT NULL,
    person     INTEGER NOT NULL,
    score      REAL NOT NULL,
    -- Pixels of the frame: x, y, width, height around the visible keypoints.
    box        REAL[] NOT NULL CHECK (cardinality(box) = 4),
    -- [[x, y, visibility, presence], ...] in the order of the result's keypoint_names.
    keypoints  JSONB NOT NULL
);

CREATE INDEX poses_file ON poses (file_uuid, time);

CREATE TABLE visual_chunks (
    id          BIGSERIAL PRIMARY KEY,
    file_uuid   TEXT NOT NULL REFERENCES files (file_uuid) ON DELETE CASCADE,
    chunk       INTEGER NOT NULL,
    shot        INTEGER,
    start_time  DOUBLE PRECISION NOT NULL,
    end_time    DOUBLE PRECISION NOT NULL,
    -- "2 people and a bicycle": what the text vector was made from.
    description TEXT NOT NULL,
    -- {"person": 2, "bicycle": 1}: the most seen together at one time.
    counts      JSONB NOT NULL,
    -- The followed objects with their boxes over time.
    objects     JSONB NOT NULL,
    frame_time  DOUBLE PRECISION NOT NULL,
    frame       TEXT,
    UNIQUE (file_uuid, chunk)
);
