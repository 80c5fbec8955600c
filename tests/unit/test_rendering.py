"""Tests of :mod:`pacsnode.web.rendering` (DICOMweb rendered resources, PS3.18 §8.3.5).

The rendered images are decoded with Pillow and checked for format, size, mode and
content: expected grey levels come from the formulas of PS3.3 C.11.2 written out here,
expected colours from the known content of pydicom's test images, and compressed files are
compared with their uncompressed twins.  Files of the ``pydicom-data`` package are used when
installed; a test needing one that is missing is skipped.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from copy import deepcopy
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from PIL import Image
from pydicom import examples
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, pixel_array

from pacsnode.web.rendering import (
    MAX_GIF_FRAMES,
    SUPPORTED,
    RenderOptions,
    parse_options,
    render_frame,
    render_instance,
    render_thumbnail,
)

# The SC_rgb* test images of pydicom: ten horizontal bands (rows 0-9, 10-19, ...) of these
# colours; sampled at row 5 + 10 * band, column 50.
SC_RGB_BANDS = [
    (255, 0, 0),
    (255, 128, 128),
    (0, 255, 0),
    (128, 255, 128),
    (0, 0, 255),
    (128, 128, 255),
    (0, 0, 0),
    (64, 64, 64),
    (192, 192, 192),
    (255, 255, 255),
]


# -- helpers -------------------------------------------------------------------------------


def dicom_file(name: str) -> Dataset:
    """A pydicom test file (bundled or from pydicom-data); skip when it is not installed."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"test file {name} is not available (pip install pydicom-data)")
    return pydicom.dcmread(path, force=True)


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def frame_count(image: Image.Image) -> int:
    return int(getattr(image, "n_frames", 1))


def png(ds: Dataset, frame: int = 0, **options: Any) -> npt.NDArray[np.uint8]:
    """Render ``frame`` of ``ds`` losslessly and return its pixels."""
    data = render_frame(ds, frame, RenderOptions(media_type="image/png", **options))
    image = opened(data)
    assert image.format == "PNG"
    return np.asarray(image)


def synthetic(
    array: npt.NDArray[np.integer], photometric: str = "MONOCHROME2", bits: int | None = None
) -> Dataset:
    """An in-memory data set holding ``array`` (frames first if 3-D grayscale)."""
    ds = Dataset()
    ds.set_pixel_data(array, photometric, bits or array.dtype.itemsize * 8)
    return ds


def linear(x: float, c: float, w: float) -> float:
    """PS3.3 C.11.2.1.2.1 written as in the standard, output range 0..255."""
    if x <= c - 0.5 - (w - 1) / 2:
        return 0.0
    if x > c - 0.5 + (w - 1) / 2:
        return 255.0
    return ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0


def linear_exact(x: float, c: float, w: float) -> float:
    """PS3.3 C.11.2.1.3.2, output range 0..255."""
    if x <= c - w / 2:
        return 0.0
    if x > c + w / 2:
        return 255.0
    return ((x - c) / w + 0.5) * 255.0


def sigmoid(x: float, c: float, w: float) -> float:
    """PS3.3 C.11.2.1.3.1, output range 0..255."""
    return 255.0 / (1 + math.exp(-4 * (x - c) / w))


def is_colour(pixels: npt.NDArray[np.uint8]) -> bool:
    return bool(
        np.any(pixels[..., 0] != pixels[..., 1]) or np.any(pixels[..., 1] != pixels[..., 2])
    )


def sane(pixels: npt.NDArray[np.uint8]) -> None:
    """Not blank, not saturated: a real image survived the pipeline."""
    assert pixels.dtype == np.uint8
    assert pixels.std() > 10
    assert 5 < pixels.mean() < 250
    assert len(np.unique(pixels)) > 4


# -- grayscale pipeline: Modality LUT and VOI ------------------------------------------------


def test_ct_bone_and_lung_windows_differ_in_brightness() -> None:
    ds = examples.ct
    bone = png(ds, window=(500.0, 2000.0, "LINEAR"))
    lung = png(ds, window=(-600.0, 1500.0, "LINEAR"))
    assert bone.shape == lung.shape == (128, 128)
    # Lung window: everything denser than air is white; bone window: soft tissue is dark.
    assert lung.mean() > bone.mean() + 40


