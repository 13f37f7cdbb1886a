"""Official weights on a fresh machine: `weights fetch` against a loopback HTTP server serving ../shared/weights
(hash right, hash wrong, connection cut mid-file, 404); a failed download leaves no file behind; eval finds
the fetched file with no --weights-dir."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from harness import tasks, weights, zoo
from harness.cli import app
from harness.errors import DownloadError
from harness.store import Store

runner = CliRunner()


def _handler(root: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """/ok/<Model>/<file>: the file; /wrong/...: another file's bytes; /cut/...: half the bytes with the
        full Content-Length, then the connection closes; anything missing: 404."""

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            mode, _, rel = self.path.lstrip("/").partition("/")
            path = root / rel
            if mode not in ("ok", "wrong", "cut") or not path.is_file():
                self.send_error(404, "Not Found")
                return
            data = path.read_bytes()
            if mode == "wrong":
                data = data[::-1]  # same length, other bytes
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if mode == "cut" else data)
            if mode == "cut":
                self.close_connection = True

        def log_message(self, *args: object) -> None:  # keep pytest's output clean
            pass

    return Handler


@pytest.fixture
def server(weights_dir: Path) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(weights_dir))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_pinned_hashes_are_those_of_the_reference_files(weights_dir: Path) -> None:
    for file, src in weights.SOURCES.items():
        path = weights_dir / src.folder / file
        assert hashlib.sha256(path.read_bytes()).hexdigest() == src.sha256, file
        assert src.url(file).startswith(f"https://raw.githubusercontent.com/{src.repo}/{src.commit}/")
        assert len(src.commit) == 40
    # every official file the zoo names has a source, and every source is a file the zoo names
    named = {f for spec in zoo.registry().values() for f in spec.checkpoints.values()}
    assert set(weights.SOURCES) <= named
    assert {p.name for p in weights_dir.rglob("*.pth")} & named <= set(weights.SOURCES)


def test_fetch_ok_then_cached_and_found_by_create(server: str, cache: Path, weights_dir: Path) -> None:
    got = tasks.fetch_weights(["lkdn"], base_url=f"{server}/ok")
    assert [g.status for g in got] == ["fetched"] * 3
    for g in got:
        assert g.path.read_bytes() == (weights_dir / "LKDN" / g.file).read_bytes()
    assert _files(cache) == sorted(g.path for g in got)  # no temp files left
    assert {g.status for g in tasks.fetch_weights(["lkdn"], base_url=f"{server}/ok")} == {"cached"}
    model = zoo.create("lkdn", 4, require_weights=True)  # no --weights-dir: the cache serves
    assert zoo.zoo_info(model).checkpoint == str(cache / "LKDN" / "LKDN_x4.pth")


@pytest.mark.parametrize(
    "mode,message", [("wrong", "has sha256"), ("cut", "cut short|IncompleteRead"), ("missing", "HTTP 404")]
)
def test_failed_download_is_an_error_and_leaves_no_file(
    server: str, cache: Path, mode: str, message: str
) -> None:
    with pytest.raises(DownloadError, match=message):
        tasks.fetch_weights(["rfdn-aim"], base_url=f"{server}/{mode}")
    assert _files(cache) == []
    assert weights.cached_checkpoint("RFDN_AIM.pth") is None


def test_a_corrupt_cached_file_is_fetched_again(server: str, cache: Path) -> None:
    dest = cache / "RFDN" / "RFDN_AIM.pth"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"not the file")
    (got,) = tasks.fetch_weights(["rfdn-aim"], base_url=f"{server}/ok")
    assert got.status == "fetched" and weights.sha256_of(dest) == weights.SOURCES["RFDN_AIM.pth"].sha256


def test_cli_fetch_and_eval_from_the_cache(server: str, cache: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["weights", "fetch", "pan", "--base-url", f"{server}/ok", "--json"])
    assert res.exit_code == 0, res.output
    assert len(_files(cache)) == 3
    hr = tmp_path / "data" / "benchmark" / "Set5" / "HR"
    hr.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(hr / "a.png")
    store = tmp_path / "r.db"
    res = runner.invoke(app, ["eval", "--model", "pan", "-s", "2", "-d", "Set5", "--data-root",
                              str(tmp_path / "data"), "--store", str(store)])  # fmt: skip
    assert res.exit_code == 0, res.output
    (row,) = Store(store).rows()
    assert row["model"] == "pan" and row["checkpoint"] == str(cache / "PAN" / "PANx2_DF2K.pth")


def test_cli_fetch_404_is_one_line_exit_2(server: str, cache: Path) -> None:
    res = runner.invoke(app, ["weights", "fetch", "smfanet", "--base-url", f"{server}/missing"])
    text = res.stderr if hasattr(res, "stderr") else res.output
    assert res.exit_code == 2 and "Traceback" not in text
    assert len([ln for ln in text.strip().splitlines() if ln.strip()]) == 1 and "HTTP 404" in text
    assert _files(cache) == []
