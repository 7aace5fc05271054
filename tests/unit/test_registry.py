"""The service registry (ticktape.registry) is the one list of services: it matches what exists
under services/, orders the services the way `ticktape up` stops them, resolves every reference it
holds, and rejects an inconsistent entry with a clear error."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import msgspec
import pytest

from ticktape import config as cfg
from ticktape import registry
from ticktape.corespec import load_specs
from ticktape.registry import RegistryError, ServiceInfo
from ticktape.subjects import CHANNELS

ROOT = Path(__file__).resolve().parents[2]
NON_SERVICE_PUBLISHERS = {"operator", "ticktape up", "any service"}


def _info(name: str = "thing", **overrides: object) -> ServiceInfo:
    fields: dict[str, object] = {
        "name": name,
        "kind": "producer",
        "order": 1,
        "module": f"services.{name}",
        "config": f"services.{name}.config:Config",
    }
    fields.update(overrides)
    return ServiceInfo(**fields)  # type: ignore[arg-type]


def test_registry_lists_exactly_the_service_packages():
    on_disk = {
        d.name
        for d in (ROOT / "services").iterdir()
        if d.is_dir() and ((d / "__main__.py").exists() or (d / "service.py").exists())
    }
    assert set(registry.names()) == on_disk
    for info in registry.services():
        assert info.module == f"services.{info.name}"
        assert (ROOT / "services" / info.name / "__main__.py").exists(), f"{info.name} cannot run as -m {info.module}"


def test_services_start_producers_then_cores_then_sinks():
    """`ticktape up` starts in this order and stops producers first, drains and stops the cores,
    then records the stop and drains and stops the sinks."""
    services = registry.services()
    assert [s.order for s in services] == sorted(s.order for s in services)
    kinds = [s.kind for s in services]
    assert kinds == sorted(kinds, key=registry.KINDS.index), kinds
    assert set(kinds) == set(registry.KINDS)


def test_each_core_consumes_what_a_service_started_before_it_publishes():
    """The pipeline order (replay's too) is the start order: signal, risk, execution."""
    specs = load_specs({})
    assert [s.name for s in specs] == [i.name for i in registry.of_kind("core")]
    for spec in specs:
        earlier = {s.name for s in registry.services() if s.order < registry.get(spec.name).order}
        upstream = [re.sub(r"\{\w+\}", "*", ch.template) for ch in CHANNELS if ch.publisher in earlier]
        assert any(_overlap(f, subject) for f in spec.filter_subjects for subject in upstream), spec.name


def _overlap(a: str, b: str) -> bool:
    """Whether two NATS subject patterns match some subject in common."""
    pa, pb = a.split("."), b.split(".")
    for x, y in zip(pa, pb, strict=False):
        if ">" in (x, y):
            return True
        if "*" not in (x, y) and x != y:
            return False
    return len(pa) == len(pb)


def test_every_reference_in_the_registry_resolves():
    for info in registry.services():
        assert issubclass(registry.config_type(info), msgspec.Struct), info.config
        cfg.load_section(info.name, registry.config_type(info), {})  # every section has working defaults
        if info.kind == "core":
            assert (ROOT / "services" / info.name / "core.py").exists()
            assert registry.core_spec_factory(info)({}).name == info.name
        else:
            with pytest.raises(RegistryError, match="not a core"):
                registry.core_spec_factory(info)
    durables = [d for info in registry.services() for d in info.durables]
    assert "signal" in durables and "archive_bars" in durables


def test_config_sections_are_the_registry_and_do_not_clash_with_common_settings():
    assert cfg.service_sections() == registry.names()
    assert not set(registry.names()) & set(cfg.COMMON_KEYS)


def test_channel_publishers_are_registered_services():
    publishers = {ch.publisher for ch in CHANNELS} - NON_SERVICE_PUBLISHERS
    assert publishers <= set(registry.names()), publishers - set(registry.names())


def test_import_linter_independence_contract_covers_exactly_the_registry():
    """import-linter reads pyproject.toml, not the registry: its contract names every package
    under services/ with a wildcard, and this test fails if that ever stops meaning the registry."""
    import grimp
    from importlinter.domain.helpers import module_expressions_to_modules
    from importlinter.domain.imports import ModuleExpression

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (independence,) = [c for c in contracts if c["name"] == "Services never import each other"]
    assert independence["type"] == "independence"
    graph = grimp.build_graph("services", cache_dir=None)
    expressions = [ModuleExpression(m) for m in independence["modules"]]
    covered = {m.name for m in module_expressions_to_modules(graph, expressions)}
    assert covered == {info.module for info in registry.services()}


def test_lookup_of_an_unknown_service_names_the_registered_ones():
    with pytest.raises(RegistryError, match=r"unknown service 'nope'; registered: market_data, "):
        registry.get("nope")


# --- validation: an inconsistent registry is rejected with an error that says what to fix


def test_duplicate_name_is_rejected():
    with pytest.raises(RegistryError, match=r"duplicate service name 'thing'"):
        registry.validate([_info(order=1), _info(order=2, module="services.other")])


def test_unknown_kind_is_rejected():
    with pytest.raises(RegistryError, match=r"service 'thing': unknown kind 'consumer'; allowed: producer, core, sink"):
        registry.validate([_info(kind="consumer")])


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        ([_info(kind="core", durables=("x",))], "a core needs a core_spec"),
        ([_info(core_spec="services.thing.spec:core_spec")], "a core needs a core_spec"),
        ([_info(kind="sink")], "a sink must name its durable consumers"),
        ([_info("a"), _info("b")], "share start order 1"),
        ([_info("a", kind="sink", durables=("d",)), _info("b", kind="sink", order=2, durables=("d",))], "share the"),
        ([_info(config="services.thing.config.Config")], "config must be 'module:attribute'"),
        ([_info("Bad-Name")], "must be lower_snake_case"),
    ],
)
def test_inconsistent_entries_are_rejected(entries, error):
    with pytest.raises(RegistryError, match=error):
        registry.validate(entries)


def test_validate_sorts_by_start_order():
    infos = [_info("b", order=20), _info("a", order=10)]
    assert [i.name for i in registry.validate(infos)] == ["a", "b"]


DUPLICATE = _info("signal", order=99, module="services.elsewhere")
NOT_AN_INFO = object()


def _entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=registry.GROUP)


def test_loading_entry_points_rejects_a_duplicate_name():
    entries = [_entry("signal", "services.signal:SERVICE"), _entry("signal", f"{__name__}:DUPLICATE")]
    with pytest.raises(
        RegistryError, match=r"duplicate service name 'signal'.*services\.signal and services\.elsewhere"
    ):
        registry.load(entries)


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        (_entry("signal", f"{__name__}:NOT_AN_INFO"), "is a object, not a ticktape.registry.ServiceInfo"),
        (_entry("risk", "services.signal:SERVICE"), "declares the service 'signal': the names must match"),
        (_entry("ghost", "services.ghost:SERVICE"), "cannot be loaded"),
    ],
)
def test_loading_entry_points_rejects_bad_entries(entry, error):
    with pytest.raises(RegistryError, match=error):
        registry.load([entry])
