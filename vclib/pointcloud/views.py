"""Figures of 3-D representations: interactive plotly ``go.Figure`` views to rotate, matplotlib figures
(what a stored notebook and GitHub show), and a widget that picks the object, representation and resolution."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
import trimesh
from matplotlib.figure import Figure

from vclib.checks import check_choice
from vclib.pointcloud.representations import VIEW_NAMES, depth_maps, grid_points, signed_distance_grid, voxelize

REPRESENTATIONS = ("mesh", "points", "voxels", "sdf", "depth maps")
_SCENE = {"xaxis_title": "x", "yaxis_title": "y", "zaxis_title": "z (up)", "aspectmode": "cube",
          "xaxis_range": [-1, 1], "yaxis_range": [-1, 1], "zaxis_range": [-1, 1]}


def mesh_trace(mesh: trimesh.Trimesh) -> go.Mesh3d:
    """The triangles of ``mesh`` as a plotly ``Mesh3d``."""
    (x, y, z), (i, j, k) = np.asarray(mesh.vertices).T, np.asarray(mesh.faces).T
    return go.Mesh3d(x=x, y=y, z=z, i=i, j=j, k=k, color="lightsteelblue", flatshading=True, name="mesh")


def points_trace(points: torch.Tensor, colour: torch.Tensor | None = None, size: float = 2.0) -> go.Scatter3d:
    """A cloud ``(N, 3)`` as plotly markers, coloured by height unless ``colour (N,)`` is given."""
    x, y, z = points.T.numpy()
    values = z if colour is None else colour.numpy()
    return go.Scatter3d(x=x, y=y, z=z, mode="markers", name="points",
                        marker={"size": size, "color": values, "colorscale": "Viridis"})


def voxel_trace(grid: torch.Tensor) -> go.Mesh3d:
    """Occupied cells of an ``(R, R, R)`` grid over ``[-1, 1]^3`` as cubes (one ``Mesh3d``)."""
    resolution = grid.shape[0]
    corners = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]])
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 6, 5], [4, 7, 6], [0, 5, 1], [0, 4, 5],
                      [1, 6, 2], [1, 5, 6], [2, 7, 3], [2, 6, 7], [3, 4, 0], [3, 7, 4]])
    cells = grid.nonzero().numpy()  # (M, 3)
    vertices = ((cells[:, None] + corners[None]) / resolution * 2 - 1).reshape(-1, 3)  # (M*8, 3)
    triangles = (faces[None] + 8 * np.arange(len(cells))[:, None, None]).reshape(-1, 3)  # (M*12, 3)
    (x, y, z), (i, j, k) = vertices.T, triangles.T
    return go.Mesh3d(x=x, y=y, z=z, i=i, j=j, k=k, color="sandybrown", flatshading=True, name="voxels")


def sdf_trace(sdf: torch.Tensor) -> go.Isosurface:
    """The zero level set of a signed-distance grid ``(R, R, R)`` over ``[-1, 1]^3``."""
    x, y, z = grid_points(sdf.shape[0]).reshape(-1, 3).T.numpy()
    return go.Isosurface(x=x, y=y, z=z, value=sdf.reshape(-1).numpy(), isomin=0.0, isomax=0.0, surface_count=1,
                         colorscale="Teal", showscale=False, caps={"x_show": False, "y_show": False, "z_show": False},
                         name="sdf = 0")


def representation_figure(mesh: trimesh.Trimesh, points: torch.Tensor, representation: str,
                          resolution: int = 24, title: str = "") -> go.Figure:
    """One representation of one object as an interactive plotly figure."""
    check_choice(representation, "representation", REPRESENTATIONS)
    if representation == "depth maps":
        maps = depth_maps(points[None], image_size=resolution, point_size=3 if resolution > 48 else 1)[0]
        mosaic = torch.cat(list(maps), dim=1).numpy()  # (H, 6 W)
        figure = go.Figure(go.Heatmap(z=mosaic[::-1], colorscale="gray", showscale=False))
        figure.update_layout(title=f"{title}depth maps: " + ", ".join(VIEW_NAMES), xaxis_title="views side by side",
                             yaxis_title="image up", height=300, width=900)
        return figure
    trace = {"mesh": lambda: mesh_trace(mesh), "points": lambda: points_trace(points),
             "voxels": lambda: voxel_trace(voxelize(points, resolution)),
             "sdf": lambda: sdf_trace(signed_distance_grid(mesh, resolution))}[representation]()
    figure = go.Figure(trace)
    figure.update_layout(title=f"{title}{representation}", scene=_SCENE, height=450, width=500,
                         margin={"l": 0, "r": 0, "t": 40, "b": 0})
    return figure


def representations_static(mesh: trimesh.Trimesh, points: torch.Tensor, resolution: int = 24,
                           title: str = "") -> Figure:
    """The same object five ways in one matplotlib figure: mesh, points, voxels, an SDF slice, depth maps."""
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(15, 6.4), dpi=100)
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    ax = figure.add_subplot(2, 4, 1, projection="3d")
    ax.plot_trisurf(*vertices.T, triangles=faces, color="lightsteelblue", linewidth=0)
    ax.set_title(f"mesh: {len(faces):,} triangles")
    ax = figure.add_subplot(2, 4, 2, projection="3d")
    ax.scatter(*points.T.numpy(), s=1, c=points[:, 2].numpy(), cmap="viridis")
    ax.set_title(f"point cloud: {len(points):,} points")
    grid = voxelize(points, resolution)
    ax = figure.add_subplot(2, 4, 3, projection="3d")
    ax.voxels(grid.numpy(), facecolors="sandybrown", edgecolor="k", linewidth=0.1)
    ax.set_title(f"voxels: {int(grid.sum())} of {resolution}^3 occupied")
    for ax in figure.axes:
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_zlabel("z")
    sdf = signed_distance_grid(mesh, resolution)
    ax = figure.add_subplot(2, 4, 4)
    middle = int((sdf < 0).sum(dim=(0, 2)).argmax())  # the x-z slice with the most inside cells
    slice_ = sdf[:, middle].T.numpy()  # (z, x)
    image = ax.imshow(slice_, origin="lower", extent=(-1, 1, -1, 1), cmap="RdBu", vmin=-0.5, vmax=0.5)
    ax.contour(np.linspace(-1, 1, resolution), np.linspace(-1, 1, resolution), slice_, levels=[0], colors="k")
    figure.colorbar(image, ax=ax, fraction=0.046, label="signed distance (negative inside)")
    ax.set(title="SDF: the x-z slice with most inside cells", xlabel="x", ylabel="z")
    maps = depth_maps(points[None], image_size=32)[0]
    for v, name in enumerate(VIEW_NAMES):
        ax = figure.add_subplot(2, 8, 10 + v if v < 6 else 16)
        ax.imshow(maps[v].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set(title=f"depth: {name}", xlabel="right", ylabel="up", xticks=[], yticks=[])
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def representation_panel(mesh: trimesh.Trimesh, points: torch.Tensor, representation: str,
                         resolution: int = 24, title: str = "") -> Figure:
    """One representation of one object as a matplotlib figure (the widget's view; a picture that a
    stored notebook can keep). :func:`representation_figure` draws the same as a plotly figure to rotate."""
    import matplotlib.pyplot as plt

    check_choice(representation, "representation", REPRESENTATIONS)
    if representation in ("sdf", "depth maps"):
        figure, ax = plt.subplots(figsize=(9 if representation == "depth maps" else 5, 4.2), dpi=100)
        if representation == "sdf":
            sdf = signed_distance_grid(mesh, resolution)
            middle = int((sdf < 0).sum(dim=(0, 2)).argmax())  # the x-z slice with the most inside cells
            shown = ax.imshow(sdf[:, middle].T.numpy(), origin="lower", extent=(-1, 1, -1, 1), cmap="RdBu",
                              vmin=-0.5, vmax=0.5)
            figure.colorbar(shown, ax=ax, label="signed distance (negative inside)")
            ax.set(title=f"{title}sdf, {resolution}^3 cells: the x-z slice with most inside cells",
                   xlabel="x", ylabel="z")
        else:
            maps = depth_maps(points[None], image_size=resolution, point_size=3 if resolution > 48 else 1)[0]
            ax.imshow(torch.cat(list(maps), dim=1).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set(title=f"{title}depth maps ({resolution} px): " + ", ".join(VIEW_NAMES),
                   xlabel="views side by side", ylabel="image up", yticks=[])
        return figure
    figure = plt.figure(figsize=(5.5, 5), dpi=100)
    ax = figure.add_subplot(projection="3d")
    if representation == "mesh":
        vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
        ax.plot_trisurf(*vertices.T, triangles=faces, color="lightsteelblue", linewidth=0)
        ax.set_title(f"{title}mesh: {len(faces):,} triangles")
    elif representation == "points":
        ax.scatter(*points.T.numpy(), s=2, c=points[:, 2].numpy(), cmap="viridis")
        ax.set_title(f"{title}points: {len(points):,}")
    else:
        grid = voxelize(points, resolution)
        ax.voxels(grid.numpy(), facecolors="sandybrown", edgecolor="k", linewidth=0.1)
        ax.set_title(f"{title}voxels: {int(grid.sum())} of {resolution}^3 occupied")
    ax.set(xlabel="x", ylabel="y", zlabel="z (up)")
    return figure


def representation_explorer(dataset, indices: list[int] | None = None) -> None:
    """Widget: pick an object of a :class:`~vclib.data.shapes.ProceduralShapes`, a representation and
    a resolution (voxel and SDF cells per side, depth-map pixels); draws :func:`representation_panel`."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    indices = indices if indices is not None else list(range(0, len(dataset), dataset.num_per_class))
    options = [(f"{i}: {dataset.class_names[int(dataset.labels[i])]}", i) for i in indices]
    index = widgets.Dropdown(options=options, description="object")
    representation = widgets.Dropdown(options=REPRESENTATIONS, value="voxels", description="view")
    resolution = widgets.IntSlider(value=16, min=8, max=48, step=4, description="resolution")
    output = widgets.Output()

    def redraw(_: object = None) -> None:
        with output:
            output.clear_output(wait=True)
            i = index.value
            representation_panel(dataset.mesh(i), dataset.points[i], representation.value, resolution.value,
                                 title=f"{dataset.class_names[int(dataset.labels[i])]}: ")
            plt.show()

    for control in (index, representation, resolution):
        control.observe(redraw, names="value")
    redraw()
    display(widgets.VBox([widgets.HBox([index, representation, resolution]), output]))


