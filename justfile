# ticktape tasks. `./dev up` and `./dev test` bootstrap .venv and call these.
set positional-arguments

python := justfile_directory() / ".venv/bin/python"

# run every service as its own process in the foreground (args pass to `ticktape up`)
up *args:
    {{python}} -m ticktape up "$@"

# the whole test suite: unit, integration (real nats-server and PostgreSQL), e2e, architecture
test *args:
    {{python}} -m pytest "$@"

# regenerate proto/ (JSON Schemas + AsyncAPI) from the code
proto:
    {{python}} -m ticktape proto

# serve recorded 1m bars over Binance's wire protocols
venue-sim *args:
    {{python}} -m ticktape venue-sim "$@"

# benchmarks; results are written under bench/results/
bench:
    {{python}} bench/run.py
