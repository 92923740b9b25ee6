"""vclib.data.shapes: procedural ModelNet10-style objects."""

import numpy as np
import pytest
import torch
import trimesh

from vclib.data.shapes import CLASS_NAMES, ProceduralShapes, build_mesh


@pytest.fixture(scope="module")
def small():
    return ProceduralShapes("train", num_per_class=2, num_points=128, seed=3)


def test_items_shapes_dtypes_and_unit_sphere(small):
    points, label = small[5]
    assert points.shape == (128, 3) and points.dtype == torch.float32
    assert label.dtype == torch.int64 and int(label) == 2
    assert len(small) == 20 and small.class_names == list(CLASS_NAMES)
    assert small.points.norm(dim=-1).max() <= 1.0 + 1e-5
    assert torch.equal(small.labels.bincount(), torch.full((10,), 2))


def test_same_arguments_same_data_and_splits_differ(small):
    again = ProceduralShapes("train", num_per_class=2, num_points=128, seed=3)
    assert torch.equal(small.points, again.points)
    test = ProceduralShapes("test", num_per_class=2, num_points=128, seed=3)
    assert not torch.allclose(small.points, test.points)
    other_seed = ProceduralShapes("train", num_per_class=2, num_points=128, seed=4)
    assert not torch.allclose(small.points, other_seed.points)


def test_points_lie_on_the_items_mesh(small):
    mesh = small.mesh(7)
    assert isinstance(mesh, trimesh.Trimesh)
    _, distance, _ = trimesh.proximity.closest_point(mesh, small.points[7].double().numpy())
    assert distance.max() < 1e-5
    centre = (mesh.bounds[0] + mesh.bounds[1]) / 2
    assert np.allclose(centre, 0, atol=1e-6)


def test_objects_vary_within_a_class():
    rng = np.random.default_rng(0)
    extents = np.stack([build_mesh("chair", rng).extents for _ in range(6)])
    assert extents.std(axis=0).min() > 0.01


def test_no_single_extent_ratio_separates_all_classes():
    data = ProceduralShapes("train", num_per_class=10, num_points=64, seed=0)
    extent = data.points.amax(1) - data.points.amin(1)  # (N, 3)
    labels = data.labels.numpy()
    for feature in (extent[:, 2] / extent[:, 0], extent[:, 1] / extent[:, 0], extent[:, 2]):
        order = np.argsort(feature.numpy())
        # a perfectly separating statistic would sort the labels into ten pure runs
        runs = 1 + np.count_nonzero(np.diff(labels[order]))
        assert runs > 10


@pytest.mark.parametrize("kwargs", [{"split": "val"}, {"num_per_class": 0}, {"num_points": -1}, {"noise": -0.1}])
def test_bad_arguments_are_named(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        ProceduralShapes(**{"num_per_class": 1, "num_points": 8, **kwargs})


def test_mesh_index_out_of_range(small):
    with pytest.raises(ValueError, match="index"):
        small.mesh(20)
