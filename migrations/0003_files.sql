-- Registered media files. One row per distinct content (SHA-256); the path is where it was
-- last seen. The stat facts (device, inode, size, mtime, ctime) let a rescan recognise an
-- unchanged file without reading it again.

CREATE TABLE files (
    file_uuid     TEXT PRIMARY KEY CHECK (file_uuid ~ '^[0-9a-f]{32}$'),
    content_hash  TEXT NOT NULL UNIQUE CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    file_path     TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    file_type     TEXT NOT NULL CHECK (file_type IN ('video', 'audio')),
    container     TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL CHECK (size_bytes >= 0),
    duration      DOUBLE PRECISION,
    width         INTEGER,
    height        INTEGER,
    fps           DOUBLE PRECISION,
    total_frames  BIGINT,
    audio_streams INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'registered',
    -- How it arrived: api, cli, watcher (a file that appeared in a media root) or sftpgo.
    source        TEXT NOT NULL CHECK (source IN ('api', 'cli', 'watcher', 'sftpgo')),
    device        BIGINT NOT NULL,
    inode         BIGINT NOT NULL,
    mtime_ns      BIGINT NOT NULL,
    ctime_ns      BIGINT NOT NULL,
    registered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX files_file_name ON files (file_name);
CREATE INDEX files_file_path ON files (file_path);
CREATE INDEX files_status_registered ON files (status, registered_at DESC);
CREATE INDEX files_uploads ON files (registered_at) WHERE source IN ('watcher', 'sftpgo');

-- Content whose record an operator deleted. The watcher does not register it again, at any
-- path; registering it explicitly (API, CLI, SFTPGo hook) brings it back.
CREATE TABLE file_tombstones (
    content_hash TEXT PRIMARY KEY,
    file_path    TEXT NOT NULL,
    deleted_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every file the watcher has judged, with its stat facts then and the outcome, so that after a
-- restart it reads again only what changed (including copies of known content and files that
-- are not media).
CREATE TABLE ingest_seen (
    file_path  TEXT PRIMARY KEY,
    device     BIGINT NOT NULL,
    inode      BIGINT NOT NULL,
    size_bytes BIGINT NOT NULL,
    mtime_ns   BIGINT NOT NULL,
    ctime_ns   BIGINT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('registered', 'known', 'deleted', 'rejected')),
    reason     TEXT,
    seen_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
