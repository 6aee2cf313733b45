#!/usr/bin/env python3
"""Fails if source files or modules of a crate import each other (directly or in a longer circle).

A file imports another when it names a path into it: `use crate::…`, `use super::…`, or an
inline `crate::a::b::` path. A path is followed to the file that *defines* what it names: through
module files (`a.rs` or `a/mod.rs`, children in `a/`) and through the re-exports on the way
(`pub use evaluator::Evaluator;` in `eval/mod.rs` sends `crate::eval::Evaluator` to
`eval/evaluator.rs`), so a re-export does not hide an edge.

Two checks, both must hold:
- files: no two files import each other, directly or around a longer circle;
- modules: at every level of the module tree, no two sibling modules (a file, or a folder with
  everything in it) import each other. `eval/` and `status.rs` importing each other fails even
  when no single file of `eval/` imports `status.rs` back.

Run from the repository root (or pass crate source folders); prints every circle found.
"""

import re
import sys
from pathlib import Path

CRATES = ["collector/src", "core/src", "plugins/host/src", "plugins/build/src", "benches/src", "bindings/c/src",
          "examples/host-agent/src", "examples/service/src", "examples/canary/src"]

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def module_of(root: Path, path: Path) -> tuple:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip(text: str) -> str:
    """Comments, string literals and unit-test modules out: enough for paths. A file's
    `#[cfg(test)] mod … { … }` is not part of what the file builds on."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+" + IDENT + r"\s*\{", text):
        if m.start() < i:
            continue
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        out.append(text[i:m.start()])
        i = j
    out.append(text[i:])
    return "".join(out)


def expand_group(prefix: str, body: str):
    """`a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`."""
    out, depth, start = [], 0, 0
    parts = []
    for i, ch in enumerate(body):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    for p in parts:
        p = p.strip()
        if not p:
            continue
        m = re.match(r"^(.*?)::\{(.*)\}$", p, flags=re.S)
        if m:
            out.extend(expand_group(prefix + m.group(1).strip() + "::", m.group(2)))
        else:
            p = re.sub(r"\s+as\s+" + IDENT + "$", "", p)
            out.append(prefix + p)
    return out


def use_paths(text: str):
    """Every path of every `use` item, groups expanded, with whether it is re-exported."""
    for m in re.finditer(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", text):
        public = m.group(1) is not None
        body = re.sub(r"\s+", "", m.group(2))
        g = re.match(r"^(.*?)::\{(.*)\}$", body)
        paths = expand_group(g.group(1) + "::", g.group(2)) if g else [body]
        for p in paths:
            yield p, public


class Crate:
    def __init__(self, root: Path):
        self.root = root
        self.files = {module_of(root, p): p for p in root.rglob("*.rs")}
        self.text = {m: strip(p.read_text()) for m, p in self.files.items()}
        # Per module file: re-exported name -> absolute path (a tuple) it stands for.
        self.reexports = {}
        for mod, text in self.text.items():
            names = {}
            for path, public in use_paths(text):
                if not public:
                    continue
                absolute = self.absolute(mod, path.split("::"))
                if absolute and absolute[-1] not in ("self", "*"):
                    names[absolute[-1]] = absolute
            self.reexports[mod] = names

    def absolute(self, here: tuple, segs: list):
        """`segs` as a path from the crate root, seen from module `here`."""
        if not segs:
            return None
        if segs[0] == "crate":
            return tuple(segs[1:])
        base = here
        i = 0
        while i < len(segs) and segs[i] == "super":
            base = base[:-1]
            i += 1
        if i > 0:
            return base + tuple(segs[i:])
        if segs[0] == "self":
            return here + tuple(segs[1:])
        if here + (segs[0],) in self.files:  # a child module named without `self::`
            return here + tuple(segs)
        return None  # an external crate or a local name

    def defining_file(self, path: tuple, depth: int = 0):
        """The module file that defines what `path` names, following re-exports."""
        if depth > 20:
            return None
        mod = ()
        for i, seg in enumerate(path):
            if mod + (seg,) in self.files:
                mod = mod + (seg,)
                continue
            target = self.reexports.get(mod, {}).get(seg)
            if target is not None and target != mod + (seg,):
                return self.defining_file(target + tuple(path[i + 1:]), depth + 1)
            return mod
        return mod

    def edges(self):
        out = {}
        for mod, text in self.text.items():
            targets = set()
            paths = [p for p, _ in use_paths(text)]
            paths += [m.group(0) for m in re.finditer(
                r"\b(?:crate|(?:super::)+super|super)(?:::" + IDENT + ")+", text)]
            for p in paths:
                absolute = self.absolute(mod, p.split("::"))
                if absolute is None:
                    continue
                f = self.defining_file(absolute)
                # An ancestor (the crate root, a parent's module file) is not an edge: it is
                # where the module is declared, not something that imports back.
                if f is not None and f != mod and f != mod[: len(f)]:
                    targets.add(f)
            out[mod] = targets
        return out


def circles(nodes, edges):
    """Strongly connected components with more than one node (Tarjan)."""
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
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return comps


def check(root: Path):
    crate = Crate(root)
    file_edges = crate.edges()
    found = []
    for comp in circles(list(file_edges), file_edges):
        found.append("files that import each other: " +
                     ", ".join(str(crate.files[m]) for m in comp))
    # Module level: at each folder, its children (files and folders) as nodes.
    parents = {m[:-1] for m in crate.files if m} | {()}
    for parent in sorted(parents):
        child = lambda m: m[: len(parent) + 1]
        edges = {}
        for src, targets in file_edges.items():
            if len(src) <= len(parent) or src[: len(parent)] != parent:
                continue
            for t in targets:
                if len(t) <= len(parent) or t[: len(parent)] != parent:
                    continue
                a, b = child(src), child(t)
                if a != b:
                    edges.setdefault(a, set()).add(b)
        for comp in circles(list(edges), edges):
            names = ["::".join(m) for m in comp]
            where = "::".join(parent) or "the crate root"
            found.append(f"modules of {root} under {where} that import each other: "
                         + ", ".join(names))
    return found


def main(args) -> int:
    roots = [Path(a) for a in args] or [Path(c) for c in CRATES]
    found = []
    for root in roots:
        if root.is_dir():
            found.extend(check(root))
    for line in found:
        print(line)
    if found:
        return 1
    print("no import circles")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
