#!/usr/bin/env python3
"""Tests of scripts/check-imports.py on small crates written here: it must fail on a circle of
files, on one hidden behind a re-export, and on a circle of modules that no two files form, and
pass a crate that only imports downwards (unit-test modules aside)."""

import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

SCRIPT = Path(__file__).with_name("check-imports.py")


def check(files: dict) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "src"
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return subprocess.run([sys.executable, str(SCRIPT), str(root)],
                              capture_output=True, text=True)


class CheckImports(unittest.TestCase):
    def test_a_crate_that_imports_downwards_passes(self):
        r = check({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::X;\npub struct A(X);\n",
            "b.rs": "pub struct X;\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n",
        })
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("no import circles", r.stdout)

    def test_two_files_that_import_each_other_fail(self):
        r = check({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::X;\npub struct Y;\n",
            "b.rs": "use super::a::Y;\npub struct X;\n",
        })
        self.assertEqual(r.returncode, 1)
        self.assertIn("files that import each other", r.stdout)

    def test_a_circle_behind_a_re_export_fails(self):
        # `crate::eval::Evaluator` is defined in eval/evaluator.rs, which imports status.rs:
        # read as eval/mod.rs, the circle would be missed.
        r = check({
            "lib.rs": "mod eval;\nmod status;\n",
            "eval/mod.rs": "mod evaluator;\npub use evaluator::Evaluator;\n",
            "eval/evaluator.rs": "use crate::status::Report;\npub struct Evaluator;\n",
            "status.rs": "use crate::eval::Evaluator;\npub struct Report;\n",
        })
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("eval/evaluator.rs", r.stdout)
        self.assertIn("status.rs", r.stdout)

    def test_a_circle_of_modules_that_no_two_files_form_fails(self):
        # eval/x.rs imports status.rs, status.rs imports eval/y.rs: no two files import each
        # other, but the modules `eval` and `status` do.
        r = check({
            "lib.rs": "mod eval;\nmod status;\n",
            "eval/mod.rs": "mod x;\nmod y;\npub use y::Y;\n",
            "eval/x.rs": "use crate::status::S;\n",
            "eval/y.rs": "pub struct Y;\n",
            "status.rs": "use crate::eval::Y;\npub struct S;\n",
        })
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertNotIn("files that import each other", r.stdout)
        self.assertIn("modules of", r.stdout)
        self.assertIn("eval, status", r.stdout)


if __name__ == "__main__":
    unittest.main()
