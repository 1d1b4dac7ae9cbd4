"""Inputs stored with lossy compression (JPEG, lossy JPEG 2000, WebP, JPEG XL, ECW, LERC with an error bound), found
from the file's metadata.

Such a compression leaves artefacts every method takes for scene detail and keeps in the output (JPEG's 8 x 8-pixel
blocks; a lossy JPEG 2000's smoothed fine detail and ringing). METHOD auto's self-check judges the methods on the scene
degraded by the ratio (Wald's protocol), where those artefacts are smoothed away: it cannot see them, and kept the
learned model where a classical method did better (QA: Sentinel-2 8-bit JPEG quality 75, +8.7 % ERGAS over GSA; quality
50, +15.4 %; JPEG 2000 QUALITY=5, +29.3 %). The method choice is not changed (that needs a pre-registered study): the
run says so once per input, and the self-check's reason says it when it kept the model.

Cheap: the metadata GDAL reports (IMAGE_STRUCTURE's COMPRESSION, COMPRESSION_REVERSIBILITY, JPEG_QUALITY), a JPEG 2000
codestream's COD marker (its wavelet: 9/7 irreversible is lossy) where the driver states nothing, the file's size
against its raw size, and a LERC GeoTIFF's error bound (MAX_Z_ERROR) from its first block's header: GDAL 3.6 says only
COMPRESSION=LERC (QA: MAX_Z_ERROR=2 read back up to 2 off, the output up to 40). Not found: LERC_ZSTD (its block is
zstd-compressed; Python has no zstd), a sparse first block, LERC in other formats (MRF). No pixel is read.
"""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass

from osgeo import gdal

from .gdalutil import gdal_call

JP2_DRIVERS = ("JP2OpenJPEG", "JP2KAK", "JP2ECW", "JPEG2000", "JP2MrSID", "JP2Lura")
HEADER_BYTES = 65536     # a JPEG 2000 main header (SIZ, COD) lies within its first bytes
SOURCES = 2              # a VRT's (or a container's) source files looked at: a delivery's tiles share their codec
# drivers whose pixels lie in other files (a GTiff's other files are sidecars: .aux.xml, an .ovr compressed on its own)
CONTAINERS = ("VRT", "DIMAP", "SENTINEL2", "SAFE")
# a reversible (5/3) codestream this many times smaller than its raw samples has been truncated: lossless JPEG 2000
# of satellite imagery keeps 1/3 to 1/2 of the raw size (Sentinel-2 L1C, the WV2 pairs at 16 bits: 2.1:1)
REVERSIBLE_LOSSY_RATIO = 6.0
SAID_RATIO_BYTES = 1 << 20   # a file's ratio is said from this size on: below, its header (GML boxes) weighs in

# what each codec's lossy mode does to the image, in the warning's words
EFFECTS = {
    "JPEG": "its 8 x 8-pixel blocks (their edges and the fine detail quantised away)",
    "JPEG 2000": "its wavelet quantisation (fine detail smoothed, ringing beside edges, dark pixels rounded down)",
    "WebP": "its 4 x 4- and 16 x 16-pixel blocks (their edges and the fine detail quantised away)",
    "JPEG XL": "its 8 x 8-pixel and larger blocks (their edges and the fine detail quantised away)",
    "ECW": "its wavelet quantisation (fine detail smoothed, ringing beside edges)",
    "LERC": "its quantisation (each value up to the error bound off, fine detail below it flattened)",
}
LERC_LOSSLESS = 0.5   # a LERC block's error bound up to which integer values come back exact (GDAL writes 0.5 for 0)


@dataclass(frozen=True)
class Lossy:
    """A lossy-compressed input: ``codec`` (a key of EFFECTS), what is known of its setting (``detail``: 'quality 75',
    'irreversible 9/7 wavelet, about 10:1'; '' when nothing), the file that holds it."""

    codec: str
    detail: str
    file: str

    def words(self) -> str:
        """'JPEG 2000, irreversible 9/7 wavelet, about 10:1', 'JPEG, quality 75', 'WebP'."""
        return f"{self.codec}, {self.detail}" if self.detail else self.codec

    def effect(self) -> str:
        return EFFECTS[self.codec]


def find(ds: gdal.Dataset) -> Lossy | None:
    """The lossy compression of the raster ``ds`` as opened (a VRT's or a container's first source files when it
    states none itself), None when it is stored losslessly or nothing says otherwise."""
    files = [f for f in (gdal_call(ds.GetFileList)[0] or []) if f]
    found = _from_dataset(ds, files[0] if files else "")
    driver = ds.GetDriver().ShortName if ds.GetDriver() is not None else ""
    if found is not None or driver not in CONTAINERS:
        return found
    # a VRT, a DIMAP or a SAFE: its image files say (their first few; a delivery's tiles share their codec)
    for path in [f for f in files[1:] if not f.lower().endswith((".xml", ".vrt", ".dim", ".msk", ".ovr"))][:SOURCES]:
        src = gdal_call(gdal.OpenEx, path, gdal.OF_RASTER)[0]
        if src is not None:
            found = _from_dataset(src, path)
            if found is not None:
                return found
    return None


