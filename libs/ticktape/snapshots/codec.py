"""A core's state as deterministic bytes, and back: the object graph under the core, pickle-free.

A core is a plain Python object whose state is dicts, lists, sets, deques, dataclasses, small
classes of its own and frozen msgspec Structs (events, configs). `encode` walks that graph from
the core and writes it as one msgpack document; `restore_into` rebuilds it inside a freshly built
core of the same class. What makes the bytes a function of the state alone, so that two cores at
the same stream sequence give equal snapshots and a restored core snapshots to the same bytes:
  - dicts keep their insertion order (the cores' iteration order, which decisions depend on);
    sets and frozensets are written sorted by their members' encoding (their order is never used);
  - mutable objects (dicts, lists, sets, deques, objects) are written once and referenced after
    that, numbered in walk order, so shared objects (an order held by two indexes) stay shared;
  - immutable values (frozen Structs, tuples, strings, numbers) are written by value;
  - floats are written as IEEE doubles (msgpack float 64): exact, -0.0 and NaN included.

Only data is written: an object of a class from outside ticktape's packages that is neither a
dataclass nor a StateSnapshots (a C extension type, a file, a random generator, a lock), or a function, raises
Unsnapshottable at encode time, so a core holding something the codec cannot rebuild exactly is
never restored wrongly; its shell falls back to a full rebuild. `restore_into` only instantiates
classes of kinds the writer accepts, from modules the process has already imported: a snapshot
never makes it import anything."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import sys
from collections import deque
from typing import Any, ClassVar

import msgspec
import numpy as np

from ticktape.strategy import Strategy

ALLOWED_MODULES: tuple[str, ...] = ("ticktape.", "services.", "exchanges.")

_SCALARS = (type(None), bool, int, float, str, bytes)
_encoder = msgspec.msgpack.Encoder()


class Unsnapshottable(TypeError):
    """The state holds something the codec cannot write as data (the message says what and where)."""

    def __init__(self, what: str, path: str = "") -> None:
        super().__init__(f"{path}: {what}" if path else what)
        self.what, self.path = what, path

    def within(self, segment: str) -> Unsnapshottable:
        """The same problem, one level further out: `segment` is where it sits in its container."""
        return Unsnapshottable(self.what, segment + self.path)


class BadSnapshot(ValueError):
    """The bytes do not restore into this core (another class, a class it does not use, corrupt)."""


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _allowed_object(cls: type) -> bool:
    """Python classes whose instances are their attributes: dataclasses, cores and plug-in
    strategies (declared plain data), and ticktape's own classes; none deriving from a builtin
    or C type other than object (a dict subclass, a lock) or declaring how it pickles."""
    bases_ok = all(b is object or b.__module__ not in ("builtins", "_collections", "_thread") for b in cls.__mro__)
    if not bases_ok or "__reduce__" in vars(cls) or "__getstate__" in vars(cls):
        return False
    declared = dataclasses.is_dataclass(cls) or issubclass(cls, StateSnapshots | Strategy)
    return declared or cls.__module__.startswith(ALLOWED_MODULES)


def _attributes(obj: Any) -> list[tuple[str, Any]]:
    """An object's attributes: its slots (base classes first), then its __dict__ in order."""
    out: list[tuple[str, Any]] = []
    for klass in reversed(type(obj).__mro__):
        slots = vars(klass).get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                out.append((slot, getattr(obj, slot)))
    if hasattr(obj, "__dict__"):
        out.extend(vars(obj).items())
    return out


