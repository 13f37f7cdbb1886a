"""Official checkpoints on a fresh machine: each file's public source (a pinned URL and its sha256, the way
timm's pretrained configs pin theirs) and ``fetch`` into a cache folder.

The cache is ``$LMFN_BENCH_WEIGHTS``, else ``$XDG_CACHE_HOME/lmfn-bench/weights`` (``~/.cache/...``), laid
out ``<Model>/<file>`` like ``--weights-dir``; :func:`harness.zoo.create` looks there before
``--weights-dir``. A download goes to a temp file in the target folder, is hashed while it streams, and is
renamed into place only when its length and sha256 are right: a cut connection, a 404 or a wrong hash is a
:class:`~harness.errors.DownloadError` and leaves no file behind. ``$LMFN_BENCH_WEIGHTS_URL`` (or
``base_url``) replaces every source's host by ``<base>/<Model>/<file>`` (a mirror; the tests' loopback server).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.errors import DownloadError, UsageError

WEIGHTS_ENV = "LMFN_BENCH_WEIGHTS"
URL_ENV = "LMFN_BENCH_WEIGHTS_URL"


@dataclass(frozen=True)
class Source:
    folder: str  # <Model> folder in the cache (and in ../shared/weights)
    repo: str  # GitHub owner/name of the official code
    commit: str  # the pinned commit the file was taken from
    path: str  # folder of the file inside the repository ("" = root)
    sha256: str

    def url(self, file: str, base_url: str | None = None) -> str:
        if base_url:
            return f"{base_url.rstrip('/')}/{self.folder}/{file}"
        where = f"{self.path}/{file}" if self.path else file
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{where}"


def _repo(folder: str, repo: str, commit: str, path: str, files: dict[str, str]) -> dict[str, Source]:
    return {f: Source(folder, repo, commit, path, h) for f, h in files.items()}


# file name (as the zoo's ``checkpoints`` patterns name it) -> source; hashes of the files in ../shared/weights,
# commits from its SOURCES file (NGswin: the commit the public index holds pretrain/ at)
SOURCES: dict[str, Source] = {
    **_repo("BSRN", "xiaom233/BSRN", "2d63d5239c9fa9810b9c1aea93e98d42ece09efc", "experiments/pretrained_models", {
        "net_g_BSRN_x2.pth": "09bd1f85e017c7902e65a9c9770ee592efe3d013f6b5cf1fe7de8cabac4ba37d",
        "net_g_BSRN_x3.pth": "6eb73a300aaec5029bc0de7f5ae85c02b8dcd8fdaf438c77f90272939fecca7e",
        "net_g_BSRN_x4.pth": "47518e0f549f5696da0c84ca2d65bf50d789c7ac20e621909f5fd6c8c8d70bcb",
    }),
    **_repo("IMDN", "Zheng222/IMDN", "8f158e6a5ac9db6e5857d9159fd4a6c4214da574", "checkpoints", {
        "IMDN_x2.pth": "740b39653592bd3f49955a21cd9e16f2d37f2c413368cc09327601b8fbe42ce1",
        "IMDN_x3.pth": "11b1716a19bc16e5e353e1db798d476169338e631eb170c82d765559888cb028",
        "IMDN_x4.pth": "e660c38221147217a136debeb99eb304d62d9c0f73ac421ed66281b619719714",
    }),
    **_repo("LKDN", "stella-von/LKDN", "54df78a491142c2503d9738192b767ceced4d1a1", "experiments/pretrained_models/LKDN", {
        "LKDN-S_x4.pth": "39ff2c69cdeb40f842c9f93368caee3323a4309c350373edeb2dc9ef3cc05851",
        "LKDN_x2.pth": "02b429e795ad0863fdf21c6924c79344e30a39d637c44442d13124193b012e6b",
        "LKDN_x3.pth": "52835d49d402683ea2085c13e4afc3aca49f6b806ea29d6ed29b2238cd7874c5",
        "LKDN_x4.pth": "f534422583c99dad994fd7df897f6f872637218430cfedf6c2d2a072ea86dbd7",
    }),
    **_repo("NGswin", "rami0205/NGramSwin", "48c6b067cd85f9a55f4a577b8e06ffe3f001a33a", "pretrain", {
        "NGswin_x2.pth": "99b8c315a6135f03e2c9b062b100e2601dc7b6bdc20d9a723fec7b3ef97619bb",
        "NGswin_x3.pth": "8ebf328a540461477f30495da6d5303df18cd6db06b853640024951ed0e128ac",
    }),
    **_repo("PAN", "zhaohengyuan1/PAN", "4d045d18592c5771cd3990da88f292812774e538", "experiments/pretrained_models", {
        "PANx2_DF2K.pth": "fcf8ed48656abbaae46309ee91745684b80235a9c8b37a2d8fb0715a3ad3f00f",
        "PANx3_DF2K.pth": "86491751d73645a8816a0d6ec62ccde6b22ce5da930e36b3b87f5437167fbc89",
        "PANx4_DF2K.pth": "739fab99ee7b7058dab4d1b84aa2869bb9fc3995a1c08789c20355bee943833c",
    }),
    **_repo("RFDN", "njulj/RFDN", "7cf4e25b6633e81fd7e26891aeee2baca4f8f927", "trained_model", {
        "RFDN_AIM.pth": "11af8ec8ebd68689e90ef1e29044f9804c72d3bd9f7573820b7b26035782760c",
    }),
    **_repo("SAFMN", "sunny2109/SAFMN", "68c2182e4f8829a979886b0a1cab8f269f91b321", "NTIRE2023_ESR/model_zoo", {
        "team15_SAFMN.pth": "93fe3d7175ef1446cfcb3a884ddf8bbb4391f31190e9d1bf6c6c1cb768f8b565",
    }),
    **_repo("SMFANet", "Zheng-MJ/SMFANet", "a05e0bb554bbbb80cd27d8fd2b78d4228c657170", "pretrain", {
        "SMFANet_DF2K_100w_x2SR.pth": "daea7fc72a6e4aff80163768209ea5e56fd9705db9e6323f31822f24cd03902e",
        "SMFANet_DF2K_100w_x3SR.pth": "ae9953d36b4afb25211a23b02499dc029dfe64a2549c3426b29aaca14f17baa1",
        "SMFANet_DF2K_100w_x4SR.pth": "3141324e9ef6ebdd2338566b30ad034a3bf0c3c34e8030d4086ce4330c319402",
        "SMFANet_plus_DF2K_100w_x2SR.pth": "a52ba55ccec8f08cc2c354fdccfe0f7647ea70cc5a47a096b70269370a4f5c5c",
        "SMFANet_plus_DF2K_100w_x3SR.pth": "509c2af8855e9424d5676956ff5f5911c4e6439c53064e7a4cdbe062ddf2a8d4",
        "SMFANet_plus_DF2K_100w_x4SR.pth": "28a807e1ee1f46a990458efd813654ea0ba023148a8423e49847d9b5c4f98ca3",
    }),
    **_repo("VapSR", "zhoumumu/VapSR", "404c584e21ed92b3c9ddc3da8272d366c978148f", "", {
        "VapSR-S.pth": "4ca434fcdd4abb327e281b3f7930fe9802b36d3d6acfbe785843fee5db7e0cfe",
        "VapSR_X2.pth": "6cbe6af3c18c16c8a2c9b83f484761693884f972e29a4a20e84f64b84d0a10cc",
        "VapSR_X3.pth": "5c0052ea719174ea43e55f337655196fa1564ba2e0b04c3220a1312a18405a09",
        "VapSR_X4.pth": "fa6b84a174d8994eaaaa38156c9d751109b27c833bceeeb6018523e4d8a48ea0",
    }),
}  # fmt: skip


def weights_cache() -> Path:
    """The cache folder (not created here: looking must not write)."""
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lmfn-bench" / "weights"


def cached_checkpoint(file: str | None) -> Path | None:
    """The fetched copy of official ``file`` in the cache, if there is one."""
    src = SOURCES.get(file or "")
    if src is None:
        return None
    path = weights_cache() / src.folder / file
    return path if path.is_file() else None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> Path:
    """``url`` to ``dest`` through a temp file in ``dest``'s folder; renamed only with the right length and
    hash. Any failure is a DownloadError and removes the temp file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        h, got = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length")
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                out.write(chunk)
                h.update(chunk)
                got += len(chunk)
        if expected is not None and got != int(expected):
            raise DownloadError(
                f"download of {dest.name} was cut short: {got} of {expected} bytes from {url}"
            )
        if h.hexdigest() != sha256:
            raise DownloadError(
                f"{dest.name} from {url} has sha256 {h.hexdigest()[:16]}..., expected {sha256[:16]}..."
            )
        os.replace(tmp, dest)
        return dest
    except DownloadError:
        raise
    except urllib.error.HTTPError as e:
        raise DownloadError(f"cannot download {dest.name}: HTTP {e.code} {e.reason} from {url}") from None
    except (OSError, ValueError) as e:  # URLError, a cut connection (IncompleteRead), timeouts, a bad URL
        raise DownloadError(f"cannot download {dest.name} from {url}: {type(e).__name__}: {e}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


@dataclass(frozen=True)
class Fetched:
    file: str
    path: Path
    status: str  # "fetched" | "cached"


def fetch(
    files: list[str] | None = None, *, base_url: str | None = None, force: bool = False
) -> list[Fetched]:
    """Download official ``files`` (None: every file with a source) into the cache; files already there with
    the right hash are kept (``force`` downloads again)."""
    base_url = base_url or os.environ.get(URL_ENV) or None
    done = []
    for file in files or list(SOURCES):
        if file not in SOURCES:
            raise UsageError(f"no public source is known for {file}")
        src = SOURCES[file]
        dest = weights_cache() / src.folder / file
        if dest.is_file() and not force and sha256_of(dest) == src.sha256:
            done.append(Fetched(file, dest, "cached"))
            continue
        done.append(Fetched(file, download(src.url(file, base_url), dest, src.sha256), "fetched"))
    return done
