"""Networks: backbones (FusionNet, PanNet), KSDiff around a backbone, and the SSDiff baseline."""
from __future__ import annotations

import inspect

from torch import nn

from .fusionnet import FusionNet
from .ksdiff import KSDiff
from .pannet import PanNet
from .ssdiff import SSDiff
from .tilenorm import TileNormalised

BACKBONES = {"fusionnet": FusionNet, "pannet": PanNet}
METHODS = ("ksdiff", "fusionnet", "pannet", "ssdiff")


def build_model(method: str, bands: int, backbone: str = "fusionnet", **kw) -> nn.Module:
    """Build a network by method name; ``kw`` are the config's ``model`` options."""
    kw = dict(kw)
    bb_kw = {k: kw.pop(k) for k in ("width", "blocks", "modulate", "modulate_ends") if k in kw}
    prefuse = kw.pop("prefuse", False)
    if prefuse:   # the backbone corrects an in-graph classical fusion (nets/prefuse.py): true = HPM, or "gsa"
        bb_kw["prefuse"] = int(kw.get("ratio", 4))
        bb_kw["prefuse_kind"] = "hpm" if prefuse is True else str(prefuse)
    if method in BACKBONES:
        bb_kw.pop("modulate", None)  # a bare backbone has no kernel modulation
        bb_kw.pop("modulate_ends", None)
        net = BACKBONES[method](bands, **bb_kw)
        # the same per-tile normalisation as KSDiff's, for a like-for-like comparison
        return TileNormalised(net, int(kw.get("ratio", 4))) if kw.get("tile_norm") else net
    if method == "ksdiff":
        bb_kw.setdefault("modulate", "first")
        bb = BACKBONES[backbone](bands, ranks=tuple(kw.get("ranks", (4, 4, 3))), **bb_kw)
        return KSDiff(bb, bands, **kw)
    if method == "ssdiff":
        return SSDiff(bands, **kw)
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def _parameters(cls: type, skip: tuple[str, ...]) -> set[str]:
    return {n for n in inspect.signature(cls.__init__).parameters if n not in ("self", *skip)}


def model_keys(method: str, backbone: str = "fusionnet") -> set[str]:
    """The ``model:`` options ``build_model`` takes for ``method`` (around ``backbone``): the network constructors'
    own parameters (``inspect.signature``) and the few ``build_model`` reads itself (``prefuse``, ``ratio``,
    ``tile_norm``). A bare backbone silently ignored any other key and KSDiff raised a bare TypeError."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    if method == "ssdiff":
        return _parameters(SSDiff, ("bands",))
    bb = BACKBONES.get(backbone if method == "ksdiff" else method)
    if bb is None:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {tuple(BACKBONES)}")
    own = _parameters(bb, ("bands", "prefuse_kind"))   # prefuse_kind: set from ``prefuse``
    if method == "ksdiff":
        return own | _parameters(KSDiff, ("backbone", "bands"))
    return (own - {"ranks"}) | {"ratio", "tile_norm"}


def size_multiple(model: nn.Module) -> int:
    return int(getattr(model, "size_multiple", 1))
