"""Visualisations of what encoders learned: the cluster gallery (:mod:`avssl.viz.gallery`)."""

from avssl.viz.gallery import (
    ExcerptSettings,
    GalleryCluster,
    GalleryItem,
    build_clusters,
    order_clusters,
    render_page,
    write_gallery,
)

__all__ = [
    "ExcerptSettings",
    "GalleryCluster",
    "GalleryItem",
    "build_clusters",
    "order_clusters",
    "render_page",
    "write_gallery",
]
