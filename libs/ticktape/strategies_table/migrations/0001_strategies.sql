-- Managed strategies (`ticktape strategies`): one row per strategy, its current entry and status.
-- Every change also goes to the log as a StrategyChanged event with the row's version, which is
-- what the signal service runs; this table is where operators and the API read and change them.

CREATE TABLE strategies (
    id         text        PRIMARY KEY,
    kind       text        NOT NULL,
    params     jsonb       NOT NULL DEFAULT '{}',
    venue      text        NOT NULL DEFAULT '*',
    symbols    text[]      NOT NULL DEFAULT '{*}',
    timeframes text[]      NOT NULL DEFAULT '{}',
    account    text        NOT NULL DEFAULT '',
    status     text        NOT NULL CHECK (status IN ('live', 'paused', 'retired')),
    version    integer     NOT NULL CHECK (version >= 1),
    event_id   text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
