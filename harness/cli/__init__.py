"""``lmfn-bench``: one thin module per command (parse, call the library, print); the app is assembled in
:mod:`harness.cli.main`. Nothing outside this package imports it, and commands never call each other.

``app`` is resolved lazily so ``python -m harness.cli.train`` (the torchrun entry) does not import the
train command twice.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from harness.cli.main import app

        return app
    raise AttributeError(name)
