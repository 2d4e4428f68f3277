"""Assets of the photoreal data set: Sweet Home 3D furniture catalogs, a photo bank, the hold-out split.

Runs under both the training venv's Python and Blender's (Debian's blender uses the system Python 3.11
with its numpy and PIL), so it needs only the standard library plus PIL for the photo bank.

Sources (all from Debian packages the data script installs):
  * furniture: `sweethome3d-furniture`, /usr/share/sweethome3d/furniture/*.sh3f: zips of OBJ + MTL +
    textures with a PluginFurnitureCatalog.properties (id, name, category, creator, real width/depth/height
    in cm, optional modelRotation and elevation). The `sweethome3d` package's own jar (its built-in catalog)
    is reserved for independent evaluation and never read here.
  * photographs: Debian's wallpaper packages (see PHOTO_SOURCES), used as wall/floor/rug/picture textures,
    as the view through windows and as the environment behind open scenes.

Extracted files live in a cache folder (git-ignored, regenerated from the packages on demand).
"""
from __future__ import annotations

import hashlib
import math
import json
import os
import re
import zipfile

CATALOG_DIR = "/usr/share/sweethome3d/furniture"
# catalog file stem -> licence as its properties declare (the model card credits each catalog and creator)
CATALOG_LICENCES = {
    "BlendSwap-CC-0": "CC0 (public domain)",
    "BlendSwap-CC-BY": "CC-BY 3.0",
    "KatorLegaz": "CC-BY 3.0",
    "Reallusion": "CC-BY 3.0",
    "Scopia": "CC-BY 3.0",
}
# Categories that may be the target (the object to be modelled). People are clutter only; staircases need
# a floor above them.
TARGET_EXCLUDED = {"Characters", "Staircases"}
CLUTTER_EXCLUDED = {"Staircases"}

PHOTO_SOURCES = {
    "gnome-backgrounds": ("/usr/share/backgrounds/gnome", "CC-BY-SA 3.0 (see /usr/share/doc/gnome-backgrounds/copyright)"),
    "mate-backgrounds": ("/usr/share/backgrounds/mate", "GPL-2+ / CC-BY-SA 4.0 (see /usr/share/doc/mate-backgrounds/copyright)"),
    "plasma-workspace-wallpapers": ("/usr/share/wallpapers", "GPL-2+ (see /usr/share/doc/plasma-workspace-wallpapers/copyright)"),
}
APT_PACKAGES = ["blender", "sweethome3d-furniture", "python3-numpy", "python3-pil"] + list(PHOTO_SOURCES)

HERE = os.path.dirname(os.path.abspath(__file__))
HELDOUT_LIST = os.path.join(HERE, "heldout_models.txt")
HELDOUT_FRACTION = 0.12


def default_cache() -> str:
    return os.path.join(os.path.dirname(HERE), "data", "assets")


