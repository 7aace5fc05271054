# ticktape tasks. `./dev up` and `./dev test` bootstrap .venv (exactly the lock) and call these.
set positional-arguments

python := justfile_directory() / ".venv/bin/python"
bin := justfile_directory() / ".venv/bin"

# run every service as its own process in the foreground (args pass to `ticktape up`)
up *args:
    {{python}} -m ticktape up "$@"

# everything, as CI runs it: static gates, unit, integration and e2e tiers in one pytest run,
# with coverage (also of the services' subprocesses) against the floor in pyproject.toml
test *args:
    rm -rf .coverage && mkdir -p .coverage
    {{python}} -m pytest --cov --cov-config=pyproject.toml --cov-report=term --cov-report=json:.coverage/coverage.json "$@"

# static gates: ruff lint + format, import contracts, core purity, proto drift, the lock
lint *args:
    {{bin}}/ruff check .
    {{bin}}/ruff format --check .
    {{python}} -m pytest -m "lint and not typecheck" "$@"

# the type checker over libs/ and services/, and the proof that it catches what it is for
typecheck *args:
    {{bin}}/mypy
    {{python}} -m pytest -m typecheck "$@"

# fast tier: pure cores, decoders, config, codecs (no servers)
test-unit *args:
    {{python}} -m pytest tests/unit -m "not lint and not typecheck" "$@"

# real nats-server and PostgreSQL from wheels, the venue simulator on loopback
test-integration *args:
    {{python}} -m pytest tests/integration "$@"

# the whole stack as processes under `ticktape up`, on the venue simulator
test-e2e *args:
    {{python}} -m pytest tests/e2e "$@"

# raise the coverage floor to what the last `just test` measured (it never goes down)
coverage-floor:
    {{python}} -m ticktape.devtools.coverage_floor .coverage/coverage.json pyproject.toml

# regenerate proto/ (JSON Schemas + AsyncAPI) from the code
proto:
    {{python}} -m ticktape proto

# re-resolve uv.lock on purpose and re-export requirements/dev.txt (then ./dev test, commit both)
lock *args:
    ./dev lock "$@"

# serve recorded 1m bars over Binance's wire protocols
venue-sim *args:
    {{python}} -m ticktape venue-sim "$@"

# benchmarks; results are written under bench/results/
bench:
    {{python}} bench/run.py
