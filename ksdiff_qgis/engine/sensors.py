"""Sensor table: band layout, PAN/MS ratio, MTF gains at Nyquist, value scale, and which model serves it.

MTF gains (MS per band; PAN) come from ``shared/design/METHOD.md``, i.e. the values of the
pansharpening toolbox of Vivone et al. ("A Critical Comparison Among Pansharpening Algorithms", IEEE
TGRS 53(5), 2015; its MATLAB ``MTF.m`` / ``genMTF.m``, also in liangjiandeng/DLPan-Toolbox
``Tools/genMTF.m``): QuickBird, IKONOS, GeoEye-1, WorldView-2, WorldView-3. A 4-band B, G, R, NIR
product of an 8-band sensor takes those bands' gains.

No published gains were found for Pléiades 1A/1B, Pléiades Neo or SPOT 6/7 (searched: toolbox code,
"GNyq Pleiades"): they use the generic 0.3 (MS) / 0.15 (PAN), as GaoFen-2 and Landsat do. WorldView-4
reuses GeoEye-1's 0.23 / 0.16: the one public training script found that lists WV4 treats it like
GeoEye-1 (WorldView-4 was built as GeoEye-2); that is a convention, not a measurement.

Keys are part of the plugin's interface (``SENSOR=`` in models, scripts and qgis_process calls):
never rename one, only add.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

GENERIC_MTF_MS = 0.3
GENERIC_MTF_PAN = 0.15


@dataclass(frozen=True)
class Sensor:
    key: str
    name: str
    band_names: tuple[str, ...]  # empty: any band layout (generic)
    ratio: int                   # 0: any ratio (generic)
    mtf_ms: tuple[float, ...]    # MS gain at the low-resolution Nyquist frequency, per band
    mtf_pan: float               # PAN gain at its own Nyquist frequency
    scale: float                 # maximum raw value (2**bits - 1) the sensor delivers; 0: from the data
    pan_gsd: float = 0.0         # nominal PAN pixel size (m) of delivered products, for auto-detection
    model: str | None = None     # bundled model (resources/models/<model>.onnx) trained on this sensor
    nearest_model: str | None = None  # else the bundled model of the nearest sensor (used only if it helps)
    # the bundled model for an MS_BANDS selection that lacks one of the main model's bands (an 8-band product's
    # B, G, R, NIR picked out: the 4-band network fuses what the 8-band one cannot)
    subset_model: str | None = None
    # a generic run of this sensor's product whose band count is not the sensor's (``generic_like``): the sensor
    # whose MS gains apply to the bands whose names match its bands
    like: str | None = None
    # how its products number their bands when the number means a colour: "oli" (Landsat 8/9: B1 coastal, B2 blue,
    # ... B5 NIR) or "tm" (Landsat 4-7: B1 blue ... B4 NIR); "" for names that say what they are
    landsat: str = ""

    @property
    def n_bands(self) -> int:
        return len(self.band_names)

    @property
    def generic(self) -> bool:
        return not self.band_names

    def gain_for(self, index: int) -> float:
        """MTF gain of the sensor's band ``index`` (0-based), generic beyond the table."""
        return self.mtf_ms[index] if 0 <= index < len(self.mtf_ms) else GENERIC_MTF_MS


# Maxar (WorldView, QuickBird, GeoEye-1, IKONOS) and GaoFen-2 MS rasters hold B, G, R, NIR (8 bands: C, B, G, Y, R,
# RE, N1, N2), the order their .IMD lists BAND_B ... BAND_N (DigitalGlobe's geoio: DG_BAND_NAMES 'WV02_MULTI',
# 'IK02_MULTI') and CRESDA's band numbers 1-4; GDAL names no band of these GeoTIFFs (checked 2026-12-07 against
# GDAL 3.6's GTiff and its IMAGERY metadata readers), so nothing GDAL gives contradicts the table
BGRN = ("Blue", "Green", "Red", "NIR")
# Airbus delivers Pléiades 1A/1B and SPOT 6/7 MS rasters in display order R, G, B, NIR (band IDs B2, B1, B0, B3: the
# DIMAP's Band_Display_Order; read so by ACOLITE, the Orfeo Toolbox and eoreader's DimapV2Product: MS red 1, green 2,
# blue 3, NIR 4). An unnamed product of theirs is taken in this order. GDAL's DIMAP driver names no band of theirs
# (its per-band RADIANCE_* metadata put B0 on band 1: no raster order, see delivery.dimap_band_names)
RGBN = ("Red", "Green", "Blue", "NIR")
# Pléiades Neo's 6-band MS (MS-FS, PMS-FS) comes as two files per tile, RGB (R, G, B) and NED (NIR, Red Edge, Deep
# Blue); GDAL's DIMAP driver stacks them so and names the bands Red, Green, Blue, NIR, Red Edge, Deep Blue (its
# autotest test_dimap_2_vhr2020_ms_fs; eoreader's MS_FS map: red 1 ... NIR 4, red edge 5, deep blue 6), as a user's
# VRT of the RGB then the NED tile does. Until 2026-12-07 the table said Deep Blue, Blue, Green, Red, Red Edge, NIR:
# an unnamed stack had its Green, Blue, NIR and Deep Blue fed to the network as Blue, Green, Red and NIR
PNEO6 = ("Red", "Green", "Blue", "NIR", "Red Edge", "Deep Blue")
WV8 = ("Coastal", "Blue", "Green", "Yellow", "Red", "Red Edge", "NIR1", "NIR2")
G4 = (GENERIC_MTF_MS,) * 4

