"""Bad checkpoints given without --model (eval / profile / inspect / train --init): a truncated file, a pickle
that would run code (never executed), an unknown architecture and an ambiguous one are each a one-line error,
exit 2, no traceback, the store untouched (the style of tests/test_cli_errors.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from harness import zoo
from harness.cli import app

runner = CliRunner()


class _Marker:
    """Unpickling this would create ``path``: the file must never appear."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _data(root: Path) -> Path:
    hr = root / "benchmark" / "Set5" / "HR"
    hr.mkdir(parents=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(hr / "a.png")
    return root


def _bad_file(kind: str, tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / f"{kind}.pth"
    if kind == "truncated":
        torch.save({"params": zoo.build("imdn", 4).state_dict()}, path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return path, "cannot read checkpoint"
    if kind == "pickle":
        torch.save({"params": _Marker(tmp_path / "executed")}, path)
        return path, "cannot read checkpoint"
    if kind == "unknown":
        torch.save({"params": {"encoder.conv.weight": torch.zeros(8, 3, 3, 3)}}, path)
        return path, "unknown architecture"
    torch.save(zoo.build("pan", 2).state_dict(), path)  # ambiguous: PAN x2 and x3 share every shape
    return path, "fits 2 zoo entries: pan x2, pan x3"


COMMANDS = {
    "eval": lambda f, d, s: ["eval", "--checkpoint", str(f), "-d", "Set5", "--data-root", str(d), "--store", str(s)],
    "profile": lambda f, d, s: ["profile", "--checkpoint", str(f), "--no-latency", "--store", str(s)],
    "inspect": lambda f, d, s: ["inspect", str(f)],
    "train": lambda f, d, s: ["train", "--init", str(f), "--profile", "smoke", "--train-data", "default",
                              "--out", str(s.parent / "run"), "--store", str(s)],
}  # fmt: skip


@pytest.mark.parametrize("kind", ["truncated", "pickle", "unknown", "ambiguous"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_bad_checkpoint_is_one_line_exit_2(kind: str, command: str, tmp_path: Path) -> None:
    path, needle = _bad_file(kind, tmp_path)
    store = tmp_path / "r.db"
    res = runner.invoke(app, COMMANDS[command](path, _data(tmp_path / "data"), store))
    text = res.stderr if hasattr(res, "stderr") else res.output
    assert res.exit_code == 2, text
    assert "Traceback" not in text and res.exception is None or isinstance(res.exception, SystemExit)
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in text and path.name in text, text
    assert not store.exists()  # nothing written, not even an empty store
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "executed").exists()  # the pickle's code never ran
