"""Datasets: Wald-protocol patches from real GeoTIFF pairs (and simulated-PAN Sentinel-2), PanCollection HDF5."""
from .pancollection import PanCollection
from .patches import PatchSampler, valid_positions
from .scenes import Triple, full_resolution_pair, pair_triple, simulated_triple

__all__ = ["PanCollection", "PatchSampler", "valid_positions", "Triple", "pair_triple", "simulated_triple",
           "full_resolution_pair"]