@pytest.mark.parametrize(
    ("function", "formula"),
    [("LINEAR", linear), ("LINEAR_EXACT", linear_exact), ("SIGMOID", sigmoid)],
)
def test_ct_pixels_of_known_hu_map_as_the_voi_function_says(
    function: str, formula: Callable[[float, float, float], float]
) -> None:
    ds = examples.ct
    stored = ds.pixel_array
    hu = stored * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    center, width = 40.0, 400.0
    rendered = png(ds, window=(center, width, function))
    # A pixel of air, one of soft tissue inside the window, one of bone.
    for low, high in [(-2000, -500), (-150, 230), (300, 3000)]:
        row, col = np.argwhere((hu > low) & (hu < high))[0]
        expected = formula(float(hu[row, col]), center, width)
        assert abs(int(rendered[row, col]) - expected) <= 0.5 + 1e-9, (low, high)
    # The window takes the rescaled (HU) values: a window around the stored values of the
    # soft tissue would saturate it.
    inside = (hu > -150) & (hu < 230)
    assert 0 < rendered[inside].mean() < 255


def test_dataset_window_is_the_default_voi() -> None:
    ds = examples.mr  # Window Center 600, Window Width 1600
    assert png(ds).tolist() == png(ds, window=(600.0, 1600.0, "LINEAR")).tolist()
    assert png(ds).tolist() != png(ds, window=(300.0, 400.0, "LINEAR")).tolist()


def test_dataset_voi_lut_function_is_honoured() -> None:
    ds = deepcopy(examples.mr)
    ds.VOILUTFunction = "SIGMOID"
    assert png(ds).tolist() == png(ds, window=(600.0, 1600.0, "SIGMOID")).tolist()
    assert png(ds).tolist() != png(examples.mr).tolist()


def test_without_voi_the_frame_range_is_stretched() -> None:
    ds = examples.ct  # no Window Center/Width, no VOI LUT
    rendered = png(ds)
    assert rendered.min() == 0
    assert rendered.max() == 255
    stored = ds.pixel_array
    assert int(rendered[stored == stored.min()][0]) == 0
    assert int(rendered[stored == stored.max()][0]) == 255


def test_pixel_padding_is_left_out_of_the_range() -> None:
    array = np.full((16, 16), -2000, dtype=np.int16)
    array[4:12, 4:12] = np.arange(100, 164, dtype=np.int16).reshape(8, 8)
    ds = synthetic(array, bits=16)
    padded = png(ds)[4:12, 4:12]
    ds.PixelPaddingValue = -2000
    rendered = png(ds)[4:12, 4:12]
    assert rendered.min() == 0
    assert rendered.max() == 255
    # Without the padding value the 64 values share a few grey levels near white.
    assert padded.min() > 200


def test_monochrome1_renders_inverted() -> None:
    array = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    mono2 = synthetic(array, "MONOCHROME2", bits=12)
    mono1 = synthetic(array, "MONOCHROME1", bits=12)
    for window in (None, (2000.0, 3000.0, "LINEAR")):
        p2 = png(mono2, window=window).astype(int)
        p1 = png(mono1, window=window).astype(int)
        sane(p2.astype(np.uint8))
        assert (p1 + p2 == 255).all()
    # Low values are white in MONOCHROME1.
    assert png(mono1)[0, 0] == 255


def test_voi_lut_sequence_is_applied() -> None:
    array = np.arange(256, dtype=np.uint8).reshape(16, 16)
    ds = synthetic(array)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 8]
    item.LUTData = [255 - i for i in range(256)]
    ds.VOILUTSequence = [item]
    assert (png(ds).astype(int) == 255 - array.astype(int)).all()


