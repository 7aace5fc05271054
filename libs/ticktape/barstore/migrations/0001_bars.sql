-- Closed bars of every venue, symbol and timeframe, keyed by their open time (ns since epoch).
-- A TimescaleDB hypertable when the extension is available, else a natively range-partitioned
-- table (monthly partitions created by the writer before it inserts into a new month).
DO $$
DECLARE
    timescale boolean := EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb');
BEGIN
    IF timescale THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    END IF;
    EXECUTE 'CREATE TABLE bars (
        venue text NOT NULL, symbol text NOT NULL, timeframe text NOT NULL,
        open_time bigint NOT NULL, close_time bigint NOT NULL,
        open double precision NOT NULL, high double precision NOT NULL,
        low double precision NOT NULL, close double precision NOT NULL,
        volume double precision NOT NULL, quote_volume double precision NOT NULL,
        trades bigint NOT NULL, taker_buy_volume double precision NOT NULL,
        taker_buy_quote_volume double precision NOT NULL, backfilled boolean NOT NULL,
        event_id text NOT NULL, ts_event bigint NOT NULL, ts_init bigint NOT NULL,
        PRIMARY KEY (venue, symbol, timeframe, open_time)
    )' || CASE WHEN timescale THEN '' ELSE ' PARTITION BY RANGE (open_time)' END;
    IF timescale THEN
        -- integer time column: chunks of 7 days in ns
        PERFORM create_hypertable('bars', 'open_time', chunk_time_interval => 604800000000000);
    END IF;
END
$$;
