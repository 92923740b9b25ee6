"""Four ways to store a 3-D shape: a mesh, a point cloud, a voxel grid, a signed-distance field, and
(PointCLIP's view) a set of depth images.

Shapes live in the unit sphere, so every grid here covers the cube ``[-1, 1]^3``. ``z`` is up.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
import trimesh

from vclib.checks import check_int_range, check_positive_int, check_shape

VIEW_NAMES = ("front", "right", "back", "left", "top", "bottom")
#: Rows of each view's camera frame: image right ``r``, image up ``u``, and the direction ``d`` from the
#: object towards the camera. Side cameras sit at -y, +x, +y, -x, so a 90-degree turn of the object about
#: z shifts the four side views by one; the entries are exact integers, so the shift is exact too.
VIEW_FRAMES = torch.tensor([
    [[1, 0, 0], [0, 0, 1], [0, -1, 0]],   # front: camera at -y
    [[0, 1, 0], [0, 0, 1], [1, 0, 0]],    # right: camera at +x
    [[-1, 0, 0], [0, 0, 1], [0, 1, 0]],   # back: camera at +y
    [[0, -1, 0], [0, 0, 1], [-1, 0, 0]],  # left: camera at -x
    [[1, 0, 0], [0, 1, 0], [0, 0, 1]],    # top: camera above, image up = +y
    [[-1, 0, 0], [0, 1, 0], [0, 0, -1]],  # bottom: camera below
], dtype=torch.float32)


def mesh_tensors(mesh: trimesh.Trimesh) -> tuple[torch.Tensor, torch.Tensor]:
    """A mesh's vertices ``(V, 3)`` float32 and faces ``(F, 3)`` int64 as tensors."""
    if not isinstance(mesh, trimesh.Trimesh):
        raise ValueError(f"mesh must be a trimesh.Trimesh, got {type(mesh).__name__}")
    if len(mesh.faces) == 0:
        raise ValueError("mesh must have at least one face, got an empty mesh")
    return torch.as_tensor(np.asarray(mesh.vertices), dtype=torch.float32), torch.as_tensor(
        np.asarray(mesh.faces), dtype=torch.int64)


