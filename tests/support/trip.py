"""A value's trip through the code, computed from the source (its imports, definitions and calls), never run.

Start at a function's parameter ("worker/handler.py:handler:event"). The walk reads that function's body in
the order it is written and follows every call that passes the value, or anything derived from it (a name
assigned from an expression that holds it, a loop over it, an attribute of it), into the called function,
where the matching parameters carry it on. Every branch is walked, one after the other. A call is followed
when its callee can be found from the code alone: a function of the same module, an imported function or
class (its `__init__`, or the classmethod called), a method of `self`, or a method of a parameter whose
annotation names one class of the project. A callee chosen only as the program runs (a union, a callback)
is not followed, and is listed.

Each function entered is an event; a STAY is a run of consecutive events in one room, and the trip's
ROOMS are where it stays: each worker file, and `db/`. A function already walked with the same parameters
is entered again (an event) but not walked again. A call from the worker into `db/` (the shared boundary,
installed as `jobstack`: a library to the worker) is a stop in `db/`, its function named with its module,
not walked further: what db does inside is db's own trip. The figures with each db module as a room of its
own are given beside them. `python -m tests.support.trip`
prints the worker's trip; `make trip` writes it into docs/architecture.md, and tests/test_worker_trip.py
holds the page to the code.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("worker", "db")


@dataclass(frozen=True)
class Function:
    module: str  # "worker.batch"
    qualname: str  # "process_batch", "DeferredCompletion.claim"
    node: ast.FunctionDef

    @property
    def file(self) -> str:
        return module_file(self.module)

    def params(self) -> list[str]:
        args = self.node.args
        return [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]


@dataclass
class Trip:
    events: list[tuple[str, str]] = field(default_factory=list)  # (file, function) in the order entered
    not_followed: list[str] = field(default_factory=list)  # calls passing the value whose callee is dynamic

    def stays(self, *, db_as_one_room: bool = True) -> list[tuple[str, list[str]]]:
        """The events grouped into runs of one room: (room, the functions entered there). A worker file is a
        room; `db/` is one room (the library the worker calls, its function named with its module), unless
        `db_as_one_room` is False: then each db module is a room of its own."""
        runs: list[tuple[str, list[str]]] = []
        for file, function in self.events:
            room, name = _room(file, function, db_as_one_room)
            if runs and runs[-1][0] == room:
                runs[-1][1].append(name)
            else:
                runs.append((room, [name]))
        return runs

    def rooms(self, *, db_as_one_room: bool = True) -> list[str]:
        return list(dict.fromkeys(_room(file, function, db_as_one_room)[0] for file, function in self.events))


def _room(file: str, function: str, db_as_one_room: bool) -> tuple[str, str]:
    if db_as_one_room and file.startswith("db/"):
        module = file.removeprefix("db/").removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        return "db/", f"{module}.{function}"
    return file, function


def module_file(module: str) -> str:
    path = Path(*module.split("."))
    return str(path / "__init__.py") if (ROOT / path).is_dir() else f"{path}.py"


@cache
def _parsed(module: str) -> ast.Module | None:
    path = ROOT / module_file(module)
    return ast.parse(path.read_text(), filename=str(path)) if path.exists() else None


@cache
def _index(module: str) -> tuple[dict[str, Function], dict[str, tuple[str, str | None]], dict[str, str]]:
    """The module's functions by qualified name, its imported names (local name -> (module, name or None
    for a module)), and its classes' names (class -> module)."""
    tree = _parsed(module)
    functions: dict[str, Function] = {}
    imports: dict[str, tuple[str, str | None]] = {}
    classes: dict[str, str] = {}
    if tree is None:
        return functions, imports, classes
    package = module.rsplit(".", 1)[0] if not module_file(module).endswith("__init__.py") else module
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = Function(module, node.name, node)
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = module
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    functions[f"{node.name}.{item.name}"] = Function(module, f"{node.name}.{item.name}", item)
    for found in ast.walk(tree):  # a function's own imports too (a lazy import is still a call's way out)
        if isinstance(found, ast.ImportFrom):
            source = _absolute(package, found.module, found.level)
            for alias in found.names:
                imports.setdefault(alias.asname or alias.name, (source, alias.name))
        elif isinstance(found, ast.Import):
            for alias in found.names:
                imports.setdefault(alias.asname or alias.name.split(".")[0], (alias.name, None))
    return functions, imports, classes


