"""Render DICOM image frames to consumer images for DICOMweb "rendered" resources.

DICOM PS3.18 §8.3.5 / §10.4.1.1.3 ("Rendered Media Types") lets a user agent ask for an
image as JPEG, PNG or GIF instead of a DICOM object, and PS3.18 §8.3.5.1 defines the
rendering query parameters handled here:

* ``window=center,width[,function]`` - the VOI transformation to use instead of the data
  set's own (function ``linear``, ``linear-exact`` or ``sigmoid``, any case, ``_`` or ``-``;
  ``linear`` when left out);
* ``viewport=vw,vh[,sx,sy,sw,sh]`` - fit the image into ``vw`` x ``vh`` pixels keeping its
  aspect ratio, after cutting out the source region ``sx,sy,sw,sh`` (in image pixels);
* ``quality=1..100`` - the quality of lossy media types (JPEG).

Other parameters (``annotation``, ``charset``, ``iccprofile``, ...) are ignored, which
PS3.18 §8.3.5.1 allows ("not all parameters are required to be supported").

PS3.18 §8.3.5.1 applies the parameters "as if they were a Presentation State", i.e. in the
order of the pixel transformation pipeline of PS3.4 Annex N.2; the source region comes after
the presentation transformations and the viewport after the source region.  For one frame:

1. decode the stored values (pydicom decoders; the compressed transfer syntaxes through the
   pylibjpeg / openjpeg / rle plugins);
2. grayscale (MONOCHROME1/2): Modality LUT (PS3.3 C.11.1: Modality LUT Sequence, else
   Rescale Slope/Intercept, per frame in enhanced multi-frame objects, PS3.3 C.7.6.16.2.9),
   then VOI (PS3.3 C.11.2: the ``window`` parameter, else the first Window Center/Width with
   its VOI LUT Function, else the first VOI LUT Sequence item, else the frame's own value
   range), then the presentation: MONOCHROME1 is inverted so the output is display-ready
   (PS3.3 C.7.6.3.1.2: minimum value is white);
3. colour: RGB as is; YBR_FULL / YBR_FULL_422 converted to RGB (PS3.3 C.7.6.3.1.2);
   PALETTE COLOR through its palette (PS3.3 C.7.6.3.1.5); the VOI does not apply to colour
   (PS3.4 N.2.2);
4. 8 bits per sample, source region, viewport, encoding.

Limitations: no presentation states, overlays, shutters, annotations or ICC profiles; no
correction of non-square pixels (Pixel Aspect Ratio); the Supplemental Palette Color LUT
and Enhanced Palette Color LUT are not applied; a negative source width or height (a flip)
is rejected.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, convert_color_space, get_decoder
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian

__all__ = [
    "MAX_GIF_FRAMES",
    "MAX_VIEWPORT_SIZE",
    "SUPPORTED",
    "WINDOW_FUNCTIONS",
    "RenderOptions",
    "parse_options",
    "render_frame",
    "render_instance",
    "render_thumbnail",
]

SUPPORTED: tuple[str, ...] = ("image/jpeg", "image/png", "image/gif")
"""The rendered media types produced here (PS3.18 §8.7.4, Table 8.7.4-1 lists the single
frame types image/jpeg, image/png and image/gif and the multi-frame type image/gif)."""

WINDOW_FUNCTIONS: tuple[str, ...] = ("LINEAR", "LINEAR_EXACT", "SIGMOID")
"""VOI LUT Functions (0028,1056) of PS3.3 C.11.2.1.3, in their canonical spelling."""

MAX_GIF_FRAMES = 100
"""At most this many frames go into an animated GIF; longer multi-frame objects are sampled
evenly over their whole length (and each GIF frame shown for correspondingly longer)."""

MAX_VIEWPORT_SIZE = 8192
"""Largest viewport width or height accepted: the output is allocated at that size, so an
unbounded value would let one request exhaust memory."""

_DEFAULT_FRAME_MS = 100.0
# Browsers show GIF frame delays below 20 ms as 100 ms.
_MIN_FRAME_MS = 20.0
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

_Array = npt.NDArray[Any]
_Window = tuple[float, float, str]


@dataclass(frozen=True)
class RenderOptions:
    """How to render: output media type and the PS3.18 §8.3.5.1 parameters.

    ``window`` is ``(center, width, function)`` with ``function`` one of
    :data:`WINDOW_FUNCTIONS`; ``viewport`` is ``(vw, vh)``; ``crop`` is the source region
    ``(sx, sy, sw, sh)`` in image pixels; ``quality`` applies to JPEG only.
    """

    media_type: str = "image/jpeg"
    window: tuple[float, float, str] | None = None
    viewport: tuple[int, int] | None = None
    crop: tuple[int, int, int, int] | None = None
    quality: int = 90


# -- options -------------------------------------------------------------------------------


def parse_options(media_type: str, params: Mapping[str, str]) -> RenderOptions:
    """Build :class:`RenderOptions` from a media type and the request's query parameters.

    ``media_type`` may carry parameters (``image/jpeg; q=0.9``), which are dropped.  The
    syntax of ``window``, ``viewport`` and ``quality`` is that of PS3.18 §8.3.5.1; unknown
    parameters are ignored.

    Raises:
        ValueError: for an unsupported media type or a malformed parameter value; the
            message says which parameter and why (PS3.18 §8.3.5.1: 400 Bad Request).
    """
    window: _Window | None = None
    viewport: tuple[int, int] | None = None
    crop: tuple[int, int, int, int] | None = None
    quality = 90

    if (raw := params.get("window")) is not None:
        window = _parse_window(raw)
    if (raw := params.get("viewport")) is not None:
        viewport, crop = _parse_viewport(raw)
    if (raw := params.get("quality")) is not None:
        quality = _parse_int("quality", raw)

    options = RenderOptions(
        media_type=_normalise_media_type(media_type),
        window=window,
        viewport=viewport,
        crop=crop,
        quality=quality,
    )
    _validate(options)
    return options


def _normalise_media_type(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


def _parse_window(raw: str) -> _Window:
    parts = [part.strip() for part in raw.split(",")]
    if len(parts) not in (2, 3):
        raise ValueError(f"window: expected 'center,width[,function]', got {raw!r}")
    center = _parse_float("window center", parts[0])
    width = _parse_float("window width", parts[1])
    function = _window_function(parts[2]) if len(parts) == 3 else "LINEAR"
    return (center, width, function)


def _window_function(name: str) -> str:
    canonical = name.strip().upper().replace("-", "_")
    if canonical not in WINDOW_FUNCTIONS:
        raise ValueError(
            f"window: unknown function {name!r}, expected linear, linear-exact or sigmoid"
        )
    return canonical


def _parse_viewport(raw: str) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
    parts = raw.split(",")
    if len(parts) not in (2, 6):
        raise ValueError(f"viewport: expected 'vw,vh' or 'vw,vh,sx,sy,sw,sh', got {raw!r}")
    names = (
        "viewport width",
        "viewport height",
        "source x",
        "source y",
        "source width",
        "source height",
    )
    values = [_parse_int(name, part) for name, part in zip(names, parts, strict=False)]
    viewport = (values[0], values[1])
    if len(values) == 2:
        return viewport, None
    return viewport, (values[2], values[3], values[4], values[5])


def _parse_int(name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"{name}: expected an integer, got {raw!r}") from None


def _parse_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {raw!r}")
    return value


def _validate(options: RenderOptions) -> None:
    """Check ``options`` against PS3.18 §8.3.5.1 and PS3.3 C.11.2.1.2 (raise ValueError)."""
    if options.media_type not in SUPPORTED:
        raise ValueError(
            f"media type {options.media_type!r} is not supported, expected one of "
            + ", ".join(SUPPORTED)
        )
    if not 1 <= options.quality <= 100:
        raise ValueError(f"quality: expected 1..100, got {options.quality}")
    if options.window is not None:
        center, width, function = options.window
        if function not in WINDOW_FUNCTIONS:
            raise ValueError(f"window: unknown function {function!r}")
        if not (math.isfinite(center) and math.isfinite(width)):
            raise ValueError("window: center and width must be finite numbers")
        # PS3.3 C.11.2.1.2.1: LINEAR needs a width >= 1; C.11.2.1.3.2 / C.11.2.1.3.1:
        # LINEAR_EXACT and SIGMOID need a width > 0.
        if function == "LINEAR" and width < 1:
            raise ValueError(f"window: width must be >= 1 for linear, got {width:g}")
        if width <= 0:
            raise ValueError(f"window: width must be > 0, got {width:g}")
    if options.viewport is not None:
        for name, value in zip(("width", "height"), options.viewport, strict=True):
            if not 1 <= value <= MAX_VIEWPORT_SIZE:
                raise ValueError(f"viewport: {name} must be 1..{MAX_VIEWPORT_SIZE}, got {value}")
    if options.crop is not None:
        sx, sy, sw, sh = options.crop
        if sx < 0 or sy < 0:
            raise ValueError(f"viewport: source x and y must be >= 0, got {sx},{sy}")
        if sw <= 0 or sh <= 0:
            raise ValueError(f"viewport: source width and height must be > 0, got {sw},{sh}")


# -- rendering -----------------------------------------------------------------------------


def render_frame(ds: Dataset, frame: int, options: RenderOptions) -> bytes:
    """Render frame ``frame`` (0-based) of ``ds`` as ``options.media_type``.

    A rendered frame resource (PS3.18 §10.4.1.1.3): the pipeline of PS3.4 N.2 described in
    the module docstring, then the source region and viewport of PS3.18 §8.3.5.1.  A GIF
    holds this frame only; see :func:`render_instance` for an animation.

    Raises:
        IndexError: ``frame`` is not a frame of ``ds``.
        ValueError: ``ds`` has no pixel data or an unsupported Photometric Interpretation,
            ``options`` are invalid (unsupported media type, ...), or the source region
            lies outside the image.
        NotImplementedError, RuntimeError: pydicom cannot decode the transfer syntax.
    """
    _validate(options)
    _check_frame(ds, frame)
    image = _render_image(ds, frame, options.window)
    return _encode([_place(image, options)], options, [])


def render_instance(ds: Dataset, options: RenderOptions) -> bytes:
    """Render a whole instance as one rendered resource (PS3.18 §10.4.1.1.3).

    For ``image/gif`` and a multi-frame object the result is an animated GIF of all frames,
    at most :data:`MAX_GIF_FRAMES` of them (sampled evenly), with the frame delay taken from
    Frame Time (0018,1063), Recommended Display Frame Rate (0008,2144) or Cine Rate
    (0018,0040); without a ``window`` or a VOI in the data set the frames share one value
    range (over all of them) so that they do not flicker.  For single-frame
    media types, or a single-frame object, it is the first frame as :func:`render_frame`.

    Raises:
        ValueError: as :func:`render_frame`.
    """
    _validate(options)
    count = _frame_count(ds)
    if options.media_type != "image/gif" or count == 1:
        return render_frame(ds, 0, options)

    indices = _sample(count, MAX_GIF_FRAMES)
    window = options.window
    if window is None and _is_grayscale(ds):
        window = _common_window(ds, indices)
    images = [_place(_render_image(ds, index, window), options) for index in indices]
    step = count / len(indices)
    delay = max(_MIN_FRAME_MS, _frame_time_ms(ds) * step)
    return _encode(images, options, [round(delay)] * len(images))


def render_thumbnail(ds: Dataset, size: int = 128, media_type: str = "image/jpeg") -> bytes:
    """Render the middle frame of ``ds`` fitted into ``size`` x ``size`` pixels.

    A thumbnail (PS3.18 §10.4.1.3) is a rendered image whose content is chosen by the
    origin server; here the middle frame (the first of a single-frame object) with the data
    set's own VOI and the aspect ratio kept.

    Raises:
        ValueError: ``size`` is not 1..:data:`MAX_VIEWPORT_SIZE`, or as :func:`render_frame`.
    """
    options = RenderOptions(media_type=_normalise_media_type(media_type), viewport=(size, size))
    _validate(options)
    return render_frame(ds, _frame_count(ds) // 2, options)


def _check_pixels(ds: Dataset) -> None:
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise ValueError("the data set has no pixel data")


def _frame_count(ds: Dataset) -> int:
    _check_pixels(ds)
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


def _check_frame(ds: Dataset, frame: int) -> None:
    count = _frame_count(ds)
    if not 0 <= frame < count:
        raise IndexError(f"frame index {frame} out of range: the image has {count} frame(s)")


def _sample(count: int, limit: int) -> list[int]:
    if count <= limit:
        return list(range(count))
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def _frame_time_ms(ds: Dataset) -> float:
    """Nominal frame delay from the Cine Module (PS3.3 C.7.6.5) or General Image Module."""
    candidates = (
        (ds.get("FrameTime"), lambda v: v),
        (ds.get("RecommendedDisplayFrameRate"), lambda v: 1000.0 / v),
        (ds.get("CineRate"), lambda v: 1000.0 / v),
    )
    for raw, to_ms in candidates:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            continue
        if value > 0 and math.isfinite(value):
            return float(to_ms(value))
    return _DEFAULT_FRAME_MS


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax:
        return UID(str(syntax))
    # No file meta (built in memory or read with force=True): only native pixel data can be
    # decoded, in the byte order the data set was read with.
    little_endian = ds.original_encoding[1]
    return ExplicitVRBigEndian if little_endian is False else ExplicitVRLittleEndian


def _decode(ds: Dataset, frame: int) -> tuple[_Array, str]:
    """Decode one frame; return it and the Photometric Interpretation *after* decoding.

    pydicom may convert colour spaces while decoding (YBR_FULL/_422 to RGB, and the JPEG
    baseline and JPEG 2000 decoders output RGB for YBR data), so the interpretation stated
    in the data set is not the one of the array; the decoder reports the latter.
    """
    array, properties = get_decoder(_transfer_syntax(ds)).as_array(ds, index=frame)
    return array, str(properties.get("photometric_interpretation", "")).strip().upper()


def _render_image(ds: Dataset, frame: int, window: _Window | None) -> Image.Image:
    array, photometric = _decode(ds, frame)
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        pixels = _grayscale(ds, frame, array, window)
        if photometric == "MONOCHROME1":
            pixels = 255 - pixels
        return _image(pixels)
    if photometric == "PALETTE COLOR":
        return _image(_palette(ds, array))
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        array = convert_color_space(array, photometric, "RGB")
        photometric = "RGB"
    # YBR_ICT / YBR_RCT are reported as RGB: the JPEG 2000 decoder undoes the transform.
    if photometric == "RGB" and array.ndim == 3 and array.shape[-1] == 3:
        return _image(_to_uint8(array, _bits_stored(ds, array)))
    raise ValueError(f"Photometric Interpretation {photometric!r} is not supported")


def _image(pixels: npt.NDArray[np.uint8]) -> Image.Image:
    # A 2-D uint8 array becomes an "L" image, (rows, columns, 3) an "RGB" one.
    return Image.fromarray(np.ascontiguousarray(pixels))


def _bits_stored(ds: Dataset, array: _Array) -> int:
    try:
        return int(ds.get("BitsStored") or array.dtype.itemsize * 8)
    except (TypeError, ValueError):
        return int(array.dtype.itemsize * 8)


def _to_uint8(array: _Array, bits: int) -> npt.NDArray[np.uint8]:
    if array.dtype == np.uint8 and bits == 8:
        return array
    maximum = float(2**bits - 1)
    scaled = np.clip(array.astype(np.float64), 0, maximum) * (255.0 / maximum)
    return np.rint(scaled).astype(np.uint8)


# -- grayscale pipeline (PS3.4 N.2.1) --------------------------------------------------------


def _is_grayscale(ds: Dataset) -> bool:
    return str(ds.get("PhotometricInterpretation", "")).strip() in ("MONOCHROME1", "MONOCHROME2")


def _functional_item(ds: Dataset, frame: int, keyword: str) -> Dataset | None:
    """The first item of functional group ``keyword`` for ``frame`` (PS3.3 C.7.6.16):
    per-frame if present there, else shared."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        sequence = per_frame[frame].get(keyword)
        if sequence:
            return sequence[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        sequence = shared[0].get(keyword)
        if sequence:
            return sequence[0]
    return None


def _modality(ds: Dataset, frame: int, stored: _Array) -> npt.NDArray[np.float64]:
    """Modality LUT (PS3.3 C.11.1): the LUT Sequence, else Rescale Slope and Intercept."""
    if ds.get("ModalityLUTSequence"):
        return np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    source = _functional_item(ds, frame, "PixelValueTransformationSequence") or ds
    slope = _number(source.get("RescaleSlope"), 1.0) or 1.0
    intercept = _number(source.get("RescaleIntercept"), 0.0)
    return stored.astype(np.float64) * slope + intercept


def _number(value: Any, default: float) -> float:
    if value is None or value == "":
        return default
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        value = value[0] if len(value) else default
    try:
        result = float(value)
    except (TypeError, ValueError):
        return default
    return result if math.isfinite(result) else default


def _dataset_window(ds: Dataset, frame: int) -> _Window | None:
    """First Window Center/Width with VOI LUT Function (PS3.3 C.11.2.1.2, C.11.2.1.3),
    per frame in enhanced objects (Frame VOI LUT, PS3.3 C.7.6.16.2.10); None if absent or
    unusable."""
    source = _functional_item(ds, frame, "FrameVOILUTSequence")
    if source is None or "WindowCenter" not in source:
        source = ds
    if "WindowCenter" not in source or "WindowWidth" not in source:
        return None
    center = _number(source.get("WindowCenter"), math.nan)
    width = _number(source.get("WindowWidth"), math.nan)
    function = str(source.get("VOILUTFunction") or "LINEAR").strip().upper()
    if function not in WINDOW_FUNCTIONS:
        function = "LINEAR"
    if not (math.isfinite(center) and math.isfinite(width)):
        return None
    if width <= 0 or (function == "LINEAR" and width < 1):
        return None
    return (center, width, function)


def _grayscale(
    ds: Dataset, frame: int, stored: _Array, window: _Window | None
) -> npt.NDArray[np.uint8]:
    """Modality LUT, VOI and 8-bit output of one grayscale frame (P-values, MONOCHROME2
    sense); the caller inverts MONOCHROME1."""
    values = _modality(ds, frame, stored)
    if window is None:
        window = _dataset_window(ds, frame)
    if window is not None:
        display = _apply_window(values, window)
    elif ds.get("VOILUTSequence"):
        display = _apply_voi_lut(values, ds.VOILUTSequence[0], ds)
    else:
        display = _apply_window(values, _range_window(*_value_range(ds, stored, values)))
    return np.rint(display).astype(np.uint8)


def _apply_window(values: npt.NDArray[np.float64], window: _Window) -> npt.NDArray[np.float64]:
    """Map ``values`` to 0..255 with a VOI LUT Function (PS3.3 C.11.2.1.2 and C.11.2.1.3)."""
    center, width, function = window
    if function == "SIGMOID":
        # C.11.2.1.3.1; exp() overflows to inf far below the center, giving 0 as it should.
        with np.errstate(over="ignore"):
            return 255.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        # C.11.2.1.3.2
        scaled = ((values - center) / width + 0.5) * 255.0
    elif width <= 1:
        # C.11.2.1.2.1 with width 1 is a threshold at center - 0.5 (its formula divides by 0).
        scaled = np.where(values > center - 0.5, 255.0, 0.0)
    else:
        # C.11.2.1.2.1: values at or below c - 0.5 - (w-1)/2 give 0, above c - 0.5 + (w-1)/2
        # give 255; the clip below does both.
        scaled = ((values - (center - 0.5)) / (width - 1.0) + 0.5) * 255.0
    return np.clip(scaled, 0.0, 255.0)


def _value_range(
    ds: Dataset, stored: _Array, values: npt.NDArray[np.float64]
) -> tuple[float, float]:
    """Min and max of the modality values, leaving out Pixel Padding (PS3.3 C.7.5.1.1.2),
    which would otherwise squeeze the image into a few grey levels."""
    mask = _padding_mask(ds, stored)
    if mask is not None and not mask.all():
        values = values[~mask]
    if values.size == 0:
        return 0.0, 0.0
    return float(np.min(values)), float(np.max(values))


def _padding_mask(ds: Dataset, stored: _Array) -> npt.NDArray[np.bool_] | None:
    padding = ds.get("PixelPaddingValue")
    if not isinstance(padding, int):
        return None
    limit = ds.get("PixelPaddingRangeLimit")
    if not isinstance(limit, int):
        limit = padding
    low, high = min(padding, limit), max(padding, limit)
    mask: npt.NDArray[np.bool_] = (stored >= low) & (stored <= high)
    return mask


def _range_window(low: float, high: float) -> _Window:
    """A LINEAR_EXACT window mapping ``low`` to 0 and ``high`` to 255."""
    if high <= low:
        # A flat image: any positive width maps every value to the same grey (50 %).
        return (low, 1.0, "LINEAR_EXACT")
    return ((low + high) / 2.0, high - low, "LINEAR_EXACT")


def _common_window(ds: Dataset, frames: Sequence[int]) -> _Window | None:
    """The value range of all ``frames`` as one window for an animation; None when the data
    set has its own VOI (a window or a VOI LUT, used frame by frame as in a still image)."""
    if ds.get("VOILUTSequence") or any(_dataset_window(ds, frame) for frame in frames):
        return None
    low, high = math.inf, -math.inf
    for frame in frames:
        stored, _ = _decode(ds, frame)
        frame_low, frame_high = _value_range(ds, stored, _modality(ds, frame, stored))
        low, high = min(low, frame_low), max(high, frame_high)
    return _range_window(low, high)


def _apply_voi_lut(
    values: npt.NDArray[np.float64], item: Dataset, ds: Dataset
) -> npt.NDArray[np.float64]:
    """Map ``values`` to 0..255 through a VOI LUT (PS3.3 C.11.2.1.1, C.8.11.3.1.5)."""
    descriptor = [int(v) for v in item.LUTDescriptor]
    entries = descriptor[0] or 65536
    first_mapped = descriptor[1]
    bits = descriptor[2]
    table = _lut_data(item, ds, entries)
    index = np.clip(np.rint(values) - first_mapped, 0, len(table) - 1).astype(np.intp)
    # The output range is 2**bits, but some writers declare 16 bits for 12-bit entries;
    # take the smallest range of at least 8 bits that holds the largest entry.
    needed = max(8, int(table.max()).bit_length()) if table.size else 8
    maximum = float(2 ** min(bits, needed) - 1) if bits >= 8 else float(2**bits - 1)
    return np.clip(table[index] * (255.0 / maximum), 0.0, 255.0)


def _lut_data(item: Dataset, ds: Dataset, entries: int) -> npt.NDArray[np.float64]:
    data = item.LUTData
    if isinstance(data, bytes | bytearray):
        # OW: 16-bit words in the data set's byte order (PS3.5 7.3, PS3.3 C.11.2.1.1).
        little_endian = ds.original_encoding[1] is not False
        words = np.frombuffer(bytes(data), dtype="<u2" if little_endian else ">u2")
        return words[:entries].astype(np.float64)
    if isinstance(data, int):
        data = [data]
    return np.asarray(list(data), dtype=np.float64)[:entries]


# -- colour --------------------------------------------------------------------------------


def _palette(ds: Dataset, indices: _Array) -> npt.NDArray[np.uint8]:
    """PALETTE COLOR to 8-bit RGB (PS3.3 C.7.6.3.1.5, C.7.6.3.1.6)."""
    rgb = apply_color_lut(indices, ds)[..., :3]
    if rgb.dtype == np.uint8:
        return rgb
    # PS3.3 C.7.6.3.1.5 notes writers that put 8-bit entries into 16-bit palettes: scale by
    # the range of the whole palette, not of this frame's colours.
    descriptor = [int(v) for v in ds.RedPaletteColorLookupTableDescriptor]
    first_mapped, entries = descriptor[1], descriptor[0] or 65536
    whole = apply_color_lut(np.arange(first_mapped, first_mapped + entries), ds)[..., :3]
    bits = 16 if int(whole.max()) > 255 else 8
    return _to_uint8(rgb, bits)


# -- geometry and encoding -------------------------------------------------------------------


def _place(image: Image.Image, options: RenderOptions) -> Image.Image:
    """Cut out the source region, then fit into the viewport (PS3.18 §8.3.5.1)."""
    if options.crop is not None:
        sx, sy, sw, sh = options.crop
        right, lower = min(image.width, sx + sw), min(image.height, sy + sh)
        if sx >= image.width or sy >= image.height:
            raise ValueError(
                f"viewport: source region {sx},{sy},{sw},{sh} lies outside the "
                f"{image.width}x{image.height} image"
            )
        image = image.crop((sx, sy, right, lower))
    if options.viewport is not None:
        width, height = options.viewport
        scale = min(width / image.width, height / image.height)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        if size != image.size:
            image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def _encode(images: Sequence[Image.Image], options: RenderOptions, delays: list[int]) -> bytes:
    buffer = io.BytesIO()
    first = images[0]
    if options.media_type == "image/jpeg":
        first.save(buffer, format="JPEG", quality=options.quality)
    elif options.media_type == "image/png":
        first.save(buffer, format="PNG")
    elif len(images) == 1:
        first.save(buffer, format="GIF")
    else:
        first.save(
            buffer,
            format="GIF",
            save_all=True,
            append_images=list(images[1:]),
            duration=delays,
            loop=0,
        )
    return buffer.getvalue()