class _Writer:
    def __init__(self, skip: tuple[str, ...] = ()) -> None:
        self.skip = skip  # attributes of the root object left out
        self.refs: dict[int, int] = {}
        self.keep: list[Any] = []  # ids stay unique while the walk runs
        self.classes: set[type] = set()

    def _ref(self, obj: Any) -> int | None:
        key = id(obj)  # purity: identity only (numbers come from the walk's order, not from addresses)
        ref = self.refs.get(key)
        if ref is None:
            self.refs[key] = len(self.refs)
            self.keep.append(obj)
        return ref

    def value(self, obj: Any) -> Any:
        cls = type(obj)
        if cls in _SCALARS:
            return obj
        if isinstance(obj, msgspec.Struct):
            if not cls.__struct_config__.frozen:
                raise Unsnapshottable(f"a mutable msgspec Struct ({_name(cls)}); make it frozen")
            self.classes.add(cls)
            return ["S", _name(cls), _encoder.encode(obj)]
        if cls is tuple:
            return ["T", self._items(obj)]
        if cls is frozenset:
            return ["F", self._sorted(obj)]
        if isinstance(obj, tuple) and hasattr(cls, "_fields"):  # a NamedTuple
            self.classes.add(cls)
            return ["N", _name(cls), self._items(obj)]
        if isinstance(obj, enum.Enum):
            self.classes.add(cls)
            return ["V", _name(cls), self.value(obj.value)]
        if isinstance(obj, type):  # a class itself (a strategy kind): by name, like a value
            return ["C", _name(obj)]
        ref = self._ref(obj)
        if ref is not None:
            return ["R", ref]
        if cls is dict:
            return ["D", self._pairs(obj.items())]
        if cls is list:
            return ["L", self._items(obj)]
        if cls is set:
            return ["E", self._sorted(obj)]
        if cls is deque:
            return ["Q", obj.maxlen, self._items(obj)]
        if cls is np.ndarray:
            if obj.dtype.hasobject:
                raise Unsnapshottable("a numpy array of Python objects")
            return ["A", obj.dtype.str, list(obj.shape), np.ascontiguousarray(obj).tobytes()]
        if not _allowed_object(cls):
            raise Unsnapshottable(f"{_name(cls)} is not plain data (no dataclass, not a ticktape class)")
        self.classes.add(cls)
        skip, self.skip = self.skip, ()
        return ["O", _name(cls), self._pairs(((k, v) for k, v in _attributes(obj) if k not in skip), attrs=True)]

    def _items(self, items: Any) -> list[Any]:
        out = []
        for i, v in enumerate(items):
            try:
                out.append(self.value(v))
            except Unsnapshottable as exc:
                raise exc.within(f"[{i}]") from None
        return out

    def _pairs(self, pairs: Any, attrs: bool = False) -> list[Any]:
        out = []
        for k, v in pairs:
            try:
                out.append([k if attrs else self.value(k), self.value(v)])
            except Unsnapshottable as exc:
                raise exc.within(f".{k}" if attrs else f"[{k!r}]") from None
        return out

    def _sorted(self, items: Any) -> list[Any]:
        return sorted(self._items(items), key=_encoder.encode)


def encode(core: object, skip: tuple[str, ...] = ()) -> bytes:
    """The state of `core` (its attributes but `skip`, recursively) as deterministic msgpack bytes."""
    writer = _Writer(skip)
    try:
        return _encoder.encode(writer.value(core))
    except Unsnapshottable as exc:
        raise exc.within(type(core).__name__) from None


def classes_of(core: object) -> set[type]:
    """The classes of the objects and Structs under `core` (what restore_into may instantiate)."""
    writer = _Writer()
    writer.value(core)
    return writer.classes


