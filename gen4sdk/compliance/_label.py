"""A visible AI-disclosure label burned into the first seconds of a clip (an "explicit label" in China's Measures,
a "manifest disclosure" in California's SB 942, the usual means of an EU AI Act Art. 50(4) deep-fake disclosure).

The Client burns it in after the output policy check and before the watermark, so the watermark covers the
labelled picture, and records it in the credentials as a ``c2pa.edited`` action (``LabelRecord``).

Fonts: a label is refused when the Client is made if no font can draw every character of its text, rather than
drawn as empty boxes. Without ``VisibleLabel(font=...)`` the first installed font that covers the text is used:
Debian's fonts-noto-cjk or fonts-wqy-zenhei for Chinese, DejaVu for Latin text.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from gen4sdk.errors import InvalidRequestError
from gen4sdk.types import LabelRecord, VisibleLabel

logger = logging.getLogger(__name__)

__all__ = ["PreparedLabel", "burn_label", "prepare_label"]

# Looked at first, in this order: CJK coverage before Latin-only, so the default bilingual text finds a font that
# draws all of it. Paths are Debian's (fonts-noto-cjk, fonts-wqy-zenhei, fonts-wqy-microhei, fonts-arphic-*).
_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
_MAX_SCANNED = 400
# A code point no font maps (plane 15 private use): what it draws is the font's "missing glyph" shape.
_UNMAPPED = "\U000ffffd"
_INSTALL_HINT = (
    "install a font that has them (Debian: apt-get install fonts-noto-cjk, or fonts-wqy-zenhei, for Chinese) "
    "or pass VisibleLabel(font=PATH)"
)


def _load(path: str | Path, size: int = 48):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    return ImageFont.truetype(str(path), size)


def _glyph(font, ch: str) -> tuple[tuple[int, int], bytes]:  # type: ignore[no-untyped-def]
    mask = font.getmask(ch)
    return mask.size, bytes(np.asarray(mask))


def missing_characters(font_path: str | Path, text: str) -> list[str]:
    """The characters of ``text`` the font draws as its missing-glyph shape (whitespace is not checked)."""
    font = _load(font_path)
    notdef = _glyph(font, _UNMAPPED)
    return [ch for ch in dict.fromkeys(text) if not ch.isspace() and _glyph(font, ch) == notdef]


def _installed_fonts() -> list[Path]:
    found = [Path(p) for p in _CANDIDATES if Path(p).is_file()]
    for root in _FONT_DIRS:
        base = Path(root)
        if not base.is_dir():
            continue
        scanned = sorted(p for p in base.rglob("*") if p.suffix.lower() in {".ttf", ".ttc", ".otf"})
        found += [p for p in scanned[:_MAX_SCANNED] if p not in found]
    return found


@lru_cache(maxsize=32)
def _font_for(text: str) -> Path | None:
    for path in _installed_fonts():
        try:
            if not missing_characters(path, text):
                return path
        except OSError as exc:  # an unreadable or non-font file among the system's fonts
            logger.debug("skipping font %s: %s", path, exc)
    return None


class PreparedLabel:
    """A label whose font is resolved and checked; renders itself for a frame size."""

    def __init__(self, label: VisibleLabel, font_path: Path) -> None:
        self.label = label
        self.font_path = font_path

    def render(self, height: int, width: int) -> tuple[np.ndarray, int, int, float]:
        """The label as an RGBA image for a frame of this size, its top-left corner, and its text height as a
        fraction of the frame's shorter side."""
        return _render(self.label, str(self.font_path), height, width)


def prepare_label(label: VisibleLabel) -> PreparedLabel:
    """Resolve the font and check that it draws every character; InvalidRequestError(field="label") if not."""
    if label.font is not None:
        if not label.font.is_file():
            raise InvalidRequestError(f"label font {label.font} does not exist", field="label.font")
        try:
            missing = missing_characters(label.font, label.text)
        except OSError as exc:
            raise InvalidRequestError(
                f"label font {label.font} is not a font file: {exc}", field="label.font"
            ) from exc
        if missing:
            raise InvalidRequestError(
                f"label font {label.font.name} cannot draw {''.join(missing)!r} of the label text; {_INSTALL_HINT}",
                field="label.text",
            )
        return PreparedLabel(label, label.font)
    path = _font_for(label.text)
    if path is None:
        fonts = _installed_fonts()
        missing = (
            sorted(set.intersection(*(set(missing_characters(p, label.text)) for p in fonts[:8])))
            if fonts
            else []
        )
        shown = "".join(missing) or label.text
        raise InvalidRequestError(
            f"no installed font can draw all of the label text (not drawable: {shown!r}); {_INSTALL_HINT}",
            field="label.text",
        )
    return PreparedLabel(label, path)


@lru_cache(maxsize=8)
def _render(
    label: VisibleLabel, font_path: str, height: int, width: int
) -> tuple[np.ndarray, int, int, float]:
    from PIL import Image, ImageDraw

    short = min(height, width)
    target = max(1.0, label.height * short)
    # size the font so the drawn text (its ink, not the em box) is at least the target height
    probe = _load(font_path, 100)
    left, top, right, bottom = probe.getbbox(label.text)
    size = max(4, math.ceil(100 * target / max(1, bottom - top)))
    font = _load(font_path, size)
    left, top, right, bottom = font.getbbox(label.text)
    text_w, text_h = right - left, bottom - top
    pad = max(1, round(0.25 * text_h))
    box_w = min(width, text_w + 2 * pad)
    box_h = min(height, text_h + 2 * pad)
    image = Image.new("RGBA", (box_w, box_h), label.background or (0, 0, 0, 0))
    ImageDraw.Draw(image).text((pad - left, pad - top), label.text, font=font, fill=(*label.color, 255))
    margin = max(1, round(0.02 * short))
    x = {"left": margin, "right": width - box_w - margin}.get(
        label.position.split("-")[-1], (width - box_w) // 2
    )
    vertical = label.position.split("-")[0]
    y = {"top": margin, "bottom": height - box_h - margin}.get(vertical, (height - box_h) // 2)
    return np.asarray(image), max(0, x), max(0, y), text_h / short


def burn_label(frames: np.ndarray, prepared: PreparedLabel, fps: float) -> tuple[np.ndarray, LabelRecord]:
    """Draw the label over the first ``duration`` seconds (all frames for None) of (T, H, W, 3) uint8 frames."""
    label = prepared.label
    count = len(frames) if label.duration is None else min(len(frames), math.ceil(label.duration * fps))
    rgba, x, y, fraction = prepared.render(frames.shape[1], frames.shape[2])
    h, w = rgba.shape[:2]
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    ink = rgba[..., :3].astype(np.float32)
    out = frames.copy()
    region = out[:count, y : y + h, x : x + w].astype(np.float32)
    out[:count, y : y + h, x : x + w] = np.clip(region * (1 - alpha) + ink * alpha + 0.5, 0, 255).astype(
        np.uint8
    )
    record = LabelRecord(
        text=label.text,
        position=label.position,
        height_fraction=round(fraction, 4),
        start_s=0.0,
        end_s=round(count / fps, 3),
        font=prepared.font_path.name,
    )
    return out, record
