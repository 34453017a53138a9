"""The rooms of docs/architecture.md: who may import whom, and no import cycle in nnsim/."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nnsim"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, top_level_only: bool) -> set[str]:
    """The nnsim modules a file imports (at its top level, or anywhere)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found |= {name for name in names if name in MODULES}
    return found - {module_name(path)}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_in_nnsim():
    graph = {name: imports(path, top_level_only=False) for name, path in MODULES.items()}
    for name in graph:  # importing a package's module runs the package first
        graph[name] -= {parent for parent in graph[name] if name.startswith(parent + ".")}
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_engine_never_imports_the_app_and_widgets_never_import_layers_or_the_trainer():
    for name, path in MODULES.items():
        found = imports(path, top_level_only=False)
        if name.startswith(("nnsim.engine", "nnsim.data", "nnsim.lessons")):
            assert not {m for m in found if m.startswith("nnsim.tui")}, name
        if name.startswith("nnsim.tui.widgets"):
            forbidden = {
                "nnsim.engine.layers",
                "nnsim.engine.trainer",
                "nnsim.engine.models",
                "nnsim.engine.checkpoint",
            }
            assert not found & forbidden, (name, found & forbidden)


SHARED = {"nnsim", "nnsim.errors", "nnsim.resources", "nnsim.atomic", "nnsim.safe_npz"}
ROOMS = {  # what each room of docs/architecture.md may import, beyond itself and the shared modules
    "nnsim.data": set(),
    "nnsim.engine": {"nnsim.data"},
    "nnsim.lessons": {"nnsim.engine.activations", "nnsim.engine.experiment"},
}


def test_each_room_imports_only_the_rooms_below_it():
    for name, path in MODULES.items():
        room = next((r for r in ROOMS if name == r or name.startswith(r + ".")), None)
        if room is None:
            continue
        for imported in imports(path, top_level_only=False) - SHARED:
            if imported == room or imported.startswith(room + "."):
                continue
            assert any(imported == ok or imported.startswith(ok + ".") for ok in ROOMS[room]), (name, imported)


# ------------------------------------------------------------------ the floors of docs/architecture.md
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
UPWARD = {  # the imports that run up a floor, each named in docs/architecture.md with its reason
    ("nnsim.tui.widgets.vit_view", "nnsim.tui.screens.draw_digit"),
}


def floors(text: str) -> dict[str, int]:
    """Each room of the ```floors block (`data/`, `tui/*.py`, `cli.py`) and its floor."""
    block = text.split("```floors\n", 1)[1].split("```", 1)[0]
    rooms = {}
    for line in block.splitlines()[1:]:
        floor, *names = line.split()
        rooms.update({name: int(floor) for name in names})
    return rooms


def room_of(path: Path, rooms: dict[str, int]) -> str | None:
    """The most particular room that names the file: itself, then its folder's files, then the
    nearest package around it."""
    relative = path.relative_to(PACKAGE).as_posix()
    folder = path.parent.relative_to(PACKAGE).as_posix()
    candidates = [relative, f"{folder}/*.py" if folder != "." else "*.py"]
    parts = relative.split("/")[:-1]
    candidates += ["/".join(parts[:n]) + "/" for n in range(len(parts), 0, -1)]
    return next((c for c in candidates if c in rooms), None)


def test_the_floors_are_read_as_written():
    rooms = floors("```floors\nfloor  rooms\n  2    tui/*.py  cli.py\n  1    data/\n```")
    assert rooms == {"tui/*.py": 2, "cli.py": 2, "data/": 1}
    assert room_of(PACKAGE / "data" / "images.py", rooms) == "data/"
    assert room_of(PACKAGE / "tui" / "images.py", rooms) == "tui/*.py"
    assert room_of(PACKAGE / "tui" / "live" / "lab.py", rooms) is None  # not directly in tui/


def test_every_module_is_in_a_room_and_imports_only_rooms_on_lower_floors():
    rooms = floors(ARCHITECTURE.read_text(encoding="utf-8"))
    homeless = sorted(str(p.relative_to(PACKAGE)) for p in MODULES.values() if room_of(p, rooms) is None)
    assert not homeless, f"in no room of docs/architecture.md's floors: {homeless}"
    by_module = {name: room_of(path, rooms) for name, path in MODULES.items()}
    upward = set()
    for name, path in MODULES.items():
        room = by_module[name]
        for imported in imports(path, top_level_only=False):
            other = by_module[imported]
            if other != room and rooms[other] >= rooms[room] and (rooms[room], rooms[other]) != (0, 0):
                upward.add((name, imported))
    assert upward == UPWARD, f"imports not going down a floor: {sorted(upward - UPWARD)}"


# ------------------------------------------------------------------ the engine's doors, in docs/architecture.md
def engine_doors(text: str) -> dict[str, set[str]]:
    """Each room of the ```engine-doors block and the only engine modules it may import."""
    block = text.split("```engine-doors\n", 1)[1].split("```", 1)[0]
    return {room: set(modules) for room, *modules in (line.split() for line in block.splitlines()[1:])}


def engine_module(path: str) -> str:
    """engine/backends/warm.py → nnsim.engine.backends.warm"""
    return "nnsim." + path.removesuffix(".py").replace("/", ".")


def test_the_doors_are_read_as_written():
    doors = engine_doors("```engine-doors\nroom  modules\ntui/widgets/lab/   engine/config.py  engine/events.py\n```")
    assert doors == {"tui/widgets/lab/": {"engine/config.py", "engine/events.py"}}
    assert engine_module("engine/backends/warm.py") == "nnsim.engine.backends.warm"


def test_the_apps_rooms_import_only_their_engine_modules_and_only_tui_live_talks_to_the_trainer():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    rooms, doors = floors(text), engine_doors(text)
    assert "tui/widgets/lab/" in doors and "tui/live/" not in doors
    assert not any("engine/trainer.py" in modules for modules in doors.values())
    for name, path in MODULES.items():
        room = room_of(path, rooms)
        engine = {m for m in imports(path, top_level_only=False) if m.startswith("nnsim.engine")}
        if room in doors:
            allowed = {engine_module(module) for module in doors[room]}
            assert engine <= allowed, (name, engine - allowed)
        if name.startswith("nnsim.tui") and not name.startswith("nnsim.tui.live"):
            assert "nnsim.engine.trainer" not in engine, name