def test_voi_lut_with_12_bit_entries_declared_16_is_scaled_by_its_range() -> None:
    array = np.arange(256, dtype=np.uint8).reshape(16, 16)
    ds = synthetic(array)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 16]
    item.LUTData = [i * 4095 // 255 for i in range(256)]
    ds.VOILUTSequence = [item]
    rendered = png(ds)
    assert abs(rendered.astype(int) - array.astype(int)).max() <= 1


def test_modality_lut_sequence_is_applied() -> None:
    array = np.arange(256, dtype=np.uint8).reshape(16, 16)
    ds = synthetic(array)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 16]
    item.ModalityLUTType = "US"
    item.LUTData = [1000 - 2 * i for i in range(256)]
    ds.ModalityLUTSequence = [item]
    # A decreasing Modality LUT, then the min-max VOI: the image comes out inverted.
    assert (png(ds).astype(int) == 255 - array.astype(int)).all()


def test_enhanced_multiframe_uses_per_frame_rescale_and_shared_voi() -> None:
    array = np.stack([np.arange(100, dtype=np.uint16).reshape(10, 10)] * 2)
    ds = synthetic(array, bits=12)
    frames = []
    for intercept in (0, 50):
        transformation = Dataset()
        transformation.RescaleSlope = 1
        transformation.RescaleIntercept = intercept
        transformation.RescaleType = "US"
        group = Dataset()
        group.PixelValueTransformationSequence = [transformation]
        frames.append(group)
    ds.PerFrameFunctionalGroupsSequence = frames
    voi = Dataset()
    voi.WindowCenter = 75
    voi.WindowWidth = 100
    voi.VOILUTFunction = "LINEAR_EXACT"
    shared = Dataset()
    shared.FrameVOILUTSequence = [voi]
    ds.SharedFunctionalGroupsSequence = [shared]
    for frame, intercept in ((0, 0), (1, 50)):
        rendered = png(ds, frame)
        for stored in (10, 40, 60, 90):
            expected = linear_exact(stored + intercept, 75, 100)
            assert abs(int(rendered.flat[stored]) - expected) <= 0.5 + 1e-9


# -- colour ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "tolerance"),
    [
        ("SC_rgb.dcm", 0),  # RGB, native
        ("SC_rgb_rle_16bit.dcm", 0),  # RGB, 16 bits per sample, RLE
        ("SC_rgb_32bit.dcm", 0),  # RGB, 32 bits per sample
        ("SC_rgb_jpeg_gdcm.dcm", 0),  # RGB, JPEG lossless
        ("SC_ybr_full_uncompressed.dcm", 6),  # YBR_FULL, native
        ("SC_ybr_full_422_uncompressed.dcm", 6),  # YBR_FULL_422, native
        ("SC_rgb_jpeg_dcmtk.dcm", 6),  # YBR_FULL, JPEG baseline (decoder converts)
        ("SC_rgb_dcmtk_+eb+cy+np.dcm", 6),  # YBR_FULL_422, JPEG baseline
    ],
)
def test_colour_images_keep_their_colours(name: str, tolerance: int) -> None:
    ds = dicom_file(name)
    rendered = png(ds)
    assert rendered.shape == (100, 100, 3)
    for band, colour in enumerate(SC_RGB_BANDS):
        got = rendered[5 + 10 * band, 50].astype(int)
        assert np.abs(got - np.array(colour)).max() <= tolerance, (band, tuple(got))


@pytest.mark.parametrize("name", ["rgb_color", "ybr_color", "palette_color", "jpeg2k"])
def test_pydicom_colour_examples_render_in_colour(name: str) -> None:
    ds = getattr(examples, name)
    for media_type in ("image/png", "image/jpeg"):
        image = opened(render_frame(ds, 0, RenderOptions(media_type=media_type)))
        assert image.mode == "RGB"
        assert image.size == (ds.Columns, ds.Rows)
        pixels = np.asarray(image)
        assert is_colour(pixels)
        assert pixels.std() > 10


@pytest.mark.parametrize("source", ["examples.palette_color", "gdcm-US-ALOKA-16.dcm"])
def test_16_bit_palette_is_scaled_to_8_bits(source: str) -> None:
    if source.startswith("examples."):
        ds = getattr(examples, source.removeprefix("examples."))
    else:
        ds = dicom_file(source)
    palette = apply_color_lut(ds.pixel_array, ds)
    assert palette.dtype == np.uint16
    expected = palette.astype(float) * 255 / 65535
    rendered = png(ds)
    assert rendered.shape == expected.shape
    assert np.abs(rendered - expected).max() <= 0.5 + 1e-9
    assert is_colour(rendered)


