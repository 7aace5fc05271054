"""Core purity checker: no wall clock, randomness or I/O in a core and in what it imports.

A core (services/<name>/core.py) must decide the same way every time it sees the same inputs, so
neither it nor any module it imports (transitively, within the packages given as `follow`) may
read the clock, draw random numbers or ids, or touch files, sockets, processes or the environment.

The check is static (AST) and resolves import aliases: `from time import time_ns`,
`import time as t; t.monotonic()`, `from datetime import datetime as dt; dt.now()`,
`getattr(time, "time")` and `f = time.time` are all reported at the line that uses them.

    problems = check_paths(module_closure(core, roots={"services": ROOT, ...}, follow=[...]))
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Importing any of these (or a submodule) is a problem by itself: they exist to do I/O, run
# concurrently, load code the walk cannot see, or produce values that differ from run to run.
_MODULES = """
    aiohttp asyncio concurrent ctypes fcntl ftplib glob http.client http.server httpx importlib
    locale logging mmap multiprocessing nats os platform psycopg psycopg_pool random requests
    secrets select selectors shutil signal socket sqlite3 ssl subprocess tempfile threading
    urllib.request uuid
"""
BANNED_MODULES = frozenset(_MODULES.split())

_TIME = """
    time time_ns monotonic monotonic_ns perf_counter perf_counter_ns process_time process_time_ns
    thread_time thread_time_ns clock_gettime clock_gettime_ns sleep localtime mktime ctime asctime
    strftime tzset
"""
# builtins: I/O, values that differ per process (str/bytes hash is salted, id is an address),
# and code the walk cannot see.
_BUILTIN = "open input print breakpoint hash id exec eval compile __import__"

# Names that read the clock, the environment or a stream, however they were imported or aliased
# (qualified by where they are defined).
BANNED_NAMES = frozenset(
    [
        *(f"time.{n}" for n in _TIME.split()),
        *(f"builtins.{n}" for n in _BUILTIN.split()),
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "datetime.date.fromtimestamp",  # local time zone
        "email.utils.formatdate",
        "email.utils.localtime",
        "email.utils.make_msgid",
        "io.open",
        "io.open_code",
        "io.FileIO",
        "codecs.open",
        "sys.stdin",
        "sys.stdout",
        "sys.stderr",
        "sys.argv",
        "sys.exit",
    ]
)

# Deterministic only with the argument that pins them: gmtime() reads the clock, gmtime(secs)
# does not; fromtimestamp(ts) uses the local time zone, fromtimestamp(ts, tz) does not.
_NEEDS_ARGS = {"time.gmtime": (1, None), "datetime.datetime.fromtimestamp": (2, "tz")}

_BUILTINS = frozenset(_BUILTIN.split())


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _banned_module(name: str) -> str | None:
    for banned in BANNED_MODULES:
        if name == banned or name.startswith(banned + "."):
            return banned
    return None


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes under `if TYPE_CHECKING:` (never executed)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def _locally_bound(tree: ast.AST) -> set[str]:
    """Every name the module binds anywhere (so a local `id` or `hash` is not the builtin)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler, ast.MatchAs, ast.MatchStar)
        ):
            bound.add(node.name or "")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
    return bound


