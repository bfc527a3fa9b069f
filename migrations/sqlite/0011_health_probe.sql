-- Readiness proves that the writer can write (issue 12 §0): `/healthz` commits one small
-- update of this single row through the same connection deposits use, so a full disk or a
-- writer stuck in a transaction makes the health check fail instead of answering 200.
-- Times are Unix microseconds (UTC) in BIGINT columns, as in 0001.
CREATE TABLE health_probe (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at  BIGINT NOT NULL
);