@pytest.mark.parametrize("factor", [1, 257], ids=["8-bit entries", "16-bit entries"])
def test_16_bit_palette_holding_8_bit_entries(factor: int) -> None:
    indices = np.arange(256, dtype=np.uint8).reshape(16, 16)
    ds = synthetic(indices, "PALETTE COLOR", bits=8)
    entries = np.arange(256, dtype=np.uint16)
    for colour, values in (("Red", entries), ("Green", 255 - entries), ("Blue", entries * 0 + 128)):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(
            ds, f"{colour}PaletteColorLookupTableData", (values * factor).astype("<u2").tobytes()
        )
    rendered = png(ds).astype(int)
    assert (rendered[..., 0] == indices).all()
    assert (rendered[..., 1] == 255 - indices).all()
    assert (rendered[..., 2] == 128).all()


# -- frames, compression ---------------------------------------------------------------------


def test_multiframe_frame_selection() -> None:
    ds = dicom_file("emri_small.dcm")
    assert int(ds.NumberOfFrames) == 10
    window = (200.0, 400.0, "LINEAR")
    all_frames = pixel_array(ds)
    rendered = [png(ds, frame, window=window) for frame in range(10)]
    assert rendered[0].tolist() != rendered[5].tolist()
    for frame in (0, 5, 9):
        expected = np.vectorize(lambda x: linear(float(x), 200, 400))(all_frames[frame])
        assert np.abs(rendered[frame] - expected).max() <= 0.5 + 1e-9


@pytest.mark.parametrize("frame", [10, 11, -1])
def test_frame_out_of_range(frame: int) -> None:
    ds = dicom_file("emri_small.dcm")
    with pytest.raises(IndexError):
        render_frame(ds, frame, RenderOptions())


def test_compressed_multiframe_frame_selection() -> None:
    ds = examples.ybr_color  # 30 frames, JPEG baseline
    first, last = png(ds, 0), png(ds, 29)
    assert first.shape == last.shape == (240, 320, 3)
    assert np.abs(first.astype(int) - last.astype(int)).mean() > 1
    with pytest.raises(IndexError):
        render_frame(ds, 30, RenderOptions())


def test_single_frame_index_out_of_range() -> None:
    with pytest.raises(IndexError):
        render_frame(examples.ct, 1, RenderOptions())


@pytest.mark.parametrize(
    ("compressed", "reference"),
    [
        ("MR_small_RLE.dcm", "MR_small.dcm"),
        ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
        ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
        ("emri_small_RLE.dcm", "emri_small.dcm"),
        ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm"),
        ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm"),
        ("emri_small_big_endian.dcm", "emri_small.dcm"),
        ("SC_rgb_rle.dcm", "SC_rgb.dcm"),
        ("US1_J2KR.dcm", "US1_UNCR.dcm"),
        ("MR2_J2KR.dcm", "MR2_UNCR.dcm"),
        ("RG1_J2KR.dcm", "RG1_UNCR.dcm"),
    ],
)
def test_lossless_compression_renders_like_the_uncompressed_file(
    compressed: str, reference: str
) -> None:
    ds, ref = dicom_file(compressed), dicom_file(reference)
    frames = int(ref.get("NumberOfFrames") or 1)
    for frame in {0, frames // 2, frames - 1}:
        got, expected = png(ds, frame), png(ref, frame)
        sane(got)
        assert got.tolist() == expected.tolist()


@pytest.mark.parametrize(
    "source",
    [
        "examples.jpeg2k",
        "JPGExtended.dcm",  # JPEG extended, 12 bits
        "JPEGLSNearLossless_16.dcm",
        "JPEG-LL.dcm",  # JPEG lossless, 16 bits signed
        "693_J2KI.dcm",  # JPEG 2000 lossy, signed CT
        "RG3_J2KI.dcm",  # JPEG 2000 lossy, MONOCHROME1 CR
        "OT-PAL-8-face.dcm",  # PALETTE COLOR, no file meta information
    ],
)
def test_other_encodings_render(source: str) -> None:
    if source.startswith("examples."):
        ds = getattr(examples, source.removeprefix("examples."))
    else:
        ds = dicom_file(source)
    image = opened(render_frame(ds, 0, RenderOptions()))
    assert image.format == "JPEG"
    assert image.size == (ds.Columns, ds.Rows)
    assert image.mode == ("L" if "MONOCHROME" in ds.PhotometricInterpretation else "RGB")
    pixels = np.asarray(image)
    assert pixels.std() > 5
    assert len(np.unique(pixels)) > 8


# -- geometry, encoding ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("viewport", "size"),
    [((100, 100), (100, 75)), ((160, 200), (160, 120)), ((1000, 150), (200, 150))],
)
def test_viewport_keeps_the_aspect_ratio(viewport: tuple[int, int], size: tuple[int, int]) -> None:
    ds = examples.rgb_color  # 320 x 240
    image = opened(render_frame(ds, 0, RenderOptions(media_type="image/png", viewport=viewport)))
    assert image.size == size
    assert is_colour(np.asarray(image))