class _Checker:
    def __init__(self, path: Path, tree: ast.Module) -> None:
        self.path = path
        self.tree = tree
        self.problems: list[Problem] = []
        self.aliases: dict[str, set[str]] = {}  # local name -> qualified names it may stand for
        self.skip = _type_checking_only(tree)
        self.bound = _locally_bound(tree)

    def report(self, node: ast.AST, what: str) -> None:
        self.problems.append(Problem(self.path, getattr(node, "lineno", 0), what))

    def run(self) -> list[Problem]:
        self.collect_imports()
        reported: set[int] = set()
        for node in ast.walk(self.tree):
            if id(node) in self.skip:
                continue
            if isinstance(node, ast.Call):
                self.check_call(node, reported)
            elif (
                isinstance(node, (ast.Name, ast.Attribute))
                and isinstance(node.ctx, ast.Load)
                and id(node) not in reported
            ):
                self.check_reference(node, reported)
        return sorted(set(self.problems), key=lambda p: (p.line, p.what))

    def collect_imports(self) -> None:
        for node in ast.walk(self.tree):
            if id(node) in self.skip:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if banned := _banned_module(alias.name):
                        self.report(node, f"imports {alias.name} (banned module {banned})")
                    if alias.asname:
                        self.aliases.setdefault(alias.asname, set()).add(alias.name)
                    else:
                        top = alias.name.split(".")[0]
                        self.aliases.setdefault(top, set()).add(top)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    banned = _banned_module(node.module) or _banned_module(full)
                    if alias.name == "*":
                        starred = [n for n in BANNED_NAMES if n.rsplit(".", 1)[0] == node.module]
                        if banned or starred:
                            self.report(node, f"imports * from {node.module} (banned {banned or starred[0]})")
                        continue
                    if banned:
                        self.report(node, f"imports {alias.name} from {node.module} (banned module {banned})")
                    elif full in BANNED_NAMES:
                        self.report(node, f"imports {full}")
                    self.aliases.setdefault(alias.asname or alias.name, set()).add(full)

    def qualnames(self, node: ast.expr) -> set[str]:
        """What a Name/Attribute chain may refer to, as dotted names rooted at a module."""
        if isinstance(node, ast.Name):
            found = set(self.aliases.get(node.id, ()))
            if node.id in _BUILTINS and node.id not in self.bound and node.id not in self.aliases:
                found.add(f"builtins.{node.id}")
            return found
        if isinstance(node, ast.Attribute):
            return {f"{base}.{node.attr}" for base in self.qualnames(node.value)}
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            return {f"{base}.{node.args[1].value}" for base in self.qualnames(node.args[0])}
        return set()

    def check_reference(self, node: ast.expr, reported: set[int]) -> None:
        for name in sorted(self.qualnames(node)):
            if name in BANNED_NAMES:
                self.report(node, f"uses {name}" + _spelled(node, name))
                reported.update(id(n) for n in ast.walk(node))
                return

    def check_call(self, call: ast.Call, reported: set[int]) -> None:
        targets = self.qualnames(call.func)
        if isinstance(call.func, ast.Name) and call.func.id == "getattr":
            targets |= self.qualnames(call)
            if any(t in BANNED_NAMES for t in targets):
                self.check_reference(call, reported)
                reported.update(id(n) for n in ast.walk(call.func))
                return
        for name in sorted(targets):
            if name in _NEEDS_ARGS:
                positional, keyword = _NEEDS_ARGS[name]
                pinned = len(call.args) >= positional or any(k.arg == keyword for k in call.keywords)
                if not pinned:
                    self.report(call, f"calls {name} without {'a time argument' if positional == 1 else 'a tz'}")
                    reported.update(id(n) for n in ast.walk(call.func))


def _spelled(node: ast.expr, name: str) -> str:
    text = ast.unparse(node)
    return "" if text == name else f" (as {text})"


# The one waiver: `id` used as an identity key while walking objects (a memo of what was seen),
# never as a value that reaches an output. The line must say so: `# purity: identity only`.
IDENTITY_WAIVER = "# purity: identity only"


def check_paths(paths: Iterable[Path]) -> list[Problem]:
    """Problems in each of `paths` (each file on its own; see module_closure for the walk)."""
    problems: list[Problem] = []
    for path in paths:
        source = Path(path).read_text()
        tree = ast.parse(source, filename=str(path))
        lines = source.splitlines()
        problems += [
            p
            for p in _Checker(Path(path), tree).run()
            if not (p.what.startswith("uses builtins.id") and IDENTITY_WAIVER in lines[p.line - 1])
        ]
    return problems


def module_name(path: Path, roots: Mapping[str, Path]) -> str | None:
    """Dotted name of `path` given roots (top-level package -> directory that contains it)."""
    path = path.resolve()
    for package, base in roots.items():
        try:
            rel = path.relative_to(Path(base).resolve() / package)
        except ValueError:
            continue
        parts = [package, *rel.with_suffix("").parts]
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return None


def _module_path(name: str, roots: Mapping[str, Path]) -> Path | None:
    parts = name.split(".")
    base = roots.get(parts[0])
    if base is None:
        return None
    rel = Path(base, *parts)
    for candidate in (rel.with_suffix(".py"), rel / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imported_names(path: Path, tree: ast.Module, roots: Mapping[str, Path]) -> list[str]:
    """Every module (and candidate submodule) the file imports at run time, absolute."""
    skip = _type_checking_only(tree)
    here = module_name(path, roots) or ""
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join([*base, module] if module else base)
            if module:
                names += [module] + [f"{module}.{a.name}" for a in node.names if a.name != "*"]
    return names


def module_closure(entry: Path, *, roots: Mapping[str, Path], follow: Iterable[str]) -> list[Path]:
    """`entry` and every module it imports, transitively, whose dotted name is in (or under) one
    of `follow`; importing a.b.c also runs a/__init__.py and a/b/__init__.py, so those count."""
    prefixes = tuple(follow)

    def followed(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    todo: list[Path] = [Path(entry)]
    seen: list[Path] = []
    parent = (module_name(Path(entry), roots) or "").rpartition(".")[0]
    while parent:  # importing the entry runs its packages' __init__ first
        if followed(parent) and (found := _module_path(parent, roots)) is not None:
            todo.append(found)
        parent = parent.rpartition(".")[0]
    while todo:
        path = todo.pop()
        if path in seen or not path.exists():
            continue
        seen.append(path)
        for name in _imported_names(path, ast.parse(path.read_text(), filename=str(path)), roots):
            while name:
                if followed(name) and (found := _module_path(name, roots)) is not None:
                    todo.append(found)
                name = name.rpartition(".")[0]
    return seen


def check_closure(entry: Path, *, roots: Mapping[str, Path], follow: Iterable[str]) -> list[Problem]:
    return check_paths(module_closure(entry, roots=roots, follow=follow))
