"""Each cpu kernel is compiled once, whoever calls it.

Numba compiles a kernel again for every literal it is called with from another kernel: with
`_gemm_rows(..., True)` in one place and `(..., False)` in another it compiled _gemm_rows twice
(0.7 s each, on an empty cache), and an argument left to its default is one more version. A
constant argument is therefore passed as a run-time value, `np.int64(0)` or `np.bool_(True)`.
This reads the package's source for calls that break that: cheaper than compiling it to see.
"""

import ast
from pathlib import Path

import pytest

CPU = Path(__file__).resolve().parents[2] / "nnsim" / "engine" / "backends" / "cpu"


def kernels(trees) -> dict[str, ast.FunctionDef]:
    """The package's @njit functions that compile on their own (not inline="always"), by name."""
    found = {}
    for tree in trees:
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                name = call.func if call else decorator
                inline = call is not None and any(keyword.arg == "inline" for keyword in call.keywords)
                if isinstance(name, ast.Name) and name.id == "njit" and not inline:
                    found[node.name] = node
    return found


def literal(argument: ast.expr) -> bool:
    """A number, True/False, -1, or a module constant (CAPITALS): Numba types each as a Literal."""
    if isinstance(argument, ast.UnaryOp):
        argument = argument.operand
    return isinstance(argument, ast.Constant) or (isinstance(argument, ast.Name) and argument.id.isupper())


def calls_that_compile_another_version(sources: dict[str, str]) -> list[str]:
    trees = {name: ast.parse(text) for name, text in sources.items()}
    compiled = kernels(trees.values())
    found = []
    for file, tree in trees.items():
        for caller in (node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in compiled):
            for call in (node for node in ast.walk(caller) if isinstance(node, ast.Call)):
                callee = compiled.get(call.func.id) if isinstance(call.func, ast.Name) else None
                if callee is None:
                    continue
                where = f"{file}:{call.lineno} {callee.name}"
                found += [f"{where}({ast.unparse(a)})" for a in call.args if literal(a)]
                found += [f"{where}({k.arg}={ast.unparse(k.value)})" for k in call.keywords if literal(k.value)]
                if len(call.args) + len(call.keywords) < len(callee.args.args):
                    found.append(f"{where}: an argument left to its default")
    return found


def test_no_kernel_calls_another_with_a_literal_or_a_default():
    sources = {path.name: path.read_text(encoding="utf-8") for path in sorted(CPU.glob("*.py"))}
    assert calls_that_compile_another_version(sources) == []


@pytest.mark.parametrize(
    "call",
    ["_f(a, True)", "_f(a, 0)", "_f(a, -1)", "_f(a, BIAS_ROWS)", "_f(a, flag=False)", "_f(a)"],
)
def test_the_reader_finds_each_kind_of_call(call):
    source = f"@njit(**_JIT)\ndef _f(a, flag=True):\n    pass\n\n\n@njit(**_JIT)\ndef _g(a):\n    {call}\n"
    assert len(calls_that_compile_another_version({"k.py": source})) == 1
    runtime = source.replace(call, "_f(a, np.bool_(True))")
    assert calls_that_compile_another_version({"k.py": runtime}) == []