def _structure(ds: gdal.Dataset) -> dict[str, str]:
    """IMAGE_STRUCTURE of the dataset and of its first band (a JPEG 2000 driver puts COMPRESSION on the band)."""
    items = dict(ds.GetRasterBand(1).GetMetadata("IMAGE_STRUCTURE") or {}) if ds.RasterCount else {}
    items.update(ds.GetMetadata("IMAGE_STRUCTURE") or {})
    return {k.upper(): str(v).strip() for k, v in items.items()}


def _codec(ds: gdal.Dataset) -> str | None:
    """The codec family of ``ds`` that has a lossy mode (a key of EFFECTS), None for any other storage."""
    driver = ds.GetDriver().ShortName if ds.GetDriver() is not None else ""
    comp = _structure(ds).get("COMPRESSION", "").upper()
    if driver in JP2_DRIVERS or comp.startswith("JPEG2000") or comp == "J2K":
        return "JPEG 2000"
    if driver == "JPEG" or comp.endswith("JPEG"):   # JPEG, OJPEG, 'YCbCr JPEG' (PHOTOMETRIC=YCBCR)
        return "JPEG"
    if driver == "WEBP" or comp == "WEBP":
        return "WebP"
    if driver == "JPEGXL" or comp == "JXL":
        return "JPEG XL"
    if driver == "ECW":
        return "ECW"
    if driver == "GTiff" and comp.startswith("LERC"):   # LERC, LERC_DEFLATE, LERC_ZSTD
        return "LERC"
    return None


def _from_dataset(ds: gdal.Dataset, path: str) -> Lossy | None:
    """``find`` on one raster file: its driver's statement first, then what its codec says."""
    codec = _codec(ds)
    if codec is None:
        return None
    meta = _structure(ds)
    stated = meta.get("COMPRESSION_REVERSIBILITY", "").upper()
    if stated.startswith("LOSSLESS"):   # GDAL's JPEG 2000 driver says LOSSY of a truncated reversible stream too
        return None
    lossy = stated.startswith("LOSSY")
    if codec == "JPEG 2000":
        wavelet, (ratio, size) = _jp2_wavelet(path), _ratio(ds, path)
        if not lossy and (wavelet is None or wavelet == "reversible 5/3" and ratio < REVERSIBLE_LOSSY_RATIO):
            return None   # nothing says it is lossy (another driver than OpenJPEG's states nothing)
        said = f"about {ratio:.0f}:1" if size >= SAID_RATIO_BYTES else ""
        how = wavelet and (f"{wavelet} wavelet" + (", truncated" if wavelet.startswith("reversible") else ""))
        return Lossy(codec, ", ".join(p for p in (how, said) if p), path)
    if codec == "LERC":
        bound = _lerc_bound(ds, path, meta.get("COMPRESSION", "").upper())
        band_type = ds.GetRasterBand(1).DataType
        exact_up_to = 0.0 if band_type in (gdal.GDT_Float32, gdal.GDT_Float64) else LERC_LOSSLESS
        return None if bound is None or bound <= exact_up_to else Lossy(codec, f"MAX_Z_ERROR {bound:g}", path)
    if codec in ("WebP", "JPEG XL") and not lossy:
        # GDAL states it (COMPRESSION_REVERSIBILITY); an older one names a lossy WebP's level only
        if not (codec == "WebP" and meta.get("WEBP_LEVEL") and meta.get("WEBP_LOSSLESS", "").upper() != "TRUE"):
            return None
    quality = meta.get("JPEG_QUALITY") or meta.get("WEBP_LEVEL")
    return Lossy(codec, f"quality {quality}" if quality else "", path)


def _ratio(ds: gdal.Dataset, path: str) -> tuple[float, int]:
    """(the raw samples' size over the file's, the file's size in bytes): each band's storage type, NBITS when
    declared; (0, 0) when the size is unknown (no single file)."""
    stat = gdal.VSIStatL(path) if path else None
    if stat is None or stat.size <= 0 or not ds.RasterCount:
        return 0.0, 0
    band = ds.GetRasterBand(1)
    bits = int(band.GetMetadataItem("NBITS", "IMAGE_STRUCTURE") or gdal.GetDataTypeSize(band.DataType))
    return ds.RasterXSize * ds.RasterYSize * ds.RasterCount * bits / 8.0 / stat.size, int(stat.size)