def test_viewport_scales_down_smoothly() -> None:
    # A one-pixel checkerboard: a filtering resize gives mid grey, picking pixels (nearest
    # neighbour) would give black or white.
    checkerboard = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    ds = synthetic(checkerboard)
    assert png(ds).tolist() == checkerboard.tolist()
    half = png(ds, viewport=(32, 32)).astype(float)
    assert half.shape == (32, 32)
    assert np.abs(half[4:-4, 4:-4] - 127.5).max() < 16


def test_source_region_is_cut_out_before_scaling() -> None:
    full = png(examples.ct)
    region = png(examples.ct, crop=(10, 20, 30, 40))
    assert region.tolist() == full[20:60, 10:40].tolist()
    scaled = png(examples.ct, crop=(10, 20, 30, 40), viewport=(60, 60))
    assert scaled.shape == (60, 45)
    with pytest.raises(ValueError):
        png(examples.ct, crop=(200, 0, 10, 10))


def test_quality_affects_jpeg_size() -> None:
    ds = examples.ct
    low = render_frame(ds, 0, RenderOptions(quality=10))
    high = render_frame(ds, 0, RenderOptions(quality=95))
    assert len(low) < len(high) * 0.7
    for data in (low, high):
        image = opened(data)
        assert (image.format, image.mode, image.size) == ("JPEG", "L", (128, 128))


@pytest.mark.parametrize(
    ("media_type", "fmt"), [("image/jpeg", "JPEG"), ("image/png", "PNG"), ("image/gif", "GIF")]
)
def test_media_types(media_type: str, fmt: str) -> None:
    image = opened(render_frame(examples.mr, 0, RenderOptions(media_type=media_type)))
    assert image.format == fmt
    assert image.size == (64, 64)
    gray = np.asarray(image.convert("L")).astype(int)
    reference = png(examples.mr).astype(int)
    # Lossless formats give the same grey levels; JPEG nearly.
    assert np.abs(gray - reference).mean() < (3 if fmt == "JPEG" else 0.01)


def test_unsupported_media_type_and_missing_pixel_data() -> None:
    with pytest.raises(ValueError, match="image/bmp"):
        render_frame(examples.ct, 0, RenderOptions(media_type="image/bmp"))
    ds = Dataset()
    ds.PatientName = "NO^PIXELS"
    with pytest.raises(ValueError, match="pixel data"):
        render_frame(ds, 0, RenderOptions())
    with pytest.raises(ValueError, match="pixel data"):
        render_thumbnail(ds)


def test_thumbnail_is_the_middle_frame_fitted() -> None:
    ds = examples.ybr_color  # 30 frames of 320 x 240
    thumbnail = opened(render_thumbnail(ds, 128, "image/png"))
    assert thumbnail.size == (128, 96)
    middle = png(ds, 15, viewport=(128, 128))
    first = png(ds, 0, viewport=(128, 128))
    assert np.asarray(thumbnail).tolist() == middle.tolist()
    assert middle.tolist() != first.tolist()
    jpeg = opened(render_thumbnail(examples.ct, 64))
    assert (jpeg.format, jpeg.size, jpeg.mode) == ("JPEG", (64, 64), "L")
    with pytest.raises(ValueError):
        render_thumbnail(examples.ct, 0)


