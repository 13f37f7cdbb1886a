"""Training: data pipeline, recipe, checkpoints, exact resume after SIGTERM / SIGKILL, NaN guard, --init."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import typer
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn
from typer.testing import CliRunner

from harness import zoo
from harness.checkpoint import load_into
from harness.cli.train import command as train_command
from harness.errors import UsageError
from harness.train import (
    MODEL_FILE,
    PROFILES,
    STATE_FILE,
    NonFiniteLossError,
    TrainConfig,
    Trainer,
    layered_config,
    load_recipe,
    parse_sets,
    read_state,
    resume_config,
    run_provenance,
    train,
)
from harness.train.loop import _ema_avg_fn
from harness.zoo import build

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------- recipe


def test_paper_profile_matches_paper_text(need_shared):
    text = (need_shared("reference/lmfn-paper.txt")).read_text()
    para = next(line for line in text.splitlines() if "Adan" in line and "EMA" in line)
    p = PROFILES["paper"]
    m = re.search(r"crop (\d+) patches with (\d+)\s*×\s*(\d+)", para)
    assert m and (p.batch_size, p.patch_size, p.patch_size) == tuple(map(int, m.groups()))
    assert float(re.search(r"\(EMA\).*?(0\.\d+)", para).group(1)) == p.ema
    mant, exp = re.search(r"constant (\d+) × 10[−-](\d+)", para).groups()
    assert p.lr == pytest.approx(int(mant) * 10.0 ** -int(exp))
    mant, exp = re.search(r"for (\d+)\s*×\s*10(\d) training iterations", para).groups()
    assert p.iters == int(mant) * 10 ** int(exp)
    assert "ℒ1" in para and "Adan" in para
    assert p.betas == (0.98, 0.92, 0.99) and p.weight_decay == 0.0  # DESIGN.md: Adan betas, no decay


def test_ema_matches_torch_ema_and_warms_up():
    torch.manual_seed(0)
    a, b = [torch.randn(5) for _ in range(2)], [torch.randn(5) for _ in range(2)]
    mine, ref = [t.clone() for t in a], [t.clone() for t in a]
    _ema_avg_fn(0.999, warmup=False)(mine, b, torch.tensor(7))
    get_ema_multi_avg_fn(0.999)(ref, b, torch.tensor(7))
    for x, y in zip(mine, ref, strict=True):
        torch.testing.assert_close(x, y)
    w = [t.clone() for t in a]
    _ema_avg_fn(0.999, warmup=True)(w, b, torch.tensor(0))  # decay (1+0)/(10+0) = 0.1
    torch.testing.assert_close(w[0], 0.1 * a[0] + 0.9 * b[0])


def test_overrides_and_resolution():
    cfg = TrainConfig.from_profile("lka-msm-ifm", "short", lr=1e-3, iters=None)
    assert (cfg.lr, cfg.iters, cfg.batch_size) == (
        1e-3,
        PROFILES["short"].iters,
        PROFILES["short"].batch_size,
    )
    # a cell pattern without @scheme means LMFN's default IFF scheme (the zoo names schemes explicitly);
    # the zoo folds the spelling, and the model the trainer builds (zoo.create) carries the folded name
    from lmfn.variants import parse_variant

    folded = "@".join(parse_variant("lka-msm-ifm"))
    assert zoo.get_spec("lka-msm-ifm").name == zoo.get_spec("lmfn").name == folded
    assert zoo.zoo_info(zoo.create("lka-msm-ifm", 2)).name == folded
    with pytest.raises(ValueError, match="unknown profile"):
        TrainConfig.from_profile("lkdn", "fast")
    with pytest.raises(ValueError, match="--ema"):
        TrainConfig.from_profile("lkdn", "smoke", ema=1.0)


def test_recipe_file_and_sets_layer_between_the_profile_and_the_flags(tmp_path):
    """profile < --config recipe < --set < explicit flags; each value typed like its TrainConfig field."""
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('profile = "short"\nema = 0.99\nlog-every = 7\nlr = 1e-3\nbetas = [0.9, 0.99, 0.999]\n'
                      "max_minutes = 5\nckpt_every = 11\n")  # fmt: skip
    rec = load_recipe(recipe)
    assert rec["log_every"] == 7 and rec["betas"] == (0.9, 0.99, 0.999) and rec["max_minutes"] == 5.0
    sets = parse_sets(["lr=2e-3", "log_every=3", "max_minutes=", "deterministic=true",
                       "final_eval=Set5,Set14", "betas=0.98,0.92,0.99", "val_dataset=none"])  # fmt: skip
    assert sets["deterministic"] is True and sets["final_eval"] == ["Set5", "Set14"]
    cfg = layered_config({"model": "lkdn", "lr": 4e-3, "iters": None, "train_data": ["default"]}, rec, sets)
    assert cfg.profile == "short" and cfg.batch_size == PROFILES["short"].batch_size  # profile named by the recipe
    assert (cfg.ema, cfg.ckpt_every) == (0.99, 11)  # recipe over profile
    assert (cfg.log_every, cfg.betas, cfg.deterministic) == (3, (0.98, 0.92, 0.99), True)  # --set over recipe
    assert cfg.lr == 4e-3 and cfg.iters == PROFILES["short"].iters  # a flag over --set; None = not given
    assert cfg.max_minutes is None  # an empty --set clears an optional field (the profile's 27 min)
    assert cfg.val_dataset == "none" and cfg.train_data == ["default"]


def test_bad_recipe_and_set_values_name_the_key(tmp_path):
    with pytest.raises(UsageError, match=r"--set: unknown key 'nosuch'; valid keys: .*batch_size.*warmup_iters"):
        parse_sets(["nosuch=1"])
    with pytest.raises(UsageError, match=r"--set: iters='abc' is not an integer"):
        parse_sets(["iters=abc"])
    with pytest.raises(UsageError, match=r"betas='0.9,0.99' is not 3 comma-separated numbers"):
        parse_sets(["betas=0.9,0.99"])
    with pytest.raises(UsageError, match=r"deterministic='maybe' is not true or false"):
        parse_sets(["deterministic=maybe"])
    with pytest.raises(UsageError, match="--set takes key=value, got 'lr'"):
        parse_sets(["lr"])
    bad = tmp_path / "bad.toml"
    bad.write_text("emma = 0.9\n")
    with pytest.raises(UsageError, match=r"recipe .*bad.toml: unknown key 'emma'"):
        load_recipe(bad)
    bad.write_text("ema = true\n")  # a TOML bool is no number
    with pytest.raises(UsageError, match=r"ema=True is not a number"):
        load_recipe(bad)
    bad.write_text("ema = \n")
    with pytest.raises(UsageError, match="cannot read recipe"):
        load_recipe(bad)


# ----------------------------------------------------------------------------------------------- warm start


def test_warmup_ramps_the_lr_linearly_then_holds(tmp_path):
    cfg = TrainConfig.from_profile("lkdn", "smoke", scale=2, iters=6, lr=1e-3, warmup_iters=4,
                                   train_data=["default"], val_dataset="none", out=str(tmp_path))  # fmt: skip
    seen: list[float] = []
    trainer = Trainer(cfg, model=_NaNAfter(2, k=10**9), echo=lambda m: None)
    trainer.run(on_step=lambda it, n, info: seen.append(trainer.opt.param_groups[0]["lr"]))
    torch.testing.assert_close(seen, [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in log if r["event"] == "step"] == seen  # smoke logs every step


def test_cosine_schedule_anneals_to_zero_at_iters_after_the_warmup(tmp_path):
    cfg = TrainConfig.from_profile("lkdn", "smoke", scale=2, iters=6, lr=1e-3, warmup_iters=2, lr_schedule="cosine",
                                   train_data=["default"], val_dataset="none", out=str(tmp_path))  # fmt: skip
    seen: list[float] = []
    trainer = Trainer(cfg, model=_NaNAfter(2, k=10**9), echo=lambda m: None)
    trainer.run(on_step=lambda it, n, info: seen.append(trainer.opt.param_groups[0]["lr"]))
    # step i (0-based) uses 1e-3 * min(1, (i+1)/2) * (1 + cos(pi i / 6)) / 2: by hand
    expect = [5e-4, 9.330127e-4, 7.5e-4, 5e-4, 2.5e-4, 6.69873e-5]
    torch.testing.assert_close(seen, expect, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="--lr-schedule must be one of constant, cosine"):
        TrainConfig.from_profile("lkdn", "smoke", lr_schedule="step")


# ----------------------------------------------------------------------------------------------- NaN guard


class _NaNAfter(nn.Module):
    """A tiny SR net whose output turns NaN from its ``k``-th call on."""

    def __init__(self, scale: int, k: int) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)
        self.up = nn.PixelShuffle(scale)
        self.k, self.calls = k, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        y = self.up(self.body(x))
        return y * float("nan") if self.calls >= self.k else y


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = TrainConfig.from_profile("lkdn", "smoke", scale=2, iters=10, ckpt_every=2, train_data=["default"],
                                   val_dataset="none", out=str(tmp_path))  # fmt: skip
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at iteration 5.*iteration 4"):
        train(cfg, model=_NaNAfter(2, k=5), echo=lambda m: None)
    st = read_state(tmp_path / STATE_FILE)
    assert st["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in st["model"].values())
    params = torch.load(tmp_path / MODEL_FILE, weights_only=True)
    assert set(params) == {"params", "params_ema"}
    assert all(torch.isfinite(v).all() for v in params["params_ema"].values())
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1]["event"] == "nonfinite" and log[-1]["iter"] == 5


def test_input_range_255_model_sees_0_255_in_training_and_validation(tmp_path, torch_globals):
    """Bug: rfdn-aim (input range 255) was trained on [0, 1] input but validated at 0-255. Now zoo.create owns
    the range: the network sees 0-255 in both, and takes / returns [0, 1] outside."""
    cfg = TrainConfig.from_profile("rfdn-aim", "smoke", scale=4, iters=1, batch_size=1, patch_size=16,
                                   train_data=["default"], val_dataset="none", out=str(tmp_path), threads=1)  # fmt: skip
    trainer = Trainer(cfg, echo=lambda m: None)
    seen: dict[str, float] = {}

    def first_conv(net: nn.Module) -> nn.Module:
        return next(m for m in net.modules() if isinstance(m, nn.Conv2d))

    def record(key: str):  # noqa: ANN202
        return lambda m, args: seen.__setitem__(key, max(seen.get(key, 0.0), float(args[0].max())))

    first_conv(trainer.raw).register_forward_pre_hook(record("train"))
    first_conv(trainer.ema.module).register_forward_pre_hook(record("val"))
    lr, hr = next(trainer.batches(start=0))
    assert float(lr.max()) <= 1.0
    trainer.step(lr, hr)
    res = trainer.validate("Default")
    assert seen["train"] > 1.5 and seen["val"] > 1.5, seen
    assert res.dataset == "Default" and res.psnr > 0


def test_store_rows_record_the_run_as_run_provenance_reads_it(tmp_path):
    """Train rows per validation and one final eval row (final_eval [] = the validation set); their extra is
    what run_provenance reads back from the run folder."""
    from harness.store import Store

    db, run = tmp_path / "r.db", tmp_path / "run"
    cfg = TrainConfig.from_profile("lkdn", "smoke", scale=2, iters=2, val_every=1, train_data=["default"],
                                   val_dataset="Default", store=str(db), out=str(run))  # fmt: skip
    assert cfg.final_eval == []
    res = train(cfg, model=_NaNAfter(2, k=10**9), echo=lambda m: None)
    rows = Store(db).rows()
    assert sorted(r["extra"]["iteration"] for r in rows if r["kind"] == "train") == [1, 2]
    (final,) = [r for r in rows if r["kind"] == "eval"]
    assert (final["dataset"], final["source"], final["model"]) == ("Default", "trained", "_NaNAfter")
    assert final["psnr"] == res.final[0]["psnr"] and final["checkpoint"] == str((run / MODEL_FILE).resolve())
    prov = run_provenance(run / MODEL_FILE)
    assert prov is not None and (prov["iteration"], prov["profile"], prov["run"]) == (2, "smoke", str(run.resolve()))
    assert {k: final["extra"][k] for k in prov} == prov
    assert run_provenance(tmp_path / "loose.pth") is None


# ----------------------------------------------------------------------------------------------- resume


def _wait_for_checkpoint(proc: subprocess.Popen, out: Path, at_least: int, timeout: float = 120.0) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"run ended (rc {proc.returncode}) before checkpoint {at_least}: "
                                 f"{proc.stderr.read()[-2000:]}")  # fmt: skip
        log = out / "log.jsonl"
        if log.is_file():
            its = [r["iter"] for r in map(json.loads, log.read_text().splitlines()[:-1] or [])
                   if r["event"] == "checkpoint"]  # fmt: skip
            if its and its[-1] >= at_least:
                return its[-1]
        time.sleep(0.01)
    raise AssertionError("timed out waiting for a checkpoint")


def _fast_cfg(out: Path, n: int) -> TrainConfig:
    return TrainConfig.from_profile("lkdn", "smoke", scale=2, iters=n, batch_size=2, patch_size=16, lr=2e-3,
                                    ckpt_every=1, train_data=["default"], val_dataset="none", threads=1,
                                    deterministic=True, out=str(out))  # fmt: skip


def test_sigterm_then_sigkill_then_resume_is_exact(tmp_path, torch_globals):
    n = 8
    out = tmp_path / "interrupted"

    # 1) SIGTERM (sent to this process from inside step 3): the loop saves where it is and returns
    def term_at_3(it: int, total: int, info: dict) -> None:
        if it == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    msgs: list[str] = []
    res = train(_fast_cfg(out, n), echo=msgs.append, on_step=term_at_3)
    assert (res.reason, res.iteration, res.completed) == ("signal", 3, False)
    assert read_state(out / STATE_FILE)["iteration"] == 3 and "SIGTERM: saved iteration 3" in msgs[-1]
    # 2) resume in a subprocess, SIGKILL it mid-way: no chance to save, the last checkpoint must do
    cmd = [sys.executable, "-m", "harness.cli.train", "--resume", "--out", str(out)]
    p = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)  # fmt: skip
    _wait_for_checkpoint(p, out, 5)
    assert p.poll() is None
    p.kill()
    p.communicate(timeout=60)
    k2 = read_state(out / STATE_FILE)["iteration"]
    assert 5 <= k2 < n
    # 3) resume to the end (in process)
    msgs = []
    train(resume_config(out), resume=True, echo=msgs.append)
    assert msgs[0] == f"resumed {out / STATE_FILE} at iteration {k2}"
    got = read_state(out / STATE_FILE)
    # the same run uninterrupted
    train(_fast_cfg(tmp_path / "straight", n), echo=lambda m: None)
    ref = read_state(tmp_path / "straight" / STATE_FILE)
    assert (got["iteration"], got["samples_seen"]) == (ref["iteration"], ref["samples_seen"]) == (n, 2 * n)
    for part in ("model", "ema"):
        for k, v in ref[part].items():
            assert torch.equal(got[part][k], v), f"{part}.{k} differs after resume"
    for pid, st in ref["optimizer"]["state"].items():
        for k, v in st.items():
            assert torch.equal(torch.as_tensor(got["optimizer"]["state"][pid][k]), torch.as_tensor(v)), (
                pid,
                k,
            )
    # and it really trained: the EMA lags the live weights
    assert any(not torch.equal(v, got["ema"]["module." + k]) for k, v in got["model"].items())


# ----------------------------------------------------------------------------------------------- CLI / store


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("train")(train_command)
    app.command("noop")(lambda: None)  # two commands: keep "train" as a subcommand
    return app


def test_cli_errors_are_one_line(tmp_path):
    r = CliRunner().invoke(_app(), ["train", "--profile", "fast", "--no-store"])
    assert r.exit_code == 2 and "unknown profile 'fast'" in r.output
    r = CliRunner().invoke(_app(), ["train", "--resume", "--out", str(tmp_path / "nothing"), "--no-store"])
    assert r.exit_code == 2 and "no training state to resume" in r.output
    r = CliRunner().invoke(_app(), ["train", "--variant", "nosuchnet", "--profile", "smoke", "--no-store",
                                    "--train-data", "default", "--out", str(tmp_path / "x")])  # fmt: skip
    assert r.exit_code == 2 and "unknown model 'nosuchnet'" in r.output


def test_cli_config_file_and_sets_reach_the_run(tmp_path, torch_globals):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('ema = 0.5\nlog_every = 1\niters = 5\nscale = 2\nprofile = "smoke"\n')
    out = tmp_path / "run"
    r = CliRunner().invoke(_app(), ["train", "--variant", "lkdn", "--config", str(recipe), "--set", "log_every=2",
                                    "--set", "iters=3", "--iters", "2", "--train-data", "default",
                                    "--val-dataset", "none", "--threads", "1", "--no-store", "--out", str(out),
                                    "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["iteration"] == 2  # the flag over --set and recipe
    saved = read_state(out / STATE_FILE)["config"]
    assert (saved["ema"], saved["log_every"], saved["iters"], saved["scale"]) == (0.5, 2, 2, 2)
    assert saved["store"] == ""


def test_cli_unknown_set_key_is_a_one_line_error():
    r = CliRunner().invoke(_app(), ["train", "--set", "nosuch=1", "--no-store"])
    assert r.exit_code == 2, r.output
    assert r.output.strip().count("\n") == 0 and "--set: unknown key 'nosuch'; valid keys:" in r.output
    r = CliRunner().invoke(_app(), ["train", "--set", "iters=many", "--no-store"])
    assert r.exit_code == 2 and "--set: iters='many' is not an integer" in r.output


@pytest.mark.slow
def test_trained_rows_and_checkpoint_reload(data_root, tmp_path, torch_globals):
    """Validation rows (kind train, with iteration) and the final eval row land in the store; the exported
    checkpoint loads strictly into the zoo model and re-evaluates to the stored number."""
    from harness.evaluate import evaluate_model
    from harness.store import Store

    db = tmp_path / "r.db"
    cfg = TrainConfig.from_profile("lkdn", "smoke", scale=4, iters=4, val_every=2, data_root=str(data_root),
                                   train_data=["default"], val_dataset="Set5", store=str(db),
                                   out=str(tmp_path / "run"))  # fmt: skip
    res = train(cfg, echo=lambda m: None)
    rows = Store(db).rows()
    train_rows = sorted((r for r in rows if r["kind"] == "train"), key=lambda r: r["extra"]["iteration"])
    assert [r["extra"]["iteration"] for r in train_rows] == [2, 4]
    (final,) = [r for r in rows if r["kind"] == "eval"]
    assert (
        final["source"] == "trained" and final["extra"]["profile"] == "smoke" and final["extra"]["iters"] == 4
    )
    model = load_into(build("lkdn", 4), tmp_path / "run" / MODEL_FILE)
    again = evaluate_model(model, "Set5", 4, data_root)
    assert again.psnr == pytest.approx(final["psnr"], abs=1e-9) == res.final[0]["psnr"]
    assert res.curve == [(2, train_rows[0]["psnr"]), (4, train_rows[1]["psnr"])]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_new_run_never_overwrites_an_existing_one(tmp_path, torch_globals):
    # was: `train` into an --out holding a run, without --resume, silently replaced its model and state
    out = tmp_path / "run"
    base = ["train", "--variant", "lkdn", "--profile", "smoke", "--scale", "2", "--train-data", "default",
            "--val-dataset", "none", "--no-store", "--out", str(out), "--threads", "1"]  # fmt: skip
    r = CliRunner().invoke(_app(), [*base, "--iters", "4"])
    assert r.exit_code == 0, r.output
    before = _tree(out)
    assert {MODEL_FILE, STATE_FILE} <= set(before)
    r = CliRunner().invoke(_app(), [*base, "--iters", "2"])
    assert r.exit_code == 2 and "--resume" in r.output and "--overwrite" in r.output, r.output
    assert "Traceback" not in r.output and _tree(out) == before  # nothing touched
    # another instance of the class: the library entry refuses too (a second run started from a script)
    cfg = TrainConfig.from_profile("lkdn", "smoke", scale=2, iters=2, train_data=["default"], val_dataset="none",
                                   store="", out=str(out))  # fmt: skip
    with pytest.raises(UsageError, match="already holds a training run"):
        train(cfg, echo=lambda m: None)
    assert _tree(out) == before
    r = CliRunner().invoke(_app(), [*base, "--iters", "2", "--resume", "--overwrite"])
    assert r.exit_code == 2 and "give only one of them" in r.output
    # --overwrite starts from scratch: a 2-iteration run, its log holding one start
    r = CliRunner().invoke(_app(), [*base, "--iters", "2", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert read_state(out / STATE_FILE)["iteration"] == 2
    starts = [ln for ln in (out / "log.jsonl").read_text().splitlines() if '"event": "start"' in ln]
    assert len(starts) == 1


def test_resume_with_another_variant_or_scale_is_an_error_not_ignored(tmp_path, torch_globals):
    # was: `--resume --variant X` on a run of another variant silently ignored --variant
    out = tmp_path / "run"
    base = ["train", "--profile", "smoke", "--train-data", "default", "--val-dataset", "none", "--no-store",
            "--out", str(out), "--threads", "1"]  # fmt: skip
    assert CliRunner().invoke(_app(), [*base, "--variant", "lkdn", "--scale", "2", "--iters", "2"]).exit_code == 0
    before = _tree(out)
    for extra, needle in ((["--variant", "msm"], "model msm"), (["--scale", "3"], "scale 3")):
        r = CliRunner().invoke(_app(), ["train", "--resume", "--out", str(out), "--no-store", *extra])
        assert r.exit_code == 2 and "holds a lkdn x2 run" in r.output and needle in r.output, r.output
        assert _tree(out) == before
    # the same network under another spelling is no mistake
    r = CliRunner().invoke(_app(), ["train", "--resume", "--out", str(out), "--variant", "LKDN", "--iters", "3",
                                    "--no-store", "--threads", "1"])  # fmt: skip
    assert r.exit_code == 0, r.output
