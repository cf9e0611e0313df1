#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Lists import circles between the crate's modules.

Every `crate::a::b` path in a file under src/ is an edge from the file's module to the module it
names. Modules are compared at the given depth (1: top-level modules such as `check`, 2: their
children such as `config::validate`); an edge into a module's own ancestor or descendant is not
counted. Exits 1 when a circle exists and prints each strongly connected set.
"""
import pathlib
import re
import sys

DEPTH = int(sys.argv[1]) if len(sys.argv) > 1 else 1
SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
PATH = re.compile(r"\bcrate((?:::[a-z_][a-z0-9_]*)+)")
USE_GROUP = re.compile(r"use crate::\{([^;]*)\};", re.S)


def module_of(file: pathlib.Path) -> tuple:
    rel = file.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts in (["lib"], ["main"]) or parts[0] == "bin":
        return ()
    if parts[-1] == "mod":
        parts.pop()
    return tuple(parts)


def known(mod: tuple) -> bool:
    base = SRC.joinpath(*mod)
    return base.with_suffix(".rs").exists() or (base / "mod.rs").exists()


def resolve(path: tuple) -> tuple:
    """The longest prefix of `path` that is a module."""
    for n in range(len(path), 0, -1):
        if known(path[:n]):
            return path[:n]
    return ()


def edges():
    for file in SRC.rglob("*.rs"):
        src_mod = module_of(file)
        if not src_mod:
            continue
        text = re.sub(r"//.*", "", file.read_text())
        targets = [tuple(m.group(1).split("::")[1:]) for m in PATH.finditer(text)]
        for group in USE_GROUP.finditer(text):
            for item in re.split(r",(?![^{]*\})", group.group(1)):
                head = item.strip().split("::")
                if head and head[0]:
                    targets.append(tuple(h.strip("{} ") for h in head))
        for target in targets:
            dst = resolve(target)
            if not dst:
                continue
            a, b = src_mod[:DEPTH], dst[:DEPTH]
            if a == b or a[: len(b)] == b or b[: len(a)] == a:
                continue
            yield a, b, file.relative_to(SRC)


def sccs(graph):
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def main():
    graph, where = {}, {}
    for a, b, f in edges():
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
        where.setdefault((a, b), set()).add(str(f))
    circles = [c for c in sccs(graph) if len(c) > 1]
    for comp in circles:
        names = sorted("::".join(m) for m in comp)
        print("circle:", " ".join(names))
        members = set(comp)
        for (a, b), files in sorted(where.items()):
            if a in members and b in members:
                print(f"  {'::'.join(a)} -> {'::'.join(b)}  ({', '.join(sorted(files))})")
    if not circles:
        print(f"no import circles between modules at depth {DEPTH} ({len(graph)} modules)")
    return 1 if circles else 0


if __name__ == "__main__":
    sys.exit(main())
