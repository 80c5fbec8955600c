"""Media types and content negotiation for DICOMweb (PS3.18 8.7: Accept header, media
type parameters ``type`` and ``transfer-syntax``, quality values)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from pacsnode.web.problems import Problem

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
DICOM_XML = "application/dicom+xml"
OCTET_STREAM = "application/octet-stream"
MULTIPART_RELATED = "multipart/related"

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"

# PS3.18 Table 8.7.3-5: media types of compressed frames (single-frame pixel data) by
# transfer syntax; uncompressed frames are application/octet-stream.
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg", "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls", "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx", "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc", "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
    "1.2.840.10008.1.2.4.100": "video/mpeg", "1.2.840.10008.1.2.4.101": "video/mpeg",
    "1.2.840.10008.1.2.4.102": "video/mp4", "1.2.840.10008.1.2.4.103": "video/mp4",
    "1.2.840.10008.1.2.4.104": "video/mp4", "1.2.840.10008.1.2.4.105": "video/mp4",
    "1.2.840.10008.1.2.4.106": "video/mp4", "1.2.840.10008.1.2.4.107": "video/H265",
    "1.2.840.10008.1.2.4.108": "video/H265",
}


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header."""

    type: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0

    def matches(self, media_type: str) -> bool:
        """Whether this range admits ``media_type`` (``*/*``, ``image/*`` or exact)."""
        if self.type in ("*/*", "*"):
            return True
        major, _, minor = self.type.partition("/")
        other_major, _, _ = media_type.partition("/")
        return self.type == media_type or (minor == "*" and major == other_major)


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def parse_media_type(text: str) -> MediaRange:
    """``type/subtype; name=value; ...`` (names lower-cased, quotes removed)."""
    head, *rest = _split(text, ";")
    params: dict[str, str] = {}
    q = 1.0
    for item in rest:
        name, _, value = item.partition("=")
        name, value = name.strip().lower(), value.strip().strip('"')
        if not name:
            continue
        if name == "q":
            try:
                q = float(value)
            except ValueError:
                raise Problem(400, f"invalid quality value q={value!r} in {text!r}") from None
        else:
            params[name] = value
    return MediaRange(head.strip().lower(), params, q)


def parse_accept(header: str | None) -> list[MediaRange]:
    """An Accept header's media ranges, best first (by q, then as written); none: ``*/*``."""
    if not header or not header.strip():
        return [MediaRange("*/*")]
    ranges = [parse_media_type(part) for part in _split(header, ",") if part.strip()]
    ranges = [r for r in ranges if r.q > 0]
    return sorted(ranges, key=lambda r: -r.q)


def not_acceptable(request: Request, offered: str) -> Problem:
    return Problem(406, f"cannot answer with any media type of Accept: "
                   f"{request.headers.get('accept')!r}; this resource offers {offered}")


def accept_json(request: Request) -> None:
    """Check that the client accepts ``application/dicom+json`` (406 otherwise)."""
    for media in parse_accept(request.headers.get("accept")):
        if media.matches(DICOM_JSON) or media.type == "application/json":
            return
    raise not_acceptable(request, DICOM_JSON)


def dicom_model_for(accept: str | None) -> str | None:
    """The representation of a QIDO-RS answer or WADO-RS metadata for an Accept header:
    :data:`DICOM_JSON` (also for ``application/json``, ``application/*``, ``*/*`` and no
    header: the default) or :data:`DICOM_XML` (``multipart/related;
    type="application/dicom+xml"``, PS3.18 10.6.3 and 10.4.1.1.2, or the bare
    ``application/dicom+xml``, answered as that multipart), whichever media range comes
    first by quality value (PS3.18 8.7); None when neither is acceptable."""
    for media in parse_accept(accept):
        if media.matches(DICOM_JSON) or media.type == "application/json":
            return DICOM_JSON
        if media.type == DICOM_XML or (media.type == MULTIPART_RELATED and
                                       media.params.get("type", "").lower() == DICOM_XML):
            return DICOM_XML
    return None


def accept_dicom_model(request: Request) -> str:
    """:func:`dicom_model_for` the request's Accept header; 406 when neither is acceptable."""
    chosen = dicom_model_for(request.headers.get("accept"))
    if chosen is None:
        raise not_acceptable(request, f'{DICOM_JSON} or {MULTIPART_RELATED}; '
                             f'type="{DICOM_XML}"')
    return chosen