def test_animated_gif_of_a_multiframe_instance() -> None:
    ds = dicom_file("emri_small.dcm")
    image = opened(render_instance(ds, RenderOptions(media_type="image/gif")))
    assert image.format == "GIF"
    assert frame_count(image) == 10
    assert image.size == (64, 64)
    # Single-frame media types give the first frame.
    first = opened(render_instance(ds, RenderOptions(media_type="image/png")))
    assert np.asarray(first).tolist() == png(ds, 0).tolist()


def test_animated_gif_is_capped_and_shares_one_voi() -> None:
    count = MAX_GIF_FRAMES + 50
    # Each frame is flat; a per-frame min-max VOI would make them all the same grey.
    frames = np.stack([np.full((8, 8), 10 * k, dtype=np.uint16) for k in range(count)])
    ds = synthetic(frames, bits=12)
    ds.FrameTime = 40
    image = opened(render_instance(ds, RenderOptions(media_type="image/gif")))
    assert frame_count(image) == MAX_GIF_FRAMES
    assert image.info["duration"] == 60  # 40 ms x 150 / 100 frames
    greys = []
    for index in range(frame_count(image)):
        image.seek(index)
        greys.append(int(np.asarray(image.convert("L"))[0, 0]))
    assert greys[0] == 0
    assert greys[-1] == 255
    assert greys == sorted(greys)


# -- parse_options ---------------------------------------------------------------------------


def test_parse_options_reads_the_ps3_18_parameters() -> None:
    options = parse_options(
        "image/PNG; charset=utf-8",
        {
            "window": "40,400,linear-exact",
            "viewport": "256,128,10,20,100,50",
            "quality": "75",
            "annotation": "patient",
        },
    )
    assert options == RenderOptions(
        media_type="image/png",
        window=(40.0, 400.0, "LINEAR_EXACT"),
        viewport=(256, 128),
        crop=(10, 20, 100, 50),
        quality=75,
    )
    assert parse_options("image/jpeg", {}) == RenderOptions()
    assert parse_options("image/gif", {"window": "-600.5,1500,SIGMOID"}).window == (
        -600.5,
        1500.0,
        "SIGMOID",
    )
    assert parse_options("image/jpeg", {"window": "40,400"}).window == (40.0, 400.0, "LINEAR")
    assert parse_options("image/jpeg", {"viewport": "64,32"}).crop is None
    assert set(SUPPORTED) == {"image/jpeg", "image/png", "image/gif"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window": "abc"}, "window"),
        ({"window": "abc,400,linear"}, "window center"),
        ({"window": "40,wide,linear"}, "window width"),
        ({"window": "40,400,gamma"}, "unknown function"),
        ({"window": "40,400,linear,extra"}, "window"),
        ({"window": "40,0.5,linear"}, ">= 1"),
        ({"window": "40,0,sigmoid"}, "> 0"),
        ({"window": "nan,400"}, "finite"),
        ({"quality": "0"}, "1..100"),
        ({"quality": "101"}, "1..100"),
        ({"quality": "high"}, "integer"),
        ({"quality": ""}, "integer"),
        ({"viewport": "-5,100"}, "width"),
        ({"viewport": "100,0"}, "height"),
        ({"viewport": "100"}, "viewport"),
        ({"viewport": "100,100,0,0,50"}, "viewport"),
        ({"viewport": "100,100,-1,0,50,50"}, "source x"),
        ({"viewport": "100,100,0,0,-50,50"}, "source width"),
        ({"viewport": "1.5,100"}, "integer"),
        ({"viewport": "100000,100"}, "width"),
    ],
)
def test_parse_options_rejects_malformed_values(params: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_options("image/jpeg", params)


def test_parse_options_rejects_unsupported_media_type() -> None:
    with pytest.raises(ValueError, match="not supported"):
        parse_options("application/dicom", {})
