"""The rank command used to start DDP ranks under Hydra (single runs and sweeps)."""

from __future__ import annotations

from fullbody.utils.ddp import config_flags, rank_command


def test_config_flags_are_kept_with_their_values() -> None:
    argv = ["-m", "--config-name", "train", "model.head=deconv,duc", "-cp=conf", "+experiment=x"]
    assert config_flags(argv) == ["--config-name", "train", "-cp=conf"]


def test_rank_command_runs_only_this_job() -> None:
    cmd = rank_command(
        script=["python", "/repo/train.py"],
        argv=["-m", "+experiment=smoke", "model.head=deconv,duc", "-cn", "train"],
        task_overrides=["+experiment=smoke", "model.head=duc"],
        hydra_overrides=[
            "hydra.mode=MULTIRUN",
            "hydra.sweep.dir=/tmp/s",
            "hydra/launcher=basic",
            "hydra.job.chdir=false",
        ],
        output_dir="/tmp/s/1",
        local_rank=1,
    )
    assert cmd == [
        "python",
        "/repo/train.py",
        "-cn",
        "train",
        "+experiment=smoke",
        "model.head=duc",
        "hydra.job.chdir=false",
        'hydra.run.dir="/tmp/s/1"',
        "hydra.job.name=ddp_rank_1",
        "hydra.output_subdir=null",
    ]
    assert "-m" not in cmd and not any("," in c for c in cmd)