class _Reader:
    def __init__(self, allowed: set[type]) -> None:
        self.allowed = {_name(c): c for c in allowed}
        self.objects: list[Any] = []

    def cls(self, name: str) -> type:
        """The class `name`, from a module this process has already imported (a snapshot never
        makes it import one), and only a kind the writer accepts."""
        found = self.allowed.get(name)
        if found is not None:
            return found
        obj = self.loaded(name)
        plain = issubclass(obj, msgspec.Struct | enum.Enum) or hasattr(obj, "_fields") or _allowed_object(obj)
        if not plain:
            raise BadSnapshot(f"class {name} is not one a snapshot may hold")
        self.allowed[name] = obj
        return obj

    @staticmethod
    def loaded(name: str) -> type:
        """The class `name` from a module this process has already imported."""
        module, _, qualname = name.partition(":")
        obj: Any = sys.modules.get(module)
        if obj is None:
            raise BadSnapshot(f"class {name}: its module is not loaded in this process")
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        if not isinstance(obj, type):
            raise BadSnapshot(f"{name} is not a class")
        return obj

    def value(self, node: Any, into: Any = None) -> Any:
        if not isinstance(node, list):
            return node
        kind = node[0]
        if kind == "S":
            return msgspec.msgpack.decode(node[2], type=self.cls(node[1]))
        if kind == "T":
            return tuple(self.value(v) for v in node[1])
        if kind == "F":
            return frozenset(self.value(v) for v in node[1])
        if kind == "N":
            return self.cls(node[1])(*(self.value(v) for v in node[2]))
        if kind == "V":
            return self.cls(node[1])(self.value(node[2]))
        if kind == "R":
            return self.objects[node[1]]
        if kind == "D":
            d: dict[Any, Any] = {}
            self.objects.append(d)
            for k, v in node[1]:
                d[self.value(k)] = self.value(v)
            return d
        if kind == "L":
            lst: list[Any] = []
            self.objects.append(lst)
            lst.extend(self.value(v) for v in node[1])
            return lst
        if kind == "E":
            s: set[Any] = set()
            self.objects.append(s)
            s.update(self.value(v) for v in node[1])
            return s
        if kind == "Q":
            q: deque[Any] = deque(maxlen=node[1])
            self.objects.append(q)
            q.extend(self.value(v) for v in node[2])
            return q
        if kind == "A":
            arr = np.frombuffer(node[3], dtype=np.dtype(node[1])).reshape(node[2]).copy()
            self.objects.append(arr)
            return arr
        if kind == "C":
            return self.loaded(node[1])
        if kind == "O":
            cls = self.cls(node[1])
            if into is not None and type(into) is not cls:
                raise BadSnapshot(f"the snapshot is of a {node[1]}, not of a {_name(type(into))}")
            obj = into if into is not None else object.__new__(cls)
            self.objects.append(obj)
            attrs = {k: self.value(v) for k, v in node[2]}
            if into is not None:
                vars(obj).clear()
            for k, v in attrs.items():
                object.__setattr__(obj, k, v)  # slots and frozen dataclasses too
            return obj
        raise BadSnapshot(f"unknown node kind {kind!r}")


def restore_into(core: object, data: bytes, keep: tuple[str, ...] = ()) -> None:
    """Replace the state of `core` (a freshly built core of the class the snapshot was taken of)
    with the state in `data`, keeping its attributes named in `keep` (those encode skipped).
    Raises BadSnapshot if the bytes do not describe such a core; the core is then unchanged."""
    kept = {name: vars(core)[name] for name in keep if name in vars(core)}
    try:
        root = msgspec.msgpack.decode(data)
    except msgspec.DecodeError as exc:
        raise BadSnapshot(f"not a snapshot: {exc}") from None
    if not (isinstance(root, list) and root and root[0] == "O"):
        raise BadSnapshot("not a snapshot of an object")
    reader = _Reader(classes_of(core))
    try:  # every attribute is decoded before the core's own are replaced
        reader.value(root, into=core)
    except BadSnapshot:
        raise
    except (LookupError, TypeError, ValueError, AttributeError, ImportError, msgspec.DecodeError) as exc:
        raise BadSnapshot(f"the snapshot does not restore: {exc!r}") from None
    vars(core).update(kept)


class StateSnapshots:
    """Mixin for a core whose whole state is its attributes: snapshot(), restore() and origin()
    through this codec (ticktape.snapshots.Snapshottable). The attributes in snapshot_skips (its
    configuration) are not state: a restored core keeps its own, and origin() covers them."""

    snapshot_skips: ClassVar[tuple[str, ...]] = ("config",)

    def snapshot(self) -> bytes:
        """The core's state as deterministic bytes."""
        return encode(self, self.snapshot_skips)

    def restore(self, data: bytes) -> None:
        """Replace the state of this freshly built core with the snapshot's (BadSnapshot if it
        does not fit; the core is then unchanged)."""
        restore_into(self, data, self.snapshot_skips)

    def origin(self) -> str:
        """Of a freshly built core: a digest of its configuration and initial state."""
        return hashlib.sha256(encode(self)).hexdigest()
