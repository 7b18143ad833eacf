"""What to encode: the sorted sample list of a folder of images or Parquet files, and decoding one sample.

A sample has an id, unique in the run, that fixes its place in the shard plan, its random mask and
its mask file:

- an image file: its path relative to SRC, with ``/`` separators (``cats/0001.jpg``);
- a Parquet row: the Parquet file's relative path, ``/`` and the row number (``data/train-0.parquet/17``).

The order is the sorted image paths, then the sorted Parquet files' rows in file order; nothing else
(no listing order, no clock) enters it, so the same SRC gives the same list on every rank and every run.
A sample's mask key is its id without the image file's extension (``cats/0001``; a row keeps its id).
"""

from __future__ import annotations

import bisect
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image, ImageOps

from .errors import PrecomputeError, require_extra

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
PARQUET_SUFFIX = ".parquet"
# Errors Pillow raises on a truncated, corrupt or unsupported file (UnidentifiedImageError is an OSError).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError)


@dataclass
class ParquetFile:
    """One Parquet file of the source: where its rows start in the sample list and its row groups."""

    path: Path
    rel: str
    first: int  # index of its row 0 in the sample list
    rows: int
    group_starts: list[int]  # first row of each row group, ascending


@dataclass
class Sources:
    """The sorted sample list: image files first, then Parquet rows.

    ``ids[i]`` names sample ``i``; ``images[i]`` is its file for ``i < len(images)``, later indices
    are rows of ``parquet`` files.
    """

    root: Path
    image_column: str
    images: list[Path]
    ids: list[str]
    parquet: list[ParquetFile] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def mask_key(self, index: int) -> str:
        if index < len(self.images):
            return self.ids[index].rpartition(".")[0] or self.ids[index]
        return self.ids[index]

    def locate(self, index: int) -> tuple[ParquetFile, int, int]:
        """A Parquet sample's file, row group and row within the group."""
        starts = [f.first for f in self.parquet]
        table = self.parquet[bisect.bisect_right(starts, index) - 1]
        row = index - table.first
        group = bisect.bisect_right(table.group_starts, row) - 1
        return table, group, row - table.group_starts[group]


def _image_column_kind(schema, column: str, path: Path) -> str:
    import pyarrow as pa

    if column not in schema.names:
        raise PrecomputeError(f"--image-column: {path} has no column {column!r} (columns: {', '.join(schema.names)})")
    kind = schema.field(column).type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return "binary"
    if pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0:
        return "struct"
    raise PrecomputeError(
        f"--image-column: column {column!r} of {path} is {kind}; it must hold image bytes: binary, or a struct"
        " with a 'bytes' field (the Hugging Face datasets Image layout)"
    )


def list_sources(src: Path, image_column: str = "image") -> Sources:
    """The sorted sample list of ``src``: a folder (images and Parquet files, recursively) or one Parquet file.

    Raises:
        PrecomputeError: a missing SRC, one with no images or rows, a Parquet file without a usable
            ``image_column``, or pyarrow missing when Parquet files are present.
    """
    src = Path(src)
    if src.is_file():
        if src.suffix.lower() != PARQUET_SUFFIX:
            raise PrecomputeError(f"SRC: {src} is a file but not a .parquet file; give a folder of images or Parquet")
        root, files = src.parent, [src]
    elif src.is_dir():
        root, files = src, sorted(p for p in src.rglob("*") if p.is_file())
    else:
        raise PrecomputeError(f"SRC: {src} does not exist")

    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix()

    images = sorted((p for p in files if p.suffix.lower() in IMAGE_SUFFIXES), key=rel)
    tables = sorted((p for p in files if p.suffix.lower() == PARQUET_SUFFIX), key=rel)
    ids = [rel(p) for p in images]
    parquet = []
    if tables:
        pq = require_extra("pyarrow.parquet", "reading Parquet files")
        for path in tables:
            try:
                meta = pq.ParquetFile(path)
            except (OSError, ValueError) as error:
                raise PrecomputeError(f"SRC: cannot read Parquet file {path} ({error})") from error
            _image_column_kind(meta.schema_arrow, image_column, path)
            sizes = [meta.metadata.row_group(g).num_rows for g in range(meta.num_row_groups)]
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist() if sizes else [0]
            table = ParquetFile(path, rel(path), len(ids), meta.metadata.num_rows, starts)
            ids.extend(f"{table.rel}/{row}" for row in range(table.rows))
            parquet.append(table)
    if not ids:
        raise PrecomputeError(f"SRC: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) or Parquet rows in {src}")
    return Sources(root, image_column, images, ids, parquet)


