"""Error analysis on a hand-made image, and the detection figures and browser widget."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from vclib.detection import build_targets, detection_errors  # noqa: E402
from vclib.detection.plots import detection_browser, plot_assignment  # noqa: E402


def test_detection_errors_sorts_each_kind() -> None:
    target = {"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]]),
              "labels": torch.tensor([1, 2, 3])}
    pred = {"boxes": torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 11], [20, 20, 30, 30], [70, 70, 80, 80]]),
            "scores": torch.tensor([0.9, 0.8, 0.7, 0.6]), "labels": torch.tensor([1, 1, 5, 1])}
    errors = detection_errors(pred, target)
    assert errors["matched"].tolist() == [0]
    assert errors["duplicates"].tolist() == [1]
    assert errors["wrong_class"].tolist() == [2]
    assert errors["background"].tolist() == [3]
    assert errors["missed"].tolist() == [2]  # the third target has no box of any class on it
    empty = {key: value[:0] for key, value in pred.items()}
    assert detection_errors(empty, target)["missed"].tolist() == [0, 1, 2]


def test_assignment_figure_and_browser() -> None:
    anchors = torch.tensor([[6.0, 6], [8, 8], [10, 10], [14, 14], [18, 18], [22, 22], [28, 28], [34, 34], [40, 40]])
    boxes = [torch.tensor([[4.0, 4, 12, 12], [30, 30, 48, 48], [10, 40, 50, 80]])]
    targets = build_targets(boxes, [torch.tensor([0, 1, 2])], anchors, (4, 8, 16), 96)
    figure = plot_assignment(torch.rand(3, 96, 96), targets, class_names=["a", "b", "c"])
    assert [ax.get_title() for ax in figure.axes] == ["stride 4: 24 x 24 cells", "stride 8: 12 x 12 cells",
                                                      "stride 16: 6 x 6 cells"]
    shaded = [sum(isinstance(p, Rectangle) and p.get_fill() for p in ax.patches) for ax in figure.axes]
    assert shaded == [int(level["mask"].sum()) for level in targets["levels"]] and sum(shaded) == 3
    plt.close(figure)
    decoded = torch.cat([torch.tensor([[[10.0, 10, 30, 30, 0.9, 0.8, 0.1]]]).repeat(2, 5, 1)], dim=0)
    detection_browser(torch.rand(2, 3, 64, 64), decoded, [{"boxes": torch.zeros(0, 4)}] * 2, ["x", "y"])
    plt.close("all")