def sample_points(mesh: trimesh.Trimesh, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` points uniformly distributed over the surface of ``mesh`` (by area).

    A triangle is picked with probability proportional to its area, then a point inside it with the
    square-root trick on barycentric coordinates, which makes the density uniform over the triangle.

    Returns:
        points: ``(n, 3)`` float32.
    """
    check_positive_int(n, "n")
    vertices, faces = mesh_tensors(mesh)
    generator = torch.Generator().manual_seed(seed)
    ### BEGIN SOLUTION
    a, b, c = vertices[faces].unbind(1)  # each (F, 3)
    areas = 0.5 * torch.linalg.cross(b - a, c - a).norm(dim=1)  # (F,)
    chosen = torch.multinomial(areas, n, replacement=True, generator=generator)  # (n,)
    r1, r2 = torch.rand(2, n, 1, generator=generator)
    s = r1.sqrt()
    points = (1 - s) * a[chosen] + s * (1 - r2) * b[chosen] + s * r2 * c[chosen]
    ### END SOLUTION
    return points


def voxelize(points: torch.Tensor, resolution: int = 32) -> torch.Tensor:
    """Boolean occupancy grid of a point cloud in the cube ``[-1, 1]^3``.

    Args:
        points: ``(N, 3)`` float, inside the cube (points outside are clamped to its border cells).
        resolution: cells per side ``R``.

    Returns:
        ``(R, R, R)`` bool, indexed ``[x, y, z]``; a cell is True when at least one point falls in it.
    """
    check_shape(points, "points", (None, 3))
    check_positive_int(resolution, "resolution")
    ### BEGIN SOLUTION
    cells = ((points + 1) / 2 * resolution).floor().long().clamp(0, resolution - 1)  # (N, 3)
    grid = torch.zeros(resolution, resolution, resolution, dtype=torch.bool)
    grid[cells[:, 0], cells[:, 1], cells[:, 2]] = True
    ### END SOLUTION
    return grid


def grid_points(resolution: int) -> torch.Tensor:
    """Centres of the ``R^3`` cells of the cube ``[-1, 1]^3``: ``(R, R, R, 3)`` float32, indexed ``[x, y, z]``."""
    check_positive_int(resolution, "resolution")
    axis = (torch.arange(resolution, dtype=torch.float32) + 0.5) / resolution * 2 - 1
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1)


def winding_number(queries: torch.Tensor, vertices: torch.Tensor, faces: torch.Tensor,
                   chunk_size: int = 512) -> torch.Tensor:
    """Generalised winding number of a triangle mesh at each query point.

    The solid angle of triangle ``(a, b, c)`` seen from ``p`` (Van Oosterom and Strackee, 1983), with
    ``a, b, c`` taken relative to ``p``, is ``2 atan2(det[a b c], |a||b||c| + (a.b)|c| + (a.c)|b| +
    (b.c)|a|)``; their sum over the faces divided by ``4 pi`` is 1 inside a closed surface and 0 outside.
    Overlapping closed parts add up, so ``>= 0.5`` means inside their union.

    Args:
        queries: ``(Q, 3)`` float.
        vertices: ``(V, 3)`` float.
        faces: ``(F, 3)`` int64 vertex indices, outward (counter-clockwise) winding.

    Returns:
        ``(Q,)`` float.
    """
    check_shape(queries, "queries", (None, 3))
    triangles = vertices[faces]  # (F, 3 corners, 3)
    totals = []
    for start in range(0, len(queries), chunk_size):
        ### BEGIN SOLUTION
        rel = triangles[None] - queries[start:start + chunk_size, None, None]  # (q, F, 3, 3)
        a, b, c = rel.unbind(2)  # each (q, F, 3)
        la, lb, lc = a.norm(dim=-1), b.norm(dim=-1), c.norm(dim=-1)
        det = (a * torch.linalg.cross(b, c, dim=-1)).sum(-1)
        dot = lambda u, v: (u * v).sum(-1)  # noqa: E731
        denominator = la * lb * lc + dot(a, b) * lc + dot(a, c) * lb + dot(b, c) * la
        totals.append(2 * torch.atan2(det, denominator).sum(1) / (4 * math.pi))
        ### END SOLUTION
    return torch.cat(totals)


def signed_distance_grid(mesh: trimesh.Trimesh, resolution: int = 24, num_samples: int = 30_000,
                         seed: int = 0) -> torch.Tensor:
    """Signed distance to the surface of ``mesh`` at the cell centres of ``[-1, 1]^3``; negative inside.

    A fast stand-in for ``trimesh.proximity.signed_distance`` (exact, but seconds per object): the
    distance is to the nearest of ``num_samples`` surface points (a ``scipy`` KD-tree; off by about the
    sample spacing). The sign comes from a flood fill: cells that the surface encloses are inside. Cells
    that the surface passes through ask :func:`winding_number`, which also treats overlapping parts as
    their union. The tests compare the result with trimesh.

    Returns:
        ``(R, R, R)`` float32 indexed ``[x, y, z]``.
    """
    from scipy.ndimage import binary_fill_holes
    from scipy.spatial import cKDTree

    check_positive_int(resolution, "resolution")
    check_positive_int(num_samples, "num_samples")
    queries = grid_points(resolution).reshape(-1, 3)  # (R^3, 3)
    surface = sample_points(mesh, num_samples, seed=seed)  # (S, 3)
    distance, _ = cKDTree(surface.numpy()).query(queries.numpy())
    on_surface = voxelize(surface, resolution)  # (R, R, R)
    inside = torch.from_numpy(binary_fill_holes(on_surface.numpy())) & ~on_surface
    inside, on_surface = inside.reshape(-1), on_surface.reshape(-1)  # (R^3,)
    vertices, faces = mesh_tensors(mesh)
    inside[on_surface] = winding_number(queries[on_surface], vertices, faces) >= 0.5
    signed = torch.as_tensor(distance, dtype=torch.float32) * torch.where(inside, -1.0, 1.0)
    return signed.reshape(resolution, resolution, resolution)


def depth_maps(points: torch.Tensor, num_views: int = 6, image_size: int = 32, point_size: int = 1) -> torch.Tensor:
    """PointCLIP's projection: orthographic depth images of a cloud on the faces of the cube around it.

    Each view maps a point ``p`` to image coordinates ``(p.r, p.u)`` in ``[-1, 1]^2`` and to the depth
    ``1 - p.d`` in ``[0, 2]`` (0 on the face of the cube nearest the camera); see :data:`VIEW_FRAMES`.
    Where several points land on one pixel the nearest wins (a z-buffer); ``point_size > 1`` splats
    every point over a ``point_size x point_size`` square, as PointCLIP densifies sparse views.

    Args:
        points: ``(B, N, 3)`` float in the unit sphere (points outside land on the border pixels).
        num_views: the first ``V`` of :data:`VIEW_NAMES`, 1 to 6.
        image_size: ``H = W``.
        point_size: odd splat size in pixels.

    Returns:
        ``(B, V, H, W)`` in [0, 1]: ``1 - depth / 2`` of the nearest point, 0 where no point lands.
    """
    check_shape(points, "points", (None, None, 3))
    check_int_range(num_views, "num_views", 1, len(VIEW_NAMES))
    check_positive_int(image_size, "image_size")
    if check_positive_int(point_size, "point_size") % 2 == 0:
        raise ValueError(f"point_size must be odd, got {point_size}")
    B, N, _ = points.shape
    V, H, W = num_views, image_size, image_size
    frames = VIEW_FRAMES[:V].to(points)  # (V, 3, 3)
    ### BEGIN SOLUTION
    coords = torch.einsum("bnc,vkc->bvnk", points, frames)  # (B, V, N, 3): right, up, towards camera
    col = ((coords[..., 0] + 1) / 2 * W).floor().long().clamp(0, W - 1)  # (B, V, N)
    row = ((1 - coords[..., 1]) / 2 * H).floor().long().clamp(0, H - 1)
    depth = 1 - coords[..., 2]
    image_index = torch.arange(B * V, device=points.device).reshape(B, V, 1)
    flat = (image_index * H + row) * W + col  # (B, V, N)
    zbuffer = torch.full((B * V * H * W,), math.inf, dtype=points.dtype, device=points.device)
    zbuffer = zbuffer.scatter_reduce(0, flat.flatten(), depth.flatten(), reduce="amin")
    zbuffer = zbuffer.reshape(B * V, 1, H, W)
    if point_size > 1:  # the nearest depth within the splat: a min-pool
        zbuffer = -F.max_pool2d(-zbuffer, point_size, stride=1, padding=point_size // 2)
    images = torch.where(zbuffer.isfinite(), (1 - zbuffer / 2).clamp(0, 1), torch.zeros_like(zbuffer))
    ### END SOLUTION
    return images.reshape(B, V, H, W)
