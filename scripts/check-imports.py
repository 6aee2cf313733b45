#!/usr/bin/env python3
"""Fails if two source files of a crate import each other (directly or in a longer circle).

A file imports another when it names it in a `use crate::…` or `use super::…` path (or an
inline `crate::a::b::` path). Module files are resolved the Rust 2018 way (`a.rs` or
`a/mod.rs`, children in `a/`). Run from the repository root; prints every circle found.
"""

import re
import sys
from pathlib import Path

CRATES = ["core/src", "bindings/c/src", "plugins/host/src", "plugins/build/src", "benches/src",
          "examples/host-agent/src", "examples/service/src"]


def module_of(root: Path, path: Path) -> tuple:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def resolve(modules: dict, target: tuple):
    """The longest prefix of `target` that is a module file."""
    for n in range(len(target), 0, -1):
        if target[:n] in modules:
            return target[:n]
    return None


def imports(text: str, here: tuple, is_dir_module: bool):
    # Drop comments and string literals crudely: enough for use paths.
    text = re.sub(r"//[^\n]*", "", text)
    found = set()
    # Paths after `crate::` or `super::` (possibly several supers).
    for m in re.finditer(r"\b(crate|(?:super::)+)((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)", text):
        head, tail = m.group(1), m.group(2).split("::")
        if head == "crate":
            base = ()
        else:
            ups = head.count("super")
            # `super` of a file module `a/b.rs` (module a::b) is `a`; of `a/mod.rs` (module a) is ``.
            base = here[: len(here) - ups]
        found.add(base + tuple(tail))
    # `use super::{x, y}` and `use crate::{a, b::c}` groups.
    for m in re.finditer(r"\buse\s+(crate|(?:super::)*super)::\{([^;]*)\};", text):
        head, group = m.group(1), m.group(2)
        base = () if head == "crate" else here[: len(here) - head.count("super")]
        for item in re.split(r"[,{}\s]+", group):
            item = item.strip()
            if item and item not in ("self",):
                found.add(base + tuple(item.split("::")))
    return found


def main() -> int:
    circles = []
    for crate in CRATES:
        root = Path(crate)
        if not root.is_dir():
            continue
        files = [p for p in root.rglob("*.rs")]
        modules = {module_of(root, p): p for p in files}
        edges = {}
        for mod, path in modules.items():
            targets = set()
            for t in imports(path.read_text(), mod, path.name == "mod.rs"):
                r = resolve(modules, t)
                # An import of an ancestor (a parent's re-export) is not an edge to a file
                # that could import us back through its body; skip the crate root and parents.
                if r is not None and r != mod and r != mod[: len(r)]:
                    targets.add(r)
            edges[mod] = targets
        # Circles: strongly connected components with more than one file.
        index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

        def visit(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in edges.get(v, ()):
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
                if len(comp) > 1:
                    comps.append(comp)

        sys.setrecursionlimit(10000)
        for v in list(edges):
            if v not in index:
                visit(v)
        for comp in comps:
            names = sorted(str(modules[m]) for m in comp)
            circles.append(names)
    for names in circles:
        print("files that import each other:", ", ".join(names))
    if circles:
        return 1
    print("no import circles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