# ----------------------------------------------------------------------------- catalogs
def _parse_properties(text: str) -> dict:
    """Java .properties (ISO-8859-1 with \\uXXXX escapes; no continuation lines in these catalogs)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!" or "=" not in line:
            continue
        k, v = line.split("=", 1)
        v = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), v)
        out[k.strip()] = v.strip()
    return out


def read_catalogs(catalog_dir: str = CATALOG_DIR) -> list:
    """Every model of every catalog: dicts with id, catalog, licence, name, category, creator, size_cm
    (width, depth, height), rotation (9 floats, row-major, or None), elevation_cm, door_or_window,
    drop_on_top_cm (height where items can stand on it, or None) and `member` (the OBJ's path inside the zip). Sorted by id, so the order is the same on every machine."""
    models = []
    for stem, licence in CATALOG_LICENCES.items():
        path = os.path.join(catalog_dir, stem + ".sh3f")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing: apt-get install sweethome3d-furniture")
        with zipfile.ZipFile(path) as z:
            props = _parse_properties(z.read("PluginFurnitureCatalog.properties").decode("latin-1"))
        i = 1
        while f"id#{i}" in props:
            g = lambda k, d=None: props.get(f"{k}#{i}", d)  # noqa: E731
            rot = g("modelRotation")
            models.append(dict(
                id=g("id"), catalog=stem, licence=licence, name=g("name"), category=g("category"),
                creator=g("creator"), member=g("model").lstrip("/"),
                size_cm=[float(g("width")), float(g("depth")), float(g("height"))],
                rotation=[float(x) for x in rot.split()] if rot else None,
                elevation_cm=float(g("elevation", "0")), door_or_window=g("doorOrWindow") == "true",
                drop_on_top_cm=float(g("dropOnTopElevation")) if g("dropOnTopElevation") else None))
            i += 1
    models.sort(key=lambda m: m["id"])
    return models


def extract_catalogs(cache: str, catalog_dir: str = CATALOG_DIR) -> str:
    """Unzip each catalog once into cache/furniture/<stem>/ (a marker file makes it idempotent)."""
    root = os.path.join(cache, "furniture")
    for stem in CATALOG_LICENCES:
        dest = os.path.join(root, stem)
        marker = os.path.join(dest, ".extracted")
        if os.path.exists(marker):
            continue
        with zipfile.ZipFile(os.path.join(catalog_dir, stem + ".sh3f")) as z:
            z.extractall(dest)
        open(marker, "w").close()
    return root


def model_path(cache: str, m: dict) -> str:
    return os.path.join(cache, "furniture", m["catalog"], m["member"])


# ----------------------------------------------------------------------------- hold-out split
def _rank(model_id: str) -> str:
    return hashlib.sha256(model_id.encode()).hexdigest()


def make_heldout(models: list, fraction: float = HELDOUT_FRACTION) -> list:
    """ceil(fraction) of each category by a hash of the id (stable, not by list position), at least one per
    category: split by model, never by image."""
    by_cat = {}
    for m in models:
        by_cat.setdefault(m["category"], []).append(m["id"])
    out = []
    for cat, ids in sorted(by_cat.items()):
        ids = sorted(ids, key=_rank)
        k = max(1, math.ceil(fraction * len(ids)))
        out += ids[:k]
    return sorted(out)


def read_heldout(path: str = HELDOUT_LIST) -> set:
    with open(path, encoding="utf-8") as f:
        return {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}


def split_models(models: list, heldout: set) -> tuple:
    """(training models, held-out models)."""
    return [m for m in models if m["id"] not in heldout], [m for m in models if m["id"] in heldout]


# ----------------------------------------------------------------------------- photo bank
def prepare_photos(cache: str, max_side: int = 1024) -> list:
    """Every wallpaper photograph, resized to at most max_side and saved as JPEG under cache/photos/.
    Returns [{file, source, licence, original}], also written to cache/photos/manifest.json."""
    from PIL import Image

    dest = os.path.join(cache, "photos")
    manifest = os.path.join(dest, "manifest.json")
    if os.path.exists(manifest):
        with open(manifest) as f:
            return json.load(f)
    os.makedirs(dest, exist_ok=True)
    out = []
    for pkg, (root, licence) in sorted(PHOTO_SOURCES.items()):
        if not os.path.isdir(root):
            raise FileNotFoundError(f"{root} is missing: apt-get install {pkg}")
        files = []
        for dirpath, _, names in os.walk(root):
            files += [os.path.join(dirpath, n) for n in names if n.lower().endswith((".jpg", ".jpeg", ".png", ".webp"))]
        # Plasma ships each wallpaper at many resolutions (contents/images*/WxH.ext): keep the largest file
        # of each folder, so a photo is not counted many times.
        best = {}
        for src in files:
            key = os.path.dirname(src) if "/contents/" in src else src
            if key not in best or os.path.getsize(src) > os.path.getsize(best[key]):
                best[key] = src
        for src in sorted(best.values()):
            if "screenshot" in src.lower():
                continue
            try:
                im = Image.open(src)
                im.draft("RGB", (max_side, max_side))
                im = im.convert("RGB")
            except OSError:
                continue
            if min(im.size) < 256:
                continue
            s = max_side / max(im.size)
            if s < 1:
                im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
            name = f"{pkg}_{hashlib.sha1(src.encode()).hexdigest()[:10]}.jpg"
            im.save(os.path.join(dest, name), quality=92)
            out.append(dict(file=name, source=pkg, licence=licence, original=src))
    tmp = manifest + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, manifest)
    return out