def _scatter(ax, points: torch.Tensor, title: str, **kwargs) -> None:
    ax.scatter(*points.T.numpy(), **{"s": 2, **kwargs})
    ax.set(title=title, xlabel="x", ylabel="y", zlabel="z", xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1))


def critical_points_figure(points: torch.Tensor, critical: torch.Tensor, upper_bound: torch.Tensor,
                           title: str = "") -> Figure:
    """PointNet's Fig. 7: a cloud ``(N, 3)``, its critical points (indices) and an upper-bound shape ``(M, 3)``."""
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(12, 4), dpi=100)
    _scatter(figure.add_subplot(1, 3, 1, projection="3d"), points, f"input: {len(points)} points", c="grey")
    _scatter(figure.add_subplot(1, 3, 2, projection="3d"), points[critical],
             f"critical points: {len(critical)}", c="crimson", s=6)
    _scatter(figure.add_subplot(1, 3, 3, projection="3d"), upper_bound,
             f"upper-bound shape: {len(upper_bound)} probes", c="teal", s=2)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def neighbourhood_figure(points: torch.Tensor, graphs: list[torch.Tensor], index: int, title: str = "") -> Figure:
    """The ``K`` neighbours of point ``index`` in the graph of every DGCNN layer (``graphs``: ``(N, K)`` each)."""
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(4 * len(graphs), 4), dpi=100)
    for layer, idx in enumerate(graphs):
        ax = figure.add_subplot(1, len(graphs), layer + 1, projection="3d")
        _scatter(ax, points, f"layer {layer + 1}: graph from {'xyz' if layer == 0 else 'features'}", c="lightgrey")
        _scatter(ax, points[idx[index]], "", c="crimson", s=10)
        _scatter(ax, points[index:index + 1], f"layer {layer + 1}: neighbours of point {index}", c="k", s=40)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_robustness(curves: dict[str, dict[str, list[float]]], settings: dict[str, list[float]]) -> Figure:
    """Accuracy curves ``curves[model][corruption]`` against ``settings[corruption]``, one panel each."""
    import matplotlib.pyplot as plt

    labels = {"drop": "fraction of points dropped", "noise": "noise standard deviation",
              "rotation": "rotation about z (degrees)"}
    figure, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 3.6), dpi=100)
    for ax, (corruption, values) in zip(axes, settings.items(), strict=True):
        for model, curve in curves.items():
            ax.plot(values, curve[corruption], marker="o", label=model)
        ax.set(title=f"accuracy under {corruption}", xlabel=labels[corruption], ylabel="test accuracy", ylim=(0, 1.02))
        ax.legend()
    figure.tight_layout()
    return figure