def _absolute(package: str, name: str | None, level: int) -> str:
    if level == 0:
        return name or ""
    base = package.split(".")
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _ours(module: str) -> bool:
    return module.split(".")[0] in PACKAGES


def _resolve_name(module: str, name: str) -> tuple[str, str] | None:
    """(module, top-level name) that `name` means in `module`, following re-exports of a package's face."""
    functions, imports, classes = _index(module)
    if name in functions or name in classes:
        return module, name
    if name in imports:
        source, imported = imports[name]
        if imported is None or not _ours(source):
            return None
        if _parsed(f"{source}.{imported}") is not None:  # `from worker import jobs`: a module
            return None
        return _resolve_name(source, imported) if source != module else None
    return None


def _callable(module: str, qualname: str) -> Function | None:
    """The function a call of (module, name) enters: the function, or a class's `__init__`."""
    functions, _, classes = _index(module)
    if qualname in functions:
        return functions[qualname]
    if qualname in classes:
        return functions.get(f"{qualname}.__init__")
    return None


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _target_names(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


class _Walker:
    def __init__(self) -> None:
        self.trip = Trip()
        self.walked: set[tuple[str, str, frozenset[str]]] = set()

    def enter(self, function: Function, carried: set[str], caller: Function | None = None) -> None:
        self.trip.events.append((function.file, function.qualname))
        key = (function.module, function.qualname, frozenset(carried))
        if key in self.walked or _across_the_boundary(caller, function):
            return
        self.walked.add(key)
        self._body(function, set(carried))

    def _body(self, function: Function, tainted: set[str]) -> None:
        annotations = {
            a.arg: a.annotation
            for a in [*function.node.args.args, *function.node.args.kwonlyargs]
            if a.annotation is not None
        }
        for node in _in_order(function.node.body):
            if isinstance(node, ast.Call):
                self._call(function, node, tainted, annotations)
            elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and node.value is not None:
                if _names(node.value) & tainted:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        tainted |= _target_names(target)
            elif isinstance(node, ast.For | ast.comprehension) and _names(node.iter) & tainted:
                tainted |= _target_names(node.target)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                if _names(node.context_expr) & tainted:
                    tainted |= _target_names(node.optional_vars)
            elif isinstance(node, ast.NamedExpr) and _names(node.value) & tainted:
                tainted.add(node.target.id)

    def _call(self, caller: Function, call: ast.Call, tainted: set[str], annotations: dict[str, ast.expr]) -> None:
        passed = [i for i, arg in enumerate(call.args) if _names(arg) & tainted]
        keywords = {kw.arg for kw in call.keywords if kw.arg and _names(kw.value) & tainted}
        if not passed and not keywords:
            return
        callee, bound = self._callee(caller, call.func, annotations)
        if callee is None:
            self.trip.not_followed.append(f"{caller.file}:{call.lineno} {ast.unparse(call.func)}")
            return
        params = callee.params()[1:] if bound else callee.params()
        carried = {params[i] for i in passed if i < len(params)} | (keywords & set(callee.params()))
        if carried:
            self.enter(callee, carried, caller)

    def _callee(
        self, caller: Function, func: ast.expr, annotations: dict[str, ast.expr]
    ) -> tuple[Function | None, bool]:
        """The function a call enters, and whether its first parameter is bound (a method, a class)."""
        module = caller.module
        if isinstance(func, ast.Name):
            found = _resolve_name(module, func.id)
            if found is None:
                return None, False
            target = _callable(*found)
            return target, target is not None and "." in target.qualname
        if not isinstance(func, ast.Attribute) or not isinstance(func.value, ast.Name):
            return None, False
        owner, attr = func.value.id, func.attr
        if owner == "self" and "." in caller.qualname:
            cls = caller.qualname.split(".")[0]
            return _index(module)[0].get(f"{cls}.{attr}"), True
        _, imports, _ = _index(module)
        if owner in imports and imports[owner][1] is None and _ours(imports[owner][0]):
            target = _callable(imports[owner][0], attr)  # `transport.send(...)`: a module's function
            return target, False
        found = _resolve_name(module, owner)  # `SqsRecord.of(...)`: a class's classmethod
        if found is not None and found[1] in _index(found[0])[2]:
            return _index(found[0])[0].get(f"{found[1]}.{attr}"), True
        annotation = annotations.get(owner)  # `trace.step(...)`, `trace: JobTrace`: a method of its class
        if isinstance(annotation, ast.Name):
            found = _resolve_name(module, annotation.id)
            if found is not None and found[1] in _index(found[0])[2]:
                return _index(found[0])[0].get(f"{found[1]}.{attr}"), True
        return None, False


def _across_the_boundary(caller: Function | None, callee: Function) -> bool:
    """A call from the worker into `db/` (the shared boundary, a library to it) is a stop in the db module
    it enters, not walked further: what db does inside is db's own trip, measured from its entry points."""
    return caller is not None and caller.module.split(".")[0] != "db" and callee.module.split(".")[0] == "db"


def _in_order(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node of `body` in the order the code is written, an argument before the call that takes it
    (the calls made to compute it come first), a loop's iterable before its body; nested functions are
    not entered (they run when called)."""
    for statement in body:
        yield from _node(statement)


def _node(node: ast.AST) -> Iterator[ast.AST]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
        return
    if isinstance(node, ast.For):
        yield from _node(node.iter)
        yield node
        for statement in [*node.body, *node.orelse]:
            yield from _node(statement)
        return
    if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
        for generator in node.generators:
            yield from _node(generator.iter)
            yield generator
            for condition in generator.ifs:
                yield from _node(condition)
        parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for part in parts:
            yield from _node(part)
        return
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        if node.value is not None:
            yield from _node(node.value)
        yield node
        return
    for child in ast.iter_child_nodes(node):
        yield from _node(child)
    yield node


def walk(start: str) -> Trip:
    """The trip of `FILE:FUNCTION:PARAM` (FUNCTION may be Class.method)."""
    file, qualname, param = start.split(":")
    module = file.removesuffix(".py").replace("/", ".")
    function = _index(module)[0][qualname]
    walker = _Walker()
    walker.enter(function, {param})
    return walker.trip


def table(trip: Trip) -> str:
    """The trip as docs/architecture.md shows it: one line a stay."""
    lines = []
    for number, (file, functions) in enumerate(trip.stays(), start=1):
        entered = ", ".join(dict.fromkeys(functions))
        lines.append(f"{number:>2}. {file:<24} {entered}")
    return "\n".join(lines)


WORKER_EVENT = "worker/handler.py:handler:event"
PAGE = ROOT / "docs" / "architecture.md"
BEGIN, END = "<!-- the worker's trip: begin -->", "<!-- the worker's trip: end -->"


def summary(trip: Trip) -> str:
    per_module = f"{len(trip.stays(db_as_one_room=False))} stays in {len(trip.rooms(db_as_one_room=False))} files"
    one_room = f"{len(trip.stays())} stays in {len(trip.rooms())} rooms"
    return f"{one_room} (db/ one of them; each db module a room: {per_module})"


def section(trip: Trip) -> str:
    """The page's section between its markers: the table and its totals, as computed."""
    return f"{BEGIN}\n```text\n{table(trip)}\n\n{summary(trip)}\n```\n{END}"


def written_section(page: str) -> str:
    return page[page.index(BEGIN) : page.index(END) + len(END)]


if __name__ == "__main__":
    trip = walk(WORKER_EVENT)
    if sys.argv[1:] == ["--write"]:  # make trip
        page = PAGE.read_text()
        PAGE.write_text(page.replace(written_section(page), section(trip)))
    print(table(trip))
    print(summary(trip))
