"""Collections: which files to score and which group each belongs to (folders, a manifest, or the embedded
default of real images that installed packages ship)."""

from __future__ import annotations

import errno
import functools
import importlib.util
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medgap.io.readers import SUPPORTED_SUFFIXES, is_dicom_file, suffix_of


class CollectionError(ValueError):
    """A collection that cannot be assembled (missing folder, bad manifest); the message says what to do."""


@dataclass(frozen=True)
class Source:
    """One file of a collection, with its group label and any other manifest columns."""

    path: Path
    group: str
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SkippedFile:
    """A file a folder scan left out (not hidden): its path, its type (the suffix, or "(no suffix)") and why."""

    path: Path
    kind: str
    reason: str


def _is_candidate(path: Path) -> bool:
    suffix = suffix_of(path)
    if suffix in SUPPORTED_SUFFIXES:
        return True
    return suffix == "" and is_dicom_file(path)


def _skip_reason(path: Path) -> SkippedFile:
    suffix = suffix_of(path)
    if suffix == "":
        return SkippedFile(path, "(no suffix)", "no suffix and not a DICOM file (no DICM preamble)")
    return SkippedFile(path, suffix, f"unsupported type {suffix} (supported: {', '.join(sorted(SUPPORTED_SUFFIXES))})")


def _walk_error(e: OSError) -> None:
    folder = e.filename or "?"
    if e.errno in (errno.EACCES, errno.EPERM):
        fix = "make it readable (chmod), or move it out of the collection"
    else:
        fix = "check the folder, or move it out of the collection"
    raise CollectionError(
        f"{folder}: cannot list this folder ({e.strerror or e}); its files would be left out silently: {fix}"
    )


