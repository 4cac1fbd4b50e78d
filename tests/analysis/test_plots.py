"""Figures: every one has a title, labelled axes and the requested size in pixels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from fullbody.analysis import plots
from fullbody.analysis.example_inputs import distilled_student
from fullbody.analysis.gallery import GalleryItem
from fullbody.analysis.report import Inputs, analyse_part
from fullbody.synthetic import generate_labels, perturb_labels


@pytest.fixture(scope="module")
def analyses():
    gt = generate_labels(12, seed=3)
    teacher = perturb_labels(gt, seed=3)
    inputs = Inputs(gt, distilled_student(gt, teacher, seed=3), teacher)
    return {part: analyse_part(inputs, part) for part in ("hands", "face")}


def _check(fig, width_px, height_px):
    w, h = fig.get_size_inches() * fig.dpi
    assert (round(w), round(h)) == (width_px, height_px)
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    assert axes
    for ax in axes:
        assert ax.get_title(), "every panel has a title"
        assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
    plt.close(fig)


def test_figures_are_titled_labelled_and_sized(analyses):
    a = analyses["hands"]
    _check(plots.plot_ap_by_size(a.by_size, "hands", width_px=640, height_px=320), 640, 320)
    _check(plots.plot_ap_by_occlusion(a.by_occlusion, "hands"), 800, 400)
    _check(plots.plot_point_errors(a.errors), 1100, 420)
    _check(plots.plot_pck_by_group(a.errors), 560, 400)
    _check(plots.plot_error_vs_size(a.errors, a.size_edges), 560, 400)
    _check(plots.plot_swaps(a.swaps), 520, 460)
    _check(plots.plot_teacher_student(a.teacher), 1100, 440)


def test_axis_labels_say_pixels(analyses):
    a = analyses["hands"]
    fig = plots.plot_ap_by_size(a.by_size, "hands")
    ax = fig.axes[0]
    assert "px" in ax.get_xlabel() and ax.get_title() == "Hand AP by hand size"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["< 16", "16–32", "32–64", "≥ 64"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["left", "right", "both (pooled)"]
    assert "px" in plots.plot_error_vs_size(a.errors).axes[0].get_xlabel()
    plt.close("all")


def test_show_analysis_draws_every_section(analyses, capsys):
    hands = plots.show_analysis(analyses["hands"])
    assert len(hands) == 7  # no images given: no gallery
    face = plots.show_analysis(analyses["face"])
    assert len(face) == 6  # and no swaps for a face
    out = capsys.readouterr().out
    assert "hand AP by box side (px)" in out and "fingertips" in out and "mouth" in out
    assert "copies teacher mistake" in out
    plt.close("all")


def test_gallery_figure():
    rgb = np.zeros((64, 64, 3), np.uint8)
    items = [GalleryItem(rgb, rgb, i, "lefthand", 12.0, 0.5, 0.3) for i in range(4)]
    fig = plots.plot_gallery(items, per_row=3, panel_px=100)
    assert fig.get_size_inches()[0] * fig.dpi == pytest.approx(600)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titled) == 8 and "left hand, 12 px" in titled[0]
    with pytest.raises(ValueError, match="at least one"):
        plots.plot_gallery([])
    plt.close("all")
