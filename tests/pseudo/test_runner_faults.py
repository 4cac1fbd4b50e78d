"""Pseudo-labelling on bad input (issue 19): a failing worker ends the job, images are read as
training reads them, bad images are errors or (when asked) skipped and listed, and a resume
with another image folder is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fullbody.annotations import WholeBodySet
from fullbody.images import ImageReadError
from fullbody.pseudo.runner import PseudoLabeller

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FAKE = {"fake": {"_target_": "fake_teachers.RegionTeacher"}}


def _job(dataset: Path, out: Path, image_dir: Path | None = None, **kw) -> PseudoLabeller:
    kw.setdefault("workers", 0)
    kw.setdefault("progress", False)
    return PseudoLabeller(dataset, image_dir or dataset.parent / "images", out, FAKE, **kw)


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _strip_app1(data: bytes) -> bytes:
    """The JPEG without the EXIF segment the fixture put right after SOI."""
    return data[:2] + data[4 + int.from_bytes(data[4:6], "big") :]


@pytest.mark.slow
def test_a_failing_worker_ends_the_pool_job_with_one_line_and_keeps_finished_shards(
    dataset, tmp_path
):
    images = dataset.parent / "images"
    cv2.imwrite(str(images / "0007.png"), np.zeros((180, 241, 3), np.uint8))  # one px too wide
    out = tmp_path / "p.json"
    cmd = [
        sys.executable, str(ROOT / "pseudo_label.py"), f"ann_file={dataset}", f"image_dir={images}",
        f"out_file={out}", "workers=2", "shard_size=2", "progress=false", "keep_shards=true",
        "~teacher/hand", "~teacher/face", "~teacher/foot",
        "+teacher.fake._target_=fake_teachers.RegionTeacher", f"hydra.run.dir={tmp_path / 'run'}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(HERE)])}
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("pseudo_label.py hung on a worker's error")
    assert done.returncode == 2, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "image 107" in lines[0] and "0007.png is 241x180" in lines[0]
    shards = tmp_path / "p.shards"
    assert (shards / "shard-00000.json").is_file() and not (shards / "shard-00003.json").exists()
    assert not out.exists()
    kept = (shards / "shard-00000.json").stat().st_mtime_ns
    cv2.imwrite(str(images / "0007.png"), np.zeros((180, 240, 3), np.uint8))
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert again.returncode == 0, again.stderr
    assert len(WholeBodySet.load(out)) == len(WholeBodySet.load(dataset))
    assert (shards / "shard-00000.json").stat().st_mtime_ns == kept  # not redone


def test_an_exif_rotated_image_is_labelled_in_its_stored_frame(dataset, tmp_path, bad_jpegs):
    # Labels of a JPEG tagged Orientation=3 equal those of the same bytes without the tag.
    images = dataset.parent / "images"
    plain_dir = tmp_path / "plain"
    shutil.copytree(images, plain_dir)
    bad_jpegs.exif_rotated(images / "0000.png", _rgb(images / "0000.png"))
    (plain_dir / "0000.png").write_bytes(_strip_app1((images / "0000.png").read_bytes()))
    turned = _job(dataset, tmp_path / "turned.json").run()
    plain = _job(dataset, tmp_path / "plain.json", plain_dir).run()
    rows = turned.image_ids == 100
    assert turned.valid[rows, 2].all()  # the faces were labelled
    np.testing.assert_array_equal(turned.keypoints[rows], plain.keypoints[rows])
    np.testing.assert_array_equal(turned.conf[rows], plain.conf[rows])


def test_a_truncated_image_is_an_error_naming_it(dataset, tmp_path, bad_jpegs):
    images = dataset.parent / "images"
    bad_jpegs.truncated(images / "0003.png", _rgb(images / "0003.png"))
    out = tmp_path / "p.json"
    with pytest.raises(ImageReadError, match=r"0003\.png: cannot decode the image.*truncated"):
        _job(dataset, out, shard_size=2).run()
    assert not out.exists() and (tmp_path / "p.shards" / "shard-00000.json").is_file()


def test_skip_bad_images_leaves_them_out_and_lists_them(dataset, tmp_path, bad_jpegs):
    images = dataset.parent / "images"
    bad_jpegs.truncated(images / "0003.png", _rgb(images / "0003.png"))
    (images / "0005.png").unlink()
    out = tmp_path / "p.json"
    job = _job(dataset, out, shard_size=2, skip_bad_images=True)
    labels = job.run()
    human = WholeBodySet.load(dataset)
    assert sorted({int(i) for i in labels.image_ids}) == [100, 101, 102, 104, 106, 107, 108]
    assert len(labels) == int(np.isin(human.image_ids, [103, 105], invert=True).sum())
    back = WholeBodySet.load(out)
    assert sorted(back.images) == [100, 101, 102, 104, 106, 107, 108]
    listed = json.loads(job.skipped_file.read_text())
    assert [(s["id"], s["file_name"]) for s in listed] == [(103, "0003.png"), (105, "0005.png")]
    assert "truncated" in listed[0]["error"] and "not found" in listed[1]["error"]


def test_a_resume_with_another_image_dir_is_refused(dataset, tmp_path):
    images = dataset.parent / "images"
    other = tmp_path / "other_images"
    shutil.copytree(images, other)
    out = tmp_path / "p.json"
    _job(dataset, out, shard_size=2, keep_shards=True).run()
    out.unlink()  # as if killed after some shards
    with pytest.raises(FileExistsError, match=r"image_dir: '.*images' -> '.*other_images'"):
        _job(dataset, out, other, shard_size=2, keep_shards=True).run()
    _job(dataset, out, images, shard_size=2).run()  # the same folder resumes
    assert out.is_file()


_CHILD = """
import sys
from fullbody.pseudo.runner import PseudoLabeller
try:
    PseudoLabeller(sys.argv[1], sys.argv[2], sys.argv[3],
                   {"bad": {"_target_": "fake_teachers.NoSuchTeacher"}}, workers=2,
                   shard_size=2, progress=False).run()
