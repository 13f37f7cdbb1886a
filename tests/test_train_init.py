"""Warm starts: --init, block-wise distillation, the KD teacher, each model's own checkpoint keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.checkpoint import load_into
from harness.errors import CheckpointMismatchError
from harness.train import (
    TrainConfig,
    Trainer,
    train,
    warm_start,
)
from harness.zoo import build

REPO = Path(__file__).resolve().parents[1]




# ----------------------------------------------------------------------------------------------- recipe


def test_init_loads_matching_tensors_and_reports_the_rest(tmp_path):
    src = build("lkdn", 2)
    torch.save({"params_ema": src.state_dict(), "params": {}}, tmp_path / "x2.pth")
    dst = build("lkdn", 3)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    rep = warm_start(dst, tmp_path / "x2.pth")
    sd_src, sd_dst = src.state_dict(), dst.state_dict()
    same = [k for k in sd_dst if sd_src[k].shape == sd_dst[k].shape]  # only the upsampler differs x2 -> x3
    assert rep.loaded == same and len(rep.misshaped) == len(sd_dst) - len(same) > 0
    for k in sd_dst:
        torch.testing.assert_close(sd_dst[k], sd_src[k] if k in same else before[k], rtol=0, atol=0)
    text = "\n".join(rep.lines())
    assert f"loaded {len(same)}/{len(sd_dst)} tensors" in text and "shape differs" in text


@pytest.mark.slow
def test_init_lmfn_from_official_lkdn(weights_dir, tmp_path, torch_globals):
    ckpt = weights_dir / "LKDN" / "LKDN_x4.pth"
    if not ckpt.is_file():
        pytest.skip(f"missing {ckpt}")
    official = torch.load(ckpt, map_location="cpu", weights_only=True)["params_ema"]
    msgs: list[str] = []
    cfg = TrainConfig.from_profile("lka-msm-ifm", "smoke", scale=4, iters=1, train_data=["default"],
                                   val_dataset="none", out=str(tmp_path / "run"), init=str(ckpt))  # fmt: skip
    res = train(cfg, echo=msgs.append)
    rep = res.init_report
    own = build("lmfn", 4).state_dict()
    expect = [k for k in own if k in official and official[k].shape == own[k].shape]
    assert rep.loaded == expect and 0 < len(expect) < len(own)
    assert rep.missing == [k for k in own if k not in official]
    assert msgs[0].startswith(f"init from LKDN_x4.pth: loaded {len(expect)}/{len(own)} tensors")
    assert any("not in checkpoint, kept fresh" in m for m in msgs)


def test_init_distill_trains_only_the_fresh_blocks_toward_the_teacher(tmp_path, torch_globals):
    torch.manual_seed(1)
    ckpt = tmp_path / "lkdn_x2.pth"
    torch.save({"params_ema": build("lkdn", 2).state_dict()}, ckpt)
    cfg = TrainConfig.from_profile("lka-msm-ifm", "smoke", scale=2, iters=1, batch_size=2, patch_size=16,
                                   train_data=["default"], val_dataset="none", out=str(tmp_path / "run"),
                                   init=str(ckpt), init_distill=12, distill_teacher="lkdn", threads=1,
                                   distill_patch_size=12)  # fmt: skip
    trainer = Trainer(cfg, echo=lambda m: None)
    shapes: set[tuple[int, ...]] = set()
    trainer.teacher().register_forward_pre_hook(lambda m, args: shapes.add(tuple(args[0].shape)))
    teacher = load_into(build("lkdn", 2), ckpt).eval()
    x = torch.rand(2, 3, 16, 16)

    def block_gap() -> float:  # the distillation loss on a fixed batch, recomputed by hand
        ins: dict[str, torch.Tensor] = {}
        h = teacher.fea_conv(x.repeat(1, 4, 1, 1))
        gap = 0.0
        for name in teacher.block_names:
            ins[name], h = h, getattr(teacher, name)(h)
            if name in fresh:
                gap += float((getattr(trainer.raw, name)(ins[name]) - h).abs().mean())
        return gap

    fresh = ["B2", "B3", "B5", "B6", "B8"]  # MSM, IFM, MSM, IFM, MSM: the LKA blocks loaded whole
    before = {k: v.clone() for k, v in trainer.raw.state_dict().items()}
    with torch.no_grad():
        gap0 = block_gap()
    assert trainer.distill_new_blocks() == fresh
    with torch.no_grad():
        gap1 = block_gap()
    assert gap1 < 0.5 * gap0  # measured: 2.28 -> 0.40 after 12 steps
    after = trainer.raw.state_dict()
    changed = {k.split(".")[0] for k in after if not torch.equal(after[k], before[k])}
    assert changed == set(fresh)  # every fresh block moved, nothing else did
    assert trainer.samples_seen == 12 * 2
    assert shapes == {(2, 3, 12, 12)}  # --distill-patch-size, not the 16x16 of end-to-end training
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["event"] == "distill"] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]


def test_init_distill_needs_init_and_a_teacher_that_fits(tmp_path):
    with pytest.raises(
        ValueError, match="--init-distill and --kd-weight need --init CHECKPOINT and --distill-teacher"
    ):
        TrainConfig.from_profile("lmfn", "smoke", init_distill=5, init="x.pth")
    with pytest.raises(ValueError, match=r"--distill-patch-size must be in \[4, --patch-size\], got 64"):
        TrainConfig.from_profile("lmfn", "smoke", patch_size=32, distill_patch_size=64)
    ckpt = tmp_path / "lkdn_x2.pth"
    torch.save({"params_ema": build("lkdn", 2).state_dict()}, ckpt)
    cfg = TrainConfig.from_profile("lmfn", "smoke", scale=2, train_data=["default"], val_dataset="none",
                                   out=str(tmp_path / "run"), init=str(ckpt), init_distill=2,
                                   distill_teacher="bsrn")  # fmt: skip
    with pytest.raises(CheckpointMismatchError, match="does not fit"):
        train(cfg, echo=lambda m: None)


def test_kd_weight_mixes_the_hr_and_the_teacher_l1(tmp_path, torch_globals):
    torch.manual_seed(2)
    ckpt = tmp_path / "lkdn_x2.pth"
    torch.save({"params_ema": build("lkdn", 2).state_dict()}, ckpt)
    cfg = TrainConfig.from_profile("lkdn", "smoke", scale=2, iters=1, train_data=["default"], val_dataset="none",
                                   out=str(tmp_path / "run"), init=str(ckpt), distill_teacher="lkdn",
                                   kd_weight=0.25, threads=1)  # fmt: skip
    trainer = Trainer(cfg, echo=lambda m: None)
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16)
    with torch.no_grad():  # student == teacher at the start: the teacher term is 0
        torch.testing.assert_close(trainer.forward_loss(lr, hr), 0.75 * (trainer.raw(lr) - hr).abs().mean())
        for p in trainer.raw.parameters():
            p.add_(0.01 * torch.randn_like(p))
        teacher_sr = load_into(build("lkdn", 2), ckpt).eval()(lr)
        sr = trainer.raw(lr)
        expect = 0.75 * (sr - hr).abs().mean() + 0.25 * (sr - teacher_sr).abs().mean()
        torch.testing.assert_close(trainer.forward_loss(lr, hr), expect)
    with pytest.raises(ValueError, match="--kd-weight need --init CHECKPOINT and --distill-teacher"):
        TrainConfig.from_profile("lkdn", "smoke", kd_weight=0.5)
    with pytest.raises(ValueError, match=r"--kd-weight must be in \[0, 1\]"):
        TrainConfig.from_profile("lkdn", "smoke", kd_weight=1.5, init="x.pth", distill_teacher="lkdn")


def test_init_and_teacher_read_the_models_own_checkpoint_keys(tmp_path, torch_globals):
    """Bug: --init and the teacher unwrapped every file with the BasicSR keys, so a DiVANet solver file
    ({"model_state_dict": ...}, DiVANet's checkpoint_keys) failed with "checkpoint holds no state dict"."""
    torch.manual_seed(3)
    src = build("divanet", 4).eval()
    ckpt = tmp_path / "divanet_x4.pth"
    torch.save({"step": 7, "model_state_dict": src.state_dict(), "optimizer_state_dict": {}, "best_psnr": 0.0},
               ckpt)  # fmt: skip
    cfg = TrainConfig.from_profile("divanet", "smoke", scale=4, iters=1, batch_size=1, patch_size=8,
                                   train_data=["default"], val_dataset="none", out=str(tmp_path / "run"),
                                   init=str(ckpt), distill_teacher="divanet", kd_weight=0.5, threads=1)  # fmt: skip
    trainer = Trainer(cfg, echo=lambda m: None)
    rep = trainer.init_report
    assert rep is not None and rep.loaded == list(src.state_dict()) and not (rep.missing or rep.misshaped)
    for k, v in src.state_dict().items():
        assert torch.equal(trainer.raw.state_dict()[k], v), k
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(trainer.teacher()(x), src(x))
    assert not any(p.requires_grad for p in trainer.teacher().parameters())
