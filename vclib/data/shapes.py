"""Procedural 3-D furniture: the ten ModelNet10 categories built from boxes, cylinders, spheres and tori.

Project 5's offline default. Every object is assembled from parts with ``trimesh``; proportions, part
counts and details are drawn per object, so that a person names each one at a glance but no single
statistic (height, width, number of points up high) separates the classes. The frame is ModelNet's:
``z`` is up, the floor is ``z = 0`` before normalisation, and the front faces ``-y``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import trimesh
from torch.utils.data import Dataset, TensorDataset

from vclib.checks import check_choice, check_non_negative, check_positive_int

CLASS_NAMES = ("bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand", "sofa", "table", "toilet")
SPLITS = ("train", "test")
_SPLIT_SALT = {"train": 0, "test": 1}


# ---------------------------------------------------------------------------------------------------
# Parts: each returns a closed trimesh in world coordinates.


def box(center: tuple[float, float, float], size: tuple[float, float, float]) -> trimesh.Trimesh:
    """An axis-aligned box with the given centre and extents."""
    return trimesh.creation.box(extents=size, transform=trimesh.transformations.translation_matrix(center))


def cylinder(center: tuple[float, float, float], radius: float, height: float, axis: str = "z",
             sections: int = 16) -> trimesh.Trimesh:
    """A cylinder along ``axis`` (``"x"``, ``"y"`` or ``"z"``) centred at ``center``."""
    turn = {"z": np.eye(4), "x": trimesh.transformations.rotation_matrix(np.pi / 2, (0, 1, 0)),
            "y": trimesh.transformations.rotation_matrix(np.pi / 2, (1, 0, 0))}[axis]
    transform = trimesh.transformations.translation_matrix(center) @ turn
    return trimesh.creation.cylinder(radius=radius, height=height, sections=sections, transform=transform)


def ellipsoid(center: tuple[float, float, float], radii: tuple[float, float, float]) -> trimesh.Trimesh:
    """A sphere scaled to the given radii."""
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    mesh.apply_scale(radii)
    return mesh.apply_translation(center)


def torus(center: tuple[float, float, float], major_radius: float, minor_radius: float,
          stretch: tuple[float, float] = (1.0, 1.0)) -> trimesh.Trimesh:
    """A horizontal torus (axis ``z``), optionally stretched in ``x`` and ``y`` into an oval ring."""
    mesh = trimesh.creation.torus(major_radius=major_radius, minor_radius=minor_radius,
                                  major_sections=24, minor_sections=8)
    mesh.apply_scale((stretch[0], stretch[1], 1.0))
    return mesh.apply_translation(center)


def legs(width: float, depth: float, height: float, thickness: float, rng: np.random.Generator,
         inset: float = 0.0) -> list[trimesh.Trimesh]:
    """Four legs under a ``width x depth`` footprint, round or square at random."""
    round_legs = rng.random() < 0.5
    parts = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * (width / 2 - thickness / 2 - inset), sy * (depth / 2 - thickness / 2 - inset)
            if round_legs:
                parts.append(cylinder((x, y, height / 2), thickness / 2, height))
            else:
                parts.append(box((x, y, height / 2), (thickness, thickness, height)))
    return parts


def drawers(width: float, height: float, bottom: float, front_y: float, rows: int, columns: int,
            rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """Drawer fronts (thin panels) on a ``-y`` facing cabinet front, each with a knob or a bar handle."""
    parts, gap = [], 0.03 * min(width, height)
    cell_w, cell_h = width / columns, height / rows
    knobs = rng.random() < 0.5
    for r in range(rows):
        for c in range(columns):
            x = -width / 2 + (c + 0.5) * cell_w
            z = bottom + (r + 0.5) * cell_h
            parts.append(box((x, front_y - 0.015, z), (cell_w - gap, 0.03, cell_h - gap)))
            if knobs:
                parts.append(ellipsoid((x, front_y - 0.05, z), (0.03, 0.03, 0.03)))
            else:
                parts.append(box((x, front_y - 0.045, z), (0.35 * cell_w, 0.03, 0.025)))
    return parts


# ---------------------------------------------------------------------------------------------------
# The ten categories. Each builder draws its own proportions and details from ``rng``.


def make_bathtub(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """An open tub: a floor and four walls (a hollow box), on feet or a plinth."""
    length, width, height = rng.uniform(1.4, 1.9), rng.uniform(0.65, 0.9), rng.uniform(0.4, 0.6)
    wall, lift = rng.uniform(0.05, 0.1), (rng.uniform(0.08, 0.15) if rng.random() < 0.5 else 0.0)
    z0 = lift
    parts = [box((0, 0, z0 + wall / 2), (length, width, wall)),
             box((0, -width / 2 + wall / 2, z0 + height / 2), (length, wall, height)),
             box((0, width / 2 - wall / 2, z0 + height / 2), (length, wall, height)),
             box((-length / 2 + wall / 2, 0, z0 + height / 2), (wall, width, height)),
             box((length / 2 - wall / 2, 0, z0 + height / 2), (wall, width, height))]
    if lift > 0:
        parts += [ellipsoid((sx * (length / 2 - 0.15), sy * (width / 2 - 0.1), lift / 2), (0.06, 0.06, lift / 2))
                  for sx in (-1, 1) for sy in (-1, 1)]
    if rng.random() < 0.5:  # a rim around the top
        parts.append(torus((0, 0, z0 + height), 0.5, 0.025, stretch=(length, width)))
    if rng.random() < 0.5:  # a tap
        parts.append(cylinder((length / 2 - wall, 0, z0 + height + 0.08), 0.025, 0.16))
    return parts


def make_bed(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """A frame, a mattress, a tall headboard, maybe a footboard and pillows, on legs."""
    length, width = rng.uniform(1.9, 2.2), rng.uniform(0.9, 1.8)
    leg_h, frame_h, mattress_h = rng.uniform(0.1, 0.25), rng.uniform(0.1, 0.2), rng.uniform(0.15, 0.28)
    head_h = rng.uniform(0.5, 0.9)
    # The bed runs along y: head at +y.
    parts = legs(width, length, leg_h, 0.08, rng)
    parts.append(box((0, 0, leg_h + frame_h / 2), (width, length, frame_h)))
    parts.append(box((0, -0.02, leg_h + frame_h + mattress_h / 2), (width - 0.06, length - 0.1, mattress_h)))
    parts.append(box((0, length / 2 + 0.03, (leg_h + frame_h + mattress_h + head_h) / 2),
                     (width + 0.04, 0.06, leg_h + frame_h + mattress_h + head_h)))
    if rng.random() < 0.5:
        foot_h = rng.uniform(0.1, 0.3)
        parts.append(box((0, -length / 2 - 0.03, (leg_h + frame_h + foot_h) / 2),
                         (width + 0.04, 0.06, leg_h + frame_h + foot_h)))
    top = leg_h + frame_h + mattress_h
    pillows = int(rng.integers(0, 3)) if width > 1.3 else int(rng.integers(0, 2))
    for x in (np.linspace(-width / 4, width / 4, pillows) if pillows > 1 else [0.0] * pillows):
        parts.append(ellipsoid((x, length / 2 - 0.25, top + 0.05), (min(0.3, width / 4), 0.15, 0.07)))
    return parts


def make_chair(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """A seat on four legs (or a swivel column), a tall backrest, sometimes armrests."""
    seat_w, seat_d = rng.uniform(0.4, 0.55), rng.uniform(0.4, 0.55)
    seat_h, seat_t = rng.uniform(0.4, 0.5), rng.uniform(0.03, 0.08)
    back_h = rng.uniform(0.35, 0.6)
    if rng.random() < 0.75:
        parts = legs(seat_w, seat_d, seat_h, rng.uniform(0.03, 0.05), rng)
    else:  # office chair: a column on a star of feet
        parts = [cylinder((0, 0, seat_h / 2), 0.03, seat_h)]
        for angle in np.linspace(0, 2 * np.pi, 6)[:5]:
            parts.append(box((0.15 * np.cos(angle), 0.15 * np.sin(angle), 0.03), (0.3, 0.04, 0.04)).apply_transform(
                trimesh.transformations.rotation_matrix(angle, (0, 0, 1), (0.15 * np.cos(angle),
                                                                            0.15 * np.sin(angle), 0.03))))
    parts.append(box((0, 0, seat_h + seat_t / 2), (seat_w, seat_d, seat_t)))
    if rng.random() < 0.6:  # a solid back panel
        parts.append(box((0, seat_d / 2 - 0.02, seat_h + seat_t + back_h / 2), (seat_w, 0.04, back_h)))
    else:  # two posts and slats
        for sx in (-1, 1):
            parts.append(box((sx * (seat_w / 2 - 0.02), seat_d / 2 - 0.02, seat_h + seat_t + back_h / 2),
                             (0.04, 0.04, back_h)))
        for z in np.linspace(seat_h + seat_t + back_h * 0.4, seat_h + seat_t + back_h - 0.03, int(rng.integers(2, 4))):
            parts.append(box((0, seat_d / 2 - 0.02, z), (seat_w, 0.03, 0.05)))
    if rng.random() < 0.35:
        for sx in (-1, 1):
            parts.append(box((sx * seat_w / 2, 0, seat_h + seat_t + 0.2), (0.04, seat_d, 0.04)))
            parts.append(box((sx * seat_w / 2, -seat_d / 2 + 0.03, seat_h + seat_t + 0.1), (0.03, 0.03, 0.2)))
    return parts


def make_desk(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """A wide top with a drawer pedestal on one or both sides (legs or a panel elsewhere)."""
    width, depth, height, top_t = rng.uniform(1.1, 1.7), rng.uniform(0.55, 0.8), rng.uniform(0.7, 0.78), 0.04
    ped_w = rng.uniform(0.35, 0.45)
    sides = [(-1,), (1,), (-1, 1)][int(rng.integers(0, 3))]
    parts = [box((0, 0, height - top_t / 2), (width, depth, top_t))]
    rows = int(rng.integers(2, 4))
    for side in sides:
        x = side * (width / 2 - ped_w / 2)
        parts.append(box((x, 0, (height - top_t) / 2), (ped_w, depth - 0.04, height - top_t)))
        for part in drawers(ped_w - 0.04, height - top_t - 0.06, 0.03, -(depth - 0.04) / 2, rows, 1, rng):
            parts.append(part.apply_translation((x, 0, 0)))
    if len(sides) == 1:  # the other end stands on a panel or two legs
        x = -sides[0] * (width / 2 - 0.03)
        if rng.random() < 0.5:
            parts.append(box((x, 0, (height - top_t) / 2), (0.04, depth - 0.04, height - top_t)))
        else:
            parts += [box((x, sy * (depth / 2 - 0.04), (height - top_t) / 2), (0.05, 0.05, height - top_t))
                      for sy in (-1, 1)]
    if rng.random() < 0.5:  # modesty panel at the back
        parts.append(box((0, depth / 2 - 0.03, height * 0.6), (width - 2 * ped_w, 0.02, height * 0.5)))
    return parts


def make_dresser(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """A wide cabinet with a grid of drawers, a top slab and short feet."""
    width, depth, height = rng.uniform(0.9, 1.6), rng.uniform(0.4, 0.55), rng.uniform(0.7, 1.3)
    feet = rng.uniform(0.04, 0.12)
    rows, columns = int(rng.integers(3, 6)), int(rng.integers(1, 3)) + int(width > 1.3)
    parts = legs(width, depth, feet, 0.06, rng, inset=0.02)
    parts.append(box((0, 0, feet + height / 2), (width, depth, height)))
    parts.append(box((0, 0, feet + height + 0.015), (width + 0.04, depth + 0.03, 0.03)))
    parts += drawers(width - 0.06, height - 0.06, feet + 0.03, -depth / 2, rows, columns, rng)
    if rng.random() < 0.3:  # a mirror frame on top
        mirror_h = rng.uniform(0.5, 0.8)
        parts.append(box((0, depth / 2 - 0.03, feet + height + 0.03 + mirror_h / 2), (width * 0.7, 0.03, mirror_h)))
    return parts


def make_monitor(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """A thin wide screen on a neck and a flat base."""
    width = rng.uniform(0.45, 0.75)
    height = width * rng.uniform(0.5, 0.75)
    thick, neck = rng.uniform(0.02, 0.06), rng.uniform(0.08, 0.2)
    base_t = 0.02
    parts = [box((0, 0, base_t + neck + height / 2), (width, thick, height))]
    if rng.random() < 0.5:
        parts.append(cylinder((0, 0.03, base_t / 2), rng.uniform(0.1, 0.15), base_t, sections=24))
    else:
        parts.append(box((0, 0.03, base_t / 2), (rng.uniform(0.2, 0.3), rng.uniform(0.15, 0.2), base_t)))
    parts.append(box((0, 0.03, base_t + (neck + 0.05) / 2), (0.05, 0.03, neck + 0.05)))
    if rng.random() < 0.5:  # a bulge at the back
        parts.append(box((0, thick / 2 + 0.03, base_t + neck + height / 2), (width * 0.5, 0.06, height * 0.5)))
    return parts


def make_night_stand(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """A small, near-cubic cabinet with one or two drawers (and sometimes an open shelf) on legs."""
    width, depth = rng.uniform(0.4, 0.55), rng.uniform(0.35, 0.5)
    height, leg_h = rng.uniform(0.45, 0.6), rng.uniform(0.05, 0.2)
    parts = legs(width, depth, leg_h, 0.04, rng)
    parts.append(box((0, 0, leg_h + height / 2), (width, depth, height)))
    rows = int(rng.integers(1, 3))
    shelf = rng.random() < 0.4
    drawer_h = height * (0.5 if shelf else 1.0)
    parts += drawers(width - 0.04, drawer_h - 0.04, leg_h + height - drawer_h + 0.02, -depth / 2, rows, 1, rng)
    if rng.random() < 0.4:  # a lamp on top
        parts.append(cylinder((0, 0, leg_h + height + 0.1), 0.015, 0.2))
        parts.append(cylinder((0, 0, leg_h + height + 0.25), 0.09, 0.12))
    return parts


def make_sofa(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """A long low base with a backrest, two armrests (mostly) and seat cushions."""
    length, depth = rng.uniform(1.5, 2.4), rng.uniform(0.75, 0.95)
    base_h, back_h = rng.uniform(0.3, 0.42), rng.uniform(0.35, 0.5)
    arm_w, back_t = rng.uniform(0.12, 0.22), rng.uniform(0.15, 0.25)
    feet = rng.uniform(0.0, 0.1)
    parts = legs(length, depth, feet, 0.05, rng, inset=0.05) if feet > 0.03 else []
    parts.append(box((0, 0, feet + base_h / 2), (length, depth, base_h)))
    parts.append(box((0, depth / 2 - back_t / 2, feet + base_h + back_h / 2), (length, back_t, back_h)))
    arm_h = rng.uniform(0.12, 0.25)
    if rng.random() < 0.85:
        for sx in (-1, 1):
            parts.append(box((sx * (length / 2 - arm_w / 2), 0, feet + base_h + arm_h / 2), (arm_w, depth, arm_h)))
    cushions = int(rng.integers(1, 4))
    inner = length - 2 * arm_w
    for c in range(cushions):
        x = -inner / 2 + (c + 0.5) * inner / cushions
        parts.append(box((x, -back_t / 2, feet + base_h + 0.05), (inner / cushions - 0.02, depth - back_t, 0.1)))
    return parts


def make_table(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """A flat top (rectangular or round) on four legs or a central pedestal; nothing below the top."""
    height, top_t = rng.uniform(0.45, 0.8), rng.uniform(0.03, 0.06)
    if rng.random() < 0.6:
        width, depth = rng.uniform(0.8, 1.8), rng.uniform(0.6, 1.0)
        parts = [box((0, 0, height - top_t / 2), (width, depth, top_t))]
        parts += legs(width, depth, height - top_t, rng.uniform(0.04, 0.08), rng, inset=rng.uniform(0.0, 0.1))
        if rng.random() < 0.4:  # a low stretcher shelf
            parts.append(box((0, 0, 0.15), (width * 0.8, depth * 0.8, 0.03)))
    else:
        radius = rng.uniform(0.4, 0.7)
        parts = [cylinder((0, 0, height - top_t / 2), radius, top_t, sections=32)]
        parts.append(cylinder((0, 0, (height - top_t) / 2), rng.uniform(0.04, 0.08), height - top_t))
        parts.append(cylinder((0, 0, 0.02), radius * rng.uniform(0.4, 0.7), 0.04, sections=24))
    return parts


def make_toilet(rng: np.random.Generator) -> list[trimesh.Trimesh]:
    """A pedestal, an oval bowl with a seat ring, and a tank at the back (sometimes a lid up)."""
    bowl_r, bowl_h = rng.uniform(0.17, 0.22), rng.uniform(0.35, 0.42)
    stretch = rng.uniform(1.2, 1.5)
    parts = [cylinder((0, 0, bowl_h * 0.35), bowl_r * 0.6, bowl_h * 0.7)]
    parts.append(ellipsoid((0, 0, bowl_h * 0.75), (bowl_r, bowl_r * stretch, bowl_h * 0.3)))
    parts.append(torus((0, 0, bowl_h), bowl_r * 0.8, 0.035, stretch=(1.0, stretch)))
    tank_w, tank_h, tank_d = rng.uniform(0.35, 0.5), rng.uniform(0.3, 0.45), rng.uniform(0.15, 0.22)
    tank_y = bowl_r * stretch + tank_d / 2 - 0.05
    parts.append(box((0, tank_y, bowl_h * 0.6 + tank_h / 2), (tank_w, tank_d, tank_h)))
    if rng.random() < 0.5:  # a lid leaning against the tank
        parts.append(box((0, tank_y - tank_d / 2 - 0.02, bowl_h + 0.2), (bowl_r * 1.6, 0.03, 0.4)))
    if rng.random() < 0.5:  # a flush button
        parts.append(cylinder((0, tank_y, bowl_h * 0.6 + tank_h + 0.01), 0.03, 0.02))
    return parts


BUILDERS: dict[str, Callable[[np.random.Generator], list[trimesh.Trimesh]]] = {
    "bathtub": make_bathtub, "bed": make_bed, "chair": make_chair, "desk": make_desk, "dresser": make_dresser,
    "monitor": make_monitor, "night_stand": make_night_stand, "sofa": make_sofa, "table": make_table,
    "toilet": make_toilet,
}


def build_mesh(class_name: str, rng: np.random.Generator) -> trimesh.Trimesh:
    """One object of ``class_name``, centred on its bounding box and scaled into the unit sphere."""
    check_choice(class_name, "class_name", CLASS_NAMES)
    mesh = trimesh.util.concatenate(BUILDERS[class_name](rng))
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    mesh.apply_scale(1.0 / np.linalg.norm(mesh.vertices, axis=1).max())
    return mesh


class ProceduralShapes(Dataset):
    """Procedural objects of the ten ModelNet10 categories as point clouds.

    Items are ``(points, label)``: ``points (num_points, 3)`` float32, sampled uniformly (by area) on the
    mesh surface with a seeded generator, centred on the bounding box and inside the unit sphere;
    ``label`` an int64 class index into :attr:`class_names`. The same arguments give the same data on
    every machine; the train and test splits draw from different seeds.

    Args:
        split: ``"train"`` or ``"test"``.
        num_per_class: objects per category.
        num_points: points sampled per object.
        seed: base seed of the split.
        noise: standard deviation of Gaussian jitter added to the points (0 for none).
    """

    class_names = list(CLASS_NAMES)

    def __init__(self, split: str = "train", num_per_class: int = 50, num_points: int = 1024, seed: int = 0,
                 noise: float = 0.0) -> None:
        check_choice(split, "split", SPLITS)
        self.split = split
        self.num_per_class = check_positive_int(num_per_class, "num_per_class")
        self.num_points = check_positive_int(num_points, "num_points")
        self.seed = check_positive_int(seed, "seed", minimum=0)
        self.noise = check_non_negative(noise, "noise")
        self.labels = torch.arange(len(CLASS_NAMES)).repeat_interleave(num_per_class)  # (N,) int64
        clouds = [self._points(i) for i in range(len(self.labels))]
        self.points = torch.from_numpy(np.stack(clouds)).float()  # (N, num_points, 3)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, _SPLIT_SALT[self.split], index])

    def mesh(self, index: int) -> trimesh.Trimesh:
        """The ``trimesh.Trimesh`` that item ``index`` was sampled from."""
        if not 0 <= index < len(self):
            raise ValueError(f"index must be in [0, {len(self) - 1}], got {index!r}")
        return build_mesh(CLASS_NAMES[int(self.labels[index])], self._rng(index))

    def _points(self, index: int) -> np.ndarray:
        mesh = self.mesh(index)
        sample_seed = int(self._rng(index).integers(2**31)) + 1
        points, _ = trimesh.sample.sample_surface(mesh, self.num_points, seed=sample_seed)
        if self.noise > 0:
            points = points + np.random.default_rng(sample_seed).normal(0.0, self.noise, points.shape)
        return points.astype(np.float32)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.points[index], self.labels[index]

    def tensors(self) -> TensorDataset:
        """The same data as a ``TensorDataset`` of ``(points, labels)``."""
        return TensorDataset(self.points, self.labels)