class ParquetReader:
    """Reads image bytes of Parquet rows, one row group at a time (the last group of each file is kept)."""

    def __init__(self, sources: Sources):
        self.sources = sources
        self.cache: dict[Path, tuple[int, list[Optional[bytes]]]] = {}

    def read(self, index: int) -> Optional[bytes]:
        table, group, row = self.sources.locate(index)
        cached = self.cache.get(table.path)
        if cached is None or cached[0] != group:
            import pyarrow as pa
            import pyarrow.parquet as pq

            column = self.sources.image_column
            data = pq.ParquetFile(table.path).read_row_group(group, columns=[column]).column(column)
            values = data.combine_chunks()
            if pa.types.is_struct(values.type):
                values = values.field("bytes")
            cached = (group, values.to_pylist())
            self.cache[table.path] = cached
        return cached[1][row]


def resize_crop(image: Image.Image, size: int) -> np.ndarray:
    """Shorter side to ``size`` (bicubic), centre crop to ``size x size``: ``(size, size, C)`` uint8."""
    width, height = image.size
    scale = size / min(width, height)
    target = (max(size, round(width * scale)), max(size, round(height * scale)))
    if target != image.size:
        image = image.resize(target, Image.Resampling.BICUBIC)
    left, top = (target[0] - size) // 2, (target[1] - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)))


def decode_image(data: Union[bytes, Path], size: int) -> np.ndarray:
    """Decode an image (a file or its bytes), upright (EXIF orientation), RGB, to ``(size, size, 3)`` uint8.

    JPEG files are decoded at the smallest DCT scale that is still at least ``size`` on both sides
    (Pillow's ``draft``): the same pixels every time, a fraction of the work for large photos.

    Raises:
        OSError, ValueError, ...: see ``DECODE_ERRORS``; the runner skips such samples.
    """
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
        image.draft("RGB", (size, size))
        return resize_crop(ImageOps.exif_transpose(image).convert("RGB"), size)


def decode_mask(path: Path, size: int) -> np.ndarray:
    """A mask file's gray levels (white = repaint) under the same resize and crop: ``(size, size)`` uint8."""
    with Image.open(path) as image:
        return resize_crop(image.convert("L"), size)


def match_masks(sources: Sources, masks_dir: Path) -> list[Path]:
    """The mask file of every sample, matched by mask key (relative path without extension).

    Raises:
        PrecomputeError: a missing folder, two files with one key, or samples without a mask (all
            checked before any work starts; the message names the first missing keys).
    """
    masks_dir = Path(masks_dir)
    if not masks_dir.is_dir():
        raise PrecomputeError(f"--masks: {masks_dir} is not a folder")
    by_key: dict[str, Path] = {}
    for path in sorted(masks_dir.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            key = path.relative_to(masks_dir).with_suffix("").as_posix()
            if key in by_key:
                raise PrecomputeError(f"--masks: two mask files for {key!r}: {by_key[key].name} and {path.name}")
            by_key[key] = path
    keys = [sources.mask_key(i) for i in range(len(sources))]
    missing = [key for key in keys if key not in by_key]
    if missing:
        shown = ", ".join(repr(k) for k in missing[:5])
        raise PrecomputeError(
            f"--masks: no mask in {masks_dir} for {len(missing)} of {len(keys)} samples (matched by relative path"
            f" without extension), e.g. {shown}"
        )
    return [by_key[key] for key in keys]
