"""vclib.pointcloud.representations against trimesh and exact geometric facts."""

import numpy as np
import pytest
import torch
import trimesh

from vclib.pointcloud import representations as rep


@pytest.mark.exercise("vclib.pointcloud.representations.sample_points")
def test_sample_points_lie_on_the_surface_uniformly_by_area():
    box = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    points = rep.sample_points(box, 20_000, seed=0)
    assert points.shape == (20_000, 3) and points.dtype == torch.float32
    on_face = (points.abs() - torch.tensor([1.0, 0.5, 0.25])).abs() < 1e-5  # (n, 3): which face pair
    assert on_face.any(1).all()
    # area fractions of the face pairs: x-faces 1*0.5, y-faces 2*0.5, z-faces 2*1 over 3.5
    expected = torch.tensor([0.5, 1.0, 2.0]) / 3.5
    assert torch.allclose(on_face.float().mean(0), expected, atol=0.015)
    reference, _ = trimesh.sample.sample_surface(box, 20_000, seed=0)
    assert np.allclose(points.mean(0).numpy(), reference.mean(0), atol=0.03)
    assert torch.equal(points, rep.sample_points(box, 20_000, seed=0))


@pytest.mark.exercise("vclib.pointcloud.representations.voxelize")
def test_voxel_count_equals_distinct_quantised_points():
    points = torch.rand(500, 3) * 2 - 1
    for resolution in (1, 4, 13):
        grid = rep.voxelize(points, resolution)
        assert grid.shape == (resolution,) * 3 and grid.dtype == torch.bool
        quantised = ((points + 1) / 2 * resolution).floor().long().clamp(0, resolution - 1)
        assert int(grid.sum()) == len(torch.unique(quantised, dim=0))


@pytest.mark.exercise("vclib.pointcloud.representations.winding_number")
def test_winding_number_matches_trimesh_contains():
    mesh = trimesh.creation.torus(major_radius=0.6, minor_radius=0.2)
    queries = torch.rand(400, 3) * 2 - 1
    vertices, faces = rep.mesh_tensors(mesh)
    inside = rep.winding_number(queries, vertices, faces, chunk_size=64) >= 0.5
    assert torch.equal(inside, torch.from_numpy(mesh.contains(queries.numpy())))


def test_signed_distance_grid_matches_trimesh():
    mesh = trimesh.creation.box(extents=(1.05, 0.83, 0.61))  # no cell centre on the surface
    sdf = rep.signed_distance_grid(mesh, resolution=10, num_samples=40_000)
    queries = rep.grid_points(10).reshape(-1, 3).numpy()
    reference = -trimesh.proximity.signed_distance(mesh, queries)  # trimesh: positive inside
    assert sdf.shape == (10, 10, 10)
    assert np.array_equal(np.sign(sdf.reshape(-1).numpy()), np.sign(reference))
    assert np.abs(sdf.reshape(-1).numpy() - reference).max() < 0.03


@pytest.mark.exercise("vclib.pointcloud.representations.depth_maps")
def test_origin_lands_on_the_centre_pixel_of_every_view():
    for size in (9, 16):
        maps = rep.depth_maps(torch.zeros(1, 1, 3), image_size=size)
        assert maps.shape == (1, 6, size, size)
        assert torch.all(maps[0, :, size // 2, size // 2] == 0.5)
        assert int((maps > 0).sum()) == 6


@pytest.mark.exercise("vclib.pointcloud.representations.depth_maps")
def test_nearest_point_wins_a_pixel():
    near_front = torch.tensor([[[0.0, -0.9, 0.0], [0.0, 0.5, 0.0]]])  # front camera sits at -y
    maps = rep.depth_maps(near_front, image_size=5)
    assert torch.isclose(maps[0, 0, 2, 2], torch.tensor(1 - 0.1 / 2))
    assert torch.isclose(maps[0, 2, 2, 2], torch.tensor(1 - 0.5 / 2))  # the back camera sees the other


@pytest.mark.exercise("vclib.pointcloud.representations.depth_maps")
def test_quarter_turn_about_z_shifts_the_side_views():
    points = torch.rand(2, 300, 3) * 1.2 - 0.6
    turned = torch.stack([-points[..., 1], points[..., 0], points[..., 2]], dim=-1)  # +90 degrees about z
    before, after = rep.depth_maps(points, image_size=17), rep.depth_maps(turned, image_size=17)
    for view in range(4):
        assert torch.equal(after[:, (view + 1) % 4], before[:, view])
    assert torch.equal(after[:, 4], torch.rot90(before[:, 4], k=1, dims=(1, 2)))


def test_point_size_and_view_count():
    maps = rep.depth_maps(torch.zeros(1, 1, 3), num_views=2, image_size=9, point_size=3)
    assert maps.shape == (1, 2, 9, 9) and int((maps[0, 0] > 0).sum()) == 9


@pytest.mark.parametrize("kwargs, name", [({"num_views": 7}, "num_views"), ({"point_size": 2}, "point_size"),
                                          ({"image_size": 0}, "image_size")])
def test_bad_depth_map_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        rep.depth_maps(torch.zeros(1, 4, 3), **kwargs)
    with pytest.raises(ValueError, match="points"):
        rep.depth_maps(torch.zeros(4, 3))
