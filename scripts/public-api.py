#!/usr/bin/env python3
"""Counts the public API of crate `vigilo` from rustdoc's JSON output.

    cargo +nightly rustdoc -p vigilo --lib -- -Z unstable-options --output-format json
    python3 scripts/public-api.py target/doc/vigilo.json

Walks from the crate root through public modules and re-exports, and counts what a user can
name: modules, types, traits, free functions, constants (the *items*), the inherent methods and
associated constants of public types, and public fields and enum variants. Trait
implementations are not counted.
"""

import collections
import json
import sys


def main(path: str) -> None:
    doc = json.load(open(path))
    index = doc["index"]
    seen, counts = set(), collections.Counter()

    def visit(item_id, method=False):
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
                visit(child)
        elif kind in ("struct", "enum"):
            if kind == "struct":
                fields = inner["kind"]
                if isinstance(fields, dict) and "plain" in fields:
                    for f in fields["plain"]["fields"]:
                        visit(f)
                elif isinstance(fields, dict) and "tuple" in fields:
                    for f in fields["tuple"]:
                        if f is not None:
                            visit(f)
            else:
                for v in inner["variants"]:
                    visit(v)
            for impl_id in inner["impls"]:
                impl = index.get(str(impl_id), {}).get("inner", {}).get("impl")
                if impl and impl.get("trait") is None and not impl.get("is_synthetic") \
                        and impl.get("blanket_impl") is None:
                    for child in impl["items"]:
                        visit(child, method=True)
        elif kind == "trait":
            for child in inner["items"]:
                visit(child, method=True)

    visit(doc["root"])
    total = sum(counts.values())
    print(f"{counts['items']} items, {counts['methods']} methods, "
          f"{counts['fields and variants']} fields and variants: {total} in all")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "target/doc/vigilo.json")
