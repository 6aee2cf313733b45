"""Builds vigilo's C library into the package, so that `pip install ./bindings/python` is all a
Python user runs (as with packages built by maturin or setuptools-rust).

While the package is built (`pip install`, `pip wheel`), `cargo build --release -p vigilo-c`
runs in the checkout this folder belongs to and `libvigilo_c` is copied into the package; the
wheel is then specific to the platform. The environment may change that:

- ``VIGILO_C_LIBRARY``: bundle this already built library instead of building one;
- ``VIGILO_C_PROFILE``: the cargo profile to build with (``release`` by default, ``debug``);
- ``CARGO_TARGET_DIR`` is honoured, and ``VIGILO_CARGO_SELECT`` replaces ``-p vigilo-c`` as in
  ``bindings/c/install.sh``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def library_name() -> str:
    if sys.platform == "darwin":
        return "libvigilo_c.dylib"
    if sys.platform == "win32":
        return "vigilo_c.dll"
    return "libvigilo_c.so"


def built_library() -> Path:
    """The library to bundle: the one named by VIGILO_C_LIBRARY, or one cargo builds now."""
    given = os.environ.get("VIGILO_C_LIBRARY")
    if given:
        path = Path(given)
        if not path.is_file():
            raise SystemExit(f"VIGILO_C_LIBRARY={given}: no such file")
        return path
    if not (ROOT / "bindings" / "c" / "Cargo.toml").is_file():
        raise SystemExit(
            f"{ROOT} is not a vigilo checkout: build the package from bindings/python in one, "
            "or set VIGILO_C_LIBRARY to a built libvigilo_c"
        )
    cargo = shutil.which("cargo")
    if cargo is None:
        raise SystemExit(
            "building vigilo's C library needs Rust's cargo (https://rustup.rs); or set "
            "VIGILO_C_LIBRARY to a built libvigilo_c"
        )
    profile = os.environ.get("VIGILO_C_PROFILE", "release")
    if profile not in ("release", "debug"):
        raise SystemExit(f"VIGILO_C_PROFILE={profile}: say release or debug")
    select = shlex.split(os.environ.get("VIGILO_CARGO_SELECT", "-p vigilo-c"))
    command = [cargo, "build", "--locked", *select]
    if profile == "release":
        command.append("--release")
    print("building the C library:", " ".join(command), file=sys.stderr)
    subprocess.run(command, cwd=ROOT, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    path = target / profile / library_name()
    if not path.is_file():
        raise SystemExit(f"cargo did not leave {path}")
    return path


class BuildWithLibrary(build_py):
    """Copies the C library into the package beside ``__init__.py``."""

    def run(self) -> None:
        super().run()
        source = built_library()
        dest = Path(self.build_lib) / "vigilo" / library_name()
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for this platform, not as pure Python."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