SENSORS: dict[str, Sensor] = {
    s.key: s
    for s in (
        Sensor("wv2", "WorldView-2 (4 bands: B, G, R, NIR)", BGRN, 4, (0.35, 0.35, 0.35, 0.35), 0.11, 2047.0,
               pan_gsd=0.46, model="wv2"),
        # all eight bands by the 8-band network, trained with WorldView-2's real PAN (pair 1 spread over eight
        # bands); chosen on validation pair 2 (docs/VALIDATION.md, 2026-12-05 10:25 UTC)
        Sensor("wv2_8", "WorldView-2 (8 bands)", WV8, 4, (0.35,) * 7 + (0.27,), 0.11, 2047.0,
               pan_gsd=0.46, model="wv3", subset_model="wv2"),
        Sensor("wv3", "WorldView-3 (8 VNIR bands)", WV8, 4, (0.325, 0.355, 0.360, 0.350, 0.365, 0.360, 0.335, 0.315),
               0.14, 2047.0, pan_gsd=0.31, model="wv3", subset_model="wv2"),
        Sensor("wv3_4", "WorldView-3 (4 bands: B, G, R, NIR)", BGRN, 4, (0.355, 0.360, 0.365, 0.335), 0.14, 2047.0,
               pan_gsd=0.31, nearest_model="wv2"),
        Sensor("wv4", "WorldView-4 (4 bands: B, G, R, NIR)", BGRN, 4, (0.23,) * 4, 0.16, 2047.0,
               pan_gsd=0.31, nearest_model="qb"),
        Sensor("qb", "QuickBird (4 bands: B, G, R, NIR)", BGRN, 4, (0.34, 0.32, 0.30, 0.22), 0.15, 2047.0,
               pan_gsd=0.61, model="qb"),
        Sensor("ge1", "GeoEye-1 (4 bands: B, G, R, NIR)", BGRN, 4, (0.23,) * 4, 0.16, 2047.0,
               pan_gsd=0.41, nearest_model="qb"),
        Sensor("ikonos", "IKONOS (4 bands: B, G, R, NIR)", BGRN, 4, (0.26, 0.28, 0.29, 0.28), 0.17, 2047.0,
               pan_gsd=0.82, nearest_model="qb"),
        Sensor("pleiades", "Pléiades 1A/1B (4 bands: R, G, B, NIR)", RGBN, 4, G4, GENERIC_MTF_PAN, 4095.0,
               pan_gsd=0.7, nearest_model="qb"),
        Sensor("pneo", "Pléiades Neo (6 bands)", PNEO6, 4,
               (GENERIC_MTF_MS,) * 6, GENERIC_MTF_PAN, 4095.0, pan_gsd=0.3, nearest_model="wv2"),
        Sensor("spot67", "SPOT 6/7 (4 bands: R, G, B, NIR)", RGBN, 4, G4, GENERIC_MTF_PAN, 4095.0,
               pan_gsd=1.5, nearest_model="qb"),
        Sensor("gf2", "GaoFen-2 (4 bands: B, G, R, NIR)", BGRN, 4, G4, GENERIC_MTF_PAN, 1023.0,
               pan_gsd=0.81, model="gf2"),
        Sensor("landsat8", "Landsat 8/9 OLI (B2, B3, B4, B5; PAN B8)", ("B2 Blue", "B3 Green", "B4 Red", "B5 NIR"), 2,
               G4, GENERIC_MTF_PAN, 65535.0, pan_gsd=15.0, model="landsat8", landsat="oli"),
        Sensor("generic", "Generic (any bands and ratio; MTF gains 0.3 for MS, 0.15 for PAN unless given)", (), 0, (),
               GENERIC_MTF_PAN, 0.0),
    )
}
AUTO = "auto"
# sensors product metadata may name that have no SENSOR key (no network, no gains of their own): SENSOR=auto fuses
# their products as generic, with their band layout (band codes), ratio and gains (``generic_like``). Landsat 4/5 TM
# and 7 ETM+ number their bands B1 blue ... B4 NIR, B5/B7 SWIR (Landsat 8/9: B1 coastal ... B5 NIR); Landsat 7's PAN
# is B8 at 15 m (ratio 2); Landsat 4/5 have none, but a user may bring one. Their values are 8-bit in Level-1 and
# 16-bit in Level-2 products: the scale is the data's
METADATA_ONLY: dict[str, Sensor] = {
    "landsat_tm": Sensor("landsat_tm", "Landsat 4-7 TM/ETM+ (B1, B2, B3, B4; PAN B8 on Landsat 7)",
                         ("B1 Blue", "B2 Green", "B3 Red", "B4 NIR"), 2, G4, GENERIC_MTF_PAN, 0.0, pan_gsd=15.0,
                         landsat="tm"),
}
# (MS bands, ratio) -> the bundled network a generic product of that shape gets as its nearest model, checked on
# the scene like every nearest model (docs/SELFCHECK.md, 2026-12-05: on validation cases run as generic, the
# default's ERGAS / best classical fell from 1.000 to 0.970 with 4 bands at ratio 4, from 1.006 to 0.854 at ratio 2,
# from 1.005 to 0.994 with 8 bands at ratio 4). A generic product of another band count whose bands are named and
# hold Blue, Green, Red and NIR gets the 4-band network of its ratio on those four (``pipeline._named_subset_card``)
GENERIC_NEAREST: dict[tuple[int, int], str] = {(4, 4): "wv2", (4, 2): "landsat8", (8, 4): "wv3"}