def _lerc_bound(ds: gdal.Dataset, path: str, compression: str) -> float | None:
    """The error bound (maxZError) in the Lerc2 header of the first block of band 1 of the LERC GeoTIFF ``ds``
    (``path``), None when it cannot be read (LERC_ZSTD, a sparse block, another LERC version)."""
    band = ds.GetRasterBand(1)
    offset, size = (int(band.GetMetadataItem(f"BLOCK_{k}_0_0", "TIFF") or 0) for k in ("OFFSET", "SIZE"))
    fp = gdal.VSIFOpenL(path, "rb") if path and offset and size and compression != "LERC_ZSTD" else None
    if fp is None:
        return None
    try:
        gdal.VSIFSeekL(fp, offset, 0)
        blob = bytes(gdal.VSIFReadL(1, size, fp))
    finally:
        gdal.VSIFCloseL(fp)
    if compression == "LERC_DEFLATE":
        try:
            blob = zlib.decompressobj().decompress(blob, 256)   # the header only
        except zlib.error:
            return None
    if not blob.startswith(b"Lerc2 ") or len(blob) < 14:
        return None
    version = struct.unpack_from("<i", blob, 6)[0]
    # Lerc2 header: version, a checksum (v3+), then nRows, nCols, nDim (v4+), numValidPixel, microBlockSize,
    # blobSize, dataType, nBlobsMore (v6+) and 4 flag bytes (v6+), then maxZError (double)
    at = 10 + 4 * (version >= 3) + 4 * (6 + (version >= 4) + (version >= 6)) + 4 * (version >= 6)
    if not 2 <= version <= 6 or len(blob) < at + 8:
        return None
    bound = struct.unpack_from("<d", blob, at)[0]
    return bound if bound >= 0 else None   # NaN compares False: unreadable


def _jp2_wavelet(path: str) -> str | None:
    """'irreversible 9/7' or 'reversible 5/3' from the COD marker of the JPEG 2000 codestream in ``path`` (a .jp2
    file or a bare codestream), None when it cannot be read."""
    fp = gdal.VSIFOpenL(path, "rb") if path else None
    if fp is None:
        return None
    try:
        head = bytes(gdal.VSIFReadL(1, HEADER_BYTES, fp))
    finally:
        gdal.VSIFCloseL(fp)
    at = head.find(b"\xff\x4f\xff\x51")   # SOC then SIZ: the main header
    if at < 0:
        return None
    at += 2
    while at + 4 <= len(head):
        marker, length = struct.unpack(">HH", head[at:at + 4])
        if marker == 0xFF52:   # COD: Lcod, Scod, SGcod (4 bytes), SPcod: levels, code-block w/h, style, transform
            if at + 13 >= len(head):
                return None
            return "irreversible 9/7" if head[at + 13] == 0 else "reversible 5/3"
        if marker == 0xFF90 or length < 2:   # a tile part: the main header ended without a COD
            return None
        at += 2 + length
    return None


def note(role: str, found: Lossy) -> str:
    """The run's warning about a lossy-compressed input, said once per input."""
    return (f"The {role} raster ({os.path.basename(found.file)}) is stored with lossy compression: {found.words()}. "
            f"Every method keeps the compression's artefacts, {found.effect()}, as scene detail in the output, and "
            "METHOD auto's self-check, which compares the methods on the scene degraded by the PAN/MS ratio, "
            "smooths them away and cannot see them: on such inputs it can keep KSDiff where a classical method does "
            "better. Use the original product, or a losslessly compressed copy of it (GeoTIFF LZW/DEFLATE, "
            "lossless JPEG 2000), if you have one.")


def caveat(found: dict[str, Lossy]) -> str:
    """What the self-check's reason adds when it kept the learned model on lossy-compressed inputs (``found``: the
    lossy ones by role); '' when there are none."""
    if not found:
        return ""
    roles = " and ".join(f"the {role}" for role in found)
    codecs = " and ".join(dict.fromkeys(f.codec for f in found.values()))
    return (f"but {roles} {'is' if len(found) == 1 else 'are'} lossy-compressed ({codecs}), and the check's "
            "reduced-resolution windows smooth the compression's artefacts away: it cannot judge them, and a "
            "classical method may do better on this scene")


def hole_words(found: Lossy, nodata: float | None) -> str:
    """For the warning of PAN holes (``panholes``): why isolated zeros in dark areas are typical of a lossy PAN whose
    nodata value is 0; '' for another nodata value."""
    if nodata != 0:
        return ""
    return (f" The PAN is lossy-compressed ({found.words()}), and its nodata value is 0: isolated pixels of 0 in dark "
            "areas are typical of that, the compression rounding dark pixels down to 0, which then read as nodata; "
            "the original (lossless) PAN has none.")
