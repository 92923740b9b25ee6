"""Plots (matplotlib), widgets (ipywidgets) and 3-D views (plotly) used across the notebooks."""

from vclib.viz.plots import plot_confusion_matrix, plot_history, show_images

__all__ = ["plot_confusion_matrix", "plot_history", "show_images"]
