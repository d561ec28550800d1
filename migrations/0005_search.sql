-- Speech joins on-screen text in text_spans (source 'asr'), with the speaker `asrx` found,
-- and every span is searchable with PostgreSQL's full-text search.
ALTER TABLE text_spans
    ADD COLUMN speaker TEXT,
    ADD COLUMN words JSONB,
    ADD COLUMN search TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', text)) STORED;

CREATE INDEX text_spans_search ON text_spans USING GIN (search);
