#!/usr/bin/env python3
"""Counts the public API of crate `vigilo` from rustdoc's JSON output.

    cargo +nightly rustdoc -p vigilo --lib -- -Z unstable-options --output-format json
    cargo +nightly rustdoc -p vigilo-collector --lib --features serde,facade -- \
        -Z unstable-options --output-format json
    python3 scripts/public-api.py target/doc/vigilo.json target/doc/vigilo_collector.json

Each file counts the items its crate defines (a re-export of another crate's item is counted
in that crate's file), then the sum; `--by-module` adds the count under each top-level module.

Walks from the crate root through public modules and re-exports, and counts what a user can
name: modules, types, traits, free functions, constants (the *items*), the inherent methods and
associated constants of public types, and public fields and enum variants. Trait
implementations are not counted.
"""

import collections
import json
import sys


def count(path: str):
    """(counts by kind, counts by top-level module) of one rustdoc JSON file."""
    doc = json.load(open(path))
    index = doc["index"]
    seen, counts, modules = set(), collections.Counter(), collections.Counter()
    top = [""]

    def visit(item_id, method=False, depth=0):
        key = str(item_id)
        if key in seen or key not in index:
            return
        item = index[key]
        if item["crate_id"] != 0:
            return
        kind = next(iter(item["inner"]))
        inner = item["inner"][kind]
        if kind == "use":
            if inner.get("id") is not None:
                visit(inner["id"])
            return
        if item["visibility"] != "public" and kind not in ("variant",):
            return
        seen.add(key)
        if depth == 1 and kind == "module":
            top[0] = item.get("name") or ""
        modules[top[0] if depth >= 1 else "(root)"] += 1
        if kind == "function" and method:
            counts["methods"] += 1
        elif kind in ("struct_field", "variant"):
            counts["fields and variants"] += 1
        elif kind == "assoc_const":
            counts["methods"] += 1
        else:
            counts["items"] += 1
        if kind == "module":
            for child in inner["items"]:
                visit(child, depth=depth + 1)
                if depth == 0:
                    top[0] = "(root)"
        elif kind in ("struct", "enum"):
            if kind == "struct":
                fields = inner["kind"]
                if isinstance(fields, dict) and "plain" in fields:
                    for f in fields["plain"]["fields"]:
                        visit(f, depth=depth + 1)
                elif isinstance(fields, dict) and "tuple" in fields:
                    for f in fields["tuple"]:
                        if f is not None:
                            visit(f, depth=depth + 1)
            else:
                for v in inner["variants"]:
                    visit(v, depth=depth + 1)
            for impl_id in inner["impls"]:
                impl = index.get(str(impl_id), {}).get("inner", {}).get("impl")
                if impl and impl.get("trait") is None and not impl.get("is_synthetic") \
                        and impl.get("blanket_impl") is None:
                    for child in impl["items"]:
                        visit(child, method=True, depth=depth + 1)
        elif kind == "trait":
            for child in inner["items"]:
                visit(child, method=True, depth=depth + 1)

    visit(doc["root"])
    return counts, modules


def main(args) -> None:
    by_module = "--by-module" in args
    paths = [a for a in args if a != "--by-module"] or ["target/doc/vigilo.json"]
    total, total_modules = collections.Counter(), collections.Counter()
    for path in paths:
        counts, modules = count(path)
        total.update(counts)
        total_modules.update(modules)
        if len(paths) > 1:
            print(f"{path}: {sum(counts.values())}")
    print(f"{total['items']} items, {total['methods']} methods, "
          f"{total['fields and variants']} fields and variants: {sum(total.values())} in all")
    if by_module:
        for name, n in sorted(total_modules.items()):
            print(f"  {name}: {n}")


if __name__ == "__main__":
    main(sys.argv[1:])
