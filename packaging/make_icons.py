"""Render resources/app_icon.svg into the icons a package needs, at build time.

    python packaging/make_icons.py [OUT_DIR]     # default: build/icons

Writes app_icon_<N>.png for each size (Linux, and the sources of the others),
app_icon.ico (Windows: 16-256 px) and app_icon.icns (macOS: 16-1024 px). Qt renders
every size from the SVG, so small icons are drawn for their size, not shrunk from a big
one; Pillow only packs them into .ico and .icns. Nothing here is committed: the SVG is
the one source.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "resources" / "app_icon.svg"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)


def render_pngs(out_dir: Path, sizes: tuple[int, ...] = PNG_SIZES) -> dict[int, Path]:
    """Render the SVG at each size into out_dir/app_icon_<size>.png."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # build machines have no screen
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {SVG}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        path = out_dir / f"app_icon_{size}.png"
        if not image.save(str(path), "PNG"):
            raise SystemExit(f"cannot write {path}")
        written[size] = path
    return written


def pack(pngs: dict[int, Path], out_dir: Path) -> tuple[Path, Path]:
    """Pack the PNGs into app_icon.ico and app_icon.icns."""
    from PIL import Image

    images = {size: Image.open(path).convert("RGBA") for size, path in pngs.items()}
    ico = out_dir / "app_icon.ico"
    largest_ico = max(ICO_SIZES)
    images[largest_ico].save(ico, format="ICO", sizes=[(s, s) for s in ICO_SIZES],
                             append_images=[images[s] for s in ICO_SIZES if s != largest_ico])
    icns = out_dir / "app_icon.icns"
    largest_icns = max(ICNS_SIZES)
    images[largest_icns].save(icns, format="ICNS",
                              append_images=[images[s] for s in ICNS_SIZES
                                             if s != largest_icns])
    return ico, icns


def make_icons(out_dir: Path) -> dict[str, Path]:
    """All icons; returns {"png": the 256 px PNG, "ico": ..., "icns": ...}."""
    pngs = render_pngs(out_dir)
    ico, icns = pack(pngs, out_dir)
    return {"png": pngs[256], "ico": ico, "icns": icns}


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "icons"
    for kind, path in make_icons(target).items():
        print(f"{kind}: {path}")