def get_sensor(key: str) -> Sensor:
    """Return the sensor for ``key`` or raise KeyError listing the known keys."""
    try:
        return SENSORS[key]
    except KeyError:
        raise KeyError(f"unknown sensor {key!r}; known sensors: {AUTO}, {', '.join(SENSORS)}") from None


def known_sensor(key: str) -> Sensor:
    """The sensor table's entry for ``key``, or a sensor only product metadata names (``METADATA_ONLY``)."""
    return METADATA_ONLY[key] if key in METADATA_ONLY else get_sensor(key)


def generic_like(key: str) -> Sensor:
    """The generic sensor for a product of sensor ``key`` whose MS band count is not the sensor's (a 3-band
    composite), or of a sensor without a SENSOR key (``METADATA_ONLY``): any bands, with ``key``'s ratio (warned when
    the data's differs), PAN gain, and MS gains for the bands whose names match its bands (``bands.band_gain``);
    generic gains for the others."""
    s = known_sensor(key)
    short = s.name.split(" (")[0]
    return replace(SENSORS["generic"], name=f"Generic, as {short} where it applies", ratio=s.ratio,
                   mtf_pan=s.mtf_pan, scale=s.scale, like=key)


def table_of(spec: Sensor) -> Sensor:
    """The sensor whose band layout and gains ``spec`` goes by: itself, or a generic run's ``like`` sensor."""
    return known_sensor(spec.like) if spec.like else spec


def model_for(key: str, bands: int | None = None, ratio: int | None = None,
              by_shape: bool = False) -> tuple[str | None, bool]:
    """The bundled model that serves sensor ``key`` and whether it is the nearest sensor's (not its own); a generic
    product gets the network of its shape (``GENERIC_NEAREST``: its MS ``bands`` and ``ratio``), if any. ``by_shape``
    (METHOD auto, which checks the network on the scene): so does a product of another ratio than its sensor's
    (resampled, or the wrong sensor chosen), whose sensor's own network could not run on it."""
    s = get_sensor(key)
    if s.generic or by_shape and ratio and s.ratio and ratio != s.ratio and (bands, ratio) in GENERIC_NEAREST:
        found = GENERIC_NEAREST.get((bands, ratio))
        return found, found is not None
    if s.model:
        return s.model, False
    return s.nearest_model, s.nearest_model is not None