except Exception as e:
    print(type(e).__name__, e)
    sys.exit(3)
"""


@pytest.mark.slow
def test_a_teacher_that_cannot_be_built_in_the_workers_ends_the_job(dataset, tmp_path):
    # A failing pool initialiser would be retried forever; the error comes back instead.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(HERE)])}
    cmd = [sys.executable, "-c", _CHILD, str(dataset), str(dataset.parent / "images"),
           str(tmp_path / "p.json")]  # fmt: skip
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the pool job hung on a worker that could not build its teacher")
    assert done.returncode == 3, done.stderr
    assert "NoSuchTeacher" in done.stdout


def test_a_full_disk_at_the_merge_keeps_the_shards_and_leaves_no_temporary(
    dataset, tmp_path, monkeypatch
):
    """It was an OSError traceback; now one error naming out_file, the shards kept for the
    next run, and neither a partial output nor a temporary file."""
    import errno

    from fullbody import jsonio
    from fullbody.errors import OutputError

    out = tmp_path / "out" / "pseudo.json"
    real_fsync = os.fsync

    def full(fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name.startswith(".pseudo.json."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(jsonio.os, "fsync", full)
    with pytest.raises(
        OutputError, match=r"pseudo\.json: cannot write \(No space left.*shards stay"
    ):
        _job(dataset, out).run()
    assert sorted(p.name for p in out.parent.iterdir()) == ["pseudo.shards"]
    monkeypatch.setattr(jsonio.os, "fsync", real_fsync)
    assert len(_job(dataset, out).run()) and out.is_file()


def test_an_image_dir_that_is_a_file_says_so(dataset, tmp_path):
    from fullbody.images import ImageFolderError

    archive = tmp_path / "images.zip"
    archive.write_bytes(b"PK\x03\x04")
    with pytest.raises(ImageFolderError, match=r"images\.zip: is a file"):
        _job(dataset, tmp_path / "out.json", image_dir=archive).run()


def test_a_teacher_file_that_is_not_onnx_is_one_error_before_any_worker(dataset, tmp_path):
    """With workers >= 1 it came back from the pool as Hydra's InstantiationException, its
    cause lost on the way (a traceback, exit 1); the shard record was written first."""
    from fullbody.utils.onnx_session import OnnxModelError

    junk = tmp_path / "teacher.onnx"
    junk.write_bytes(b"<html>not found</html>")
    spec = {"_target_": "fullbody.pseudo.teachers.onnx_model.OnnxTopDown", "path": str(junk)}
    out = tmp_path / "out.json"
    job = PseudoLabeller(dataset, dataset.parent / "images", out, {"wholebody": spec},
                         workers=2, progress=False)  # fmt: skip
    with pytest.raises(OnnxModelError, match=r"teacher\.onnx: not a loadable ONNX model"):
        job.run()
    assert not out.with_name("out.shards").exists()


def test_fusion_without_a_wholebody_teacher_is_refused(dataset, tmp_path):
    """fusion=max with part teachers only fused nothing, silently."""
    from fullbody.errors import ConfigError

    out = tmp_path / "out.json"
    with pytest.raises(ConfigError, match="fusion fuses .* there is no whole-body teacher"):
        _job(dataset, out, fusion="max").run()
    assert not out.with_name("out.shards").exists()


def test_an_unpicklable_user_error_from_a_worker_stays_a_user_error():
    from fullbody.errors import UserError
    from fullbody.pseudo.runner import _picklable

    class LocalError(UserError):  # a class pickle cannot find by name
        pass

    back = _picklable(LocalError("teacher.onnx: bad"))
    assert type(back) is UserError and str(back) == "LocalError: teacher.onnx: bad"
    assert type(_picklable(type("Other", (Exception,), {})("x"))) is RuntimeError
