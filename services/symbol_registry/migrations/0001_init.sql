-- Symbol registry: the current universe per venue and the history of every published snapshot.
-- Times that come from events (as_of) are integer ns since the epoch, exactly as on the bus.

CREATE TABLE tracked_symbols (
    venue        text             NOT NULL,
    symbol       text             NOT NULL,
    rank         integer          NOT NULL CHECK (rank >= 1),
    quote_volume double precision NOT NULL,
    as_of        bigint           NOT NULL,
    event_id     text             NOT NULL,
    updated_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (venue, symbol)
);

CREATE TABLE universe_snapshots (
    id          bigserial   PRIMARY KEY,
    event_id    text        NOT NULL UNIQUE,
    venue       text        NOT NULL,
    quote_asset text        NOT NULL,
    as_of       bigint      NOT NULL,
    top_n       integer     NOT NULL,
    symbols     text[]      NOT NULL,
    members     jsonb       NOT NULL,
    added       text[]      NOT NULL DEFAULT '{}',
    removed     text[]      NOT NULL DEFAULT '{}',
    event       jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX universe_snapshots_venue_as_of ON universe_snapshots (venue, as_of DESC, id DESC);