def scan_folder(root: Path, skipped: list[SkippedFile] | None = None) -> list[Path]:
    """Image files under ``root``, recursively, sorted; hidden files and folders are skipped. A folder that
    cannot be listed raises :class:`CollectionError` (it would otherwise leave its files out silently).
    Other files of an unsupported type are appended to ``skipped`` (when given) with their reason."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=_walk_error):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath, name)
            if _is_candidate(path):
                found.append(path)
            elif skipped is not None:
                skipped.append(_skip_reason(path))
    return found


def summarise_skipped(skipped: Sequence[SkippedFile]) -> str:
    """One line for files a scan left out: ``4 files skipped (unsupported type: .txt 3, .xlsx 1)``."""
    counts: dict[str, int] = {}
    for s in skipped:
        counts[s.kind] = counts.get(s.kind, 0) + 1
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{len(skipped)} file{'s' if len(skipped) != 1 else ''} skipped (unsupported type: {kinds})"


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise CollectionError(f"{path}: no such {what}; check the path (relative paths start at {Path.cwd()})")
    return path.resolve()


def collect(
    paths: Sequence[str | Path] = (),
    groups: Sequence[tuple[str, str | Path]] = (),
    manifest: str | Path | None = None,
    group_column: str = "group",
    path_column: str = "path",
    *,
    skipped: list[SkippedFile] | None = None,
) -> list[Source]:
    """Sources from folders/files (group = first subfolder under each folder; a file's group is its folder's
    name), from ``(group, folder)`` pairs (everything below gets that group), and from a CSV manifest
    (``path_column`` relative to the CSV's folder, ``group_column`` the label; other columns go to ``extra``).
    Files that scanning a folder left out (unsupported type; hidden files are not counted) are appended to
    ``skipped`` when a list is given. A file named directly is kept: its reader gives the reason if it fails."""
    out: list[Source] = []
    for p in map(Path, paths):
        p = _need(p, "file or folder")
        if p.is_file():
            out.append(Source(p, p.parent.name))
            continue
        for f in scan_folder(p, skipped):
            rel = f.relative_to(p)
            out.append(Source(f, rel.parts[0] if len(rel.parts) > 1 else p.name))
    for name, folder in groups:
        folder = _need(Path(folder), "folder")
        files = [folder] if folder.is_file() else scan_folder(folder, skipped)
        out.extend(Source(f, name) for f in files)
    if manifest is not None:
        out.extend(read_manifest(manifest, group_column=group_column, path_column=path_column))
    return out


def read_manifest(manifest: str | Path, *, group_column: str = "group", path_column: str = "path") -> list[Source]:
    # pandas here, not at the top: worker processes and the fork server import medgap.io to read files and
    # need no pandas (about 0.4 s of start-up each)
    import pandas as pd

    csv = _need(Path(manifest), "manifest")
    try:
        df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except UnicodeDecodeError as e:
        raise CollectionError(
            f"{csv}: not UTF-8 text at line {_first_undecodable_line(csv)} ({e.reason}); save the manifest as "
            "UTF-8 CSV"
        ) from None
    except pd.errors.EmptyDataError:
        raise CollectionError(
            f"{csv}: empty manifest (no header line); write a CSV with a header such as path,group"
        ) from None
    except (pd.errors.ParserError, ValueError) as e:
        msg = " ".join(str(e).split()).replace("Error tokenizing data. C error: ", "")
        raise CollectionError(
            f"{csv}: malformed CSV manifest ({msg}); fix the CSV at that line (quote fields that contain "
            "commas, close every quote)"
        ) from None
    except OSError as e:
        raise CollectionError(f"{csv}: cannot read the manifest ({e.strerror or e})") from None
    for col, flag in ((path_column, "--path-column"), (group_column, "--group-column")):
        if col not in df.columns:
            raise CollectionError(
                f"{csv}: no column {col!r}; columns are {', '.join(df.columns)} (choose one with {flag})"
            )
    base = csv.parent
    extra_cols = [c for c in df.columns if c not in (path_column, group_column)]
    sources = []
    for row in df.itertuples(index=False):
        rec = dict(zip(df.columns, row))
        p = Path(rec[path_column])
        sources.append(
            Source((p if p.is_absolute() else base / p).resolve(), rec[group_column], {c: rec[c] for c in extra_cols})
        )
    return sources


def _first_undecodable_line(csv: Path) -> int | str:
    try:
        for number, line in enumerate(csv.read_bytes().split(b"\n"), start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    except OSError:
        pass
    return "?"


# --- the embedded default -------------------------------------------------------------------------------------

# scikit-image's sample photographs (natural scenes and objects; not microscopy, text, binary or textures).
_SKIMAGE_PHOTOS = (
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
)
_DICOM_GROUPS = {"CR": "cr", "CT": "ct", "MR": "mr", "US": "us"}
_BROKEN = ("truncated", "too_short", "bad", "mismatch")
# pydicom ships one image in several encodings (RG1_UNCR, RG1_J2KR, ...): keep one of each.
_ENCODING = re.compile(
    r"_(UNCR|UNCI|J2KR|J2KI|RLE|expb|big|bigendian|big_endian|implicit|padded|jpeg_ls_lossless|"
    r"jpeg_2k_lossless|jp2klossless)$",
    re.IGNORECASE,
)


def _package_dir(module: str, *sub: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent.joinpath(*sub)


@functools.lru_cache(maxsize=1)
def _embedded() -> tuple[Source, ...]:
    import pydicom

    sources: list[Source] = []
    photos = _package_dir("skimage", "data")
    if photos is not None:
        sources += [Source(photos / n, "natural") for n in _SKIMAGE_PHOTOS if (photos / n).exists()]
    chosen: dict[str, tuple[int, Source]] = {}  # image (name without encoding suffix) -> (preference, source)
    seen_uids: set[str] = set()
    for folder in (_package_dir("pydicom", "data", "test_files"), _package_dir("data_store", "data")):
        if folder is None or not folder.is_dir():
            continue
        for f in sorted(folder.glob("*.dcm")):
            if any(b in f.name.lower() for b in _BROKEN) or not f.is_file():
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = pydicom.dcmread(f, stop_before_pixels=True)
            except Exception:
                continue
            group = _DICOM_GROUPS.get(str(ds.get("Modality", "")))
            if group is None or int(ds.get("Rows", 0) or 0) < 64 or int(ds.get("Columns", 0) or 0) < 64:
                continue
            uid = str(ds.get("SOPInstanceUID", "")) or f.name
            key = _ENCODING.sub("", f.stem)
            ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
            pref = 0 if ts is not None and not ts.is_compressed else 1  # prefer the uncompressed twin
            if uid in seen_uids and key not in chosen:
                continue
            seen_uids.add(uid)
            if key not in chosen or pref < chosen[key][0]:
                chosen[key] = (pref, Source(f, group, {"modality": str(ds.Modality)}))
    sources += sorted((s for _, s in chosen.values()), key=lambda s: (s.group, s.path.name))
    return tuple(sources)


def embedded_default() -> list[Source]:
    """Real images that installed packages ship (no download): scikit-image's sample photographs ("natural")
    and the DICOM files of pydicom and pydicom-data with Modality CR, CT, MR or US ("cr", "ct", "mr", "us"),
    at least 64 px a side, one file per image (pydicom ships several encodings of some; the uncompressed one is kept), deliberately broken files
    left out."""
    return list(_embedded())
