"""A saved model as one file to take away (`export`) and to bring back (`import_model`).

The file is a zip of the model's folder (model, `meta.json`, `history.csv`, serving copy, training-row
hashes) with a `manifest.json` giving each file's SHA-256, and the manifest signed with this
install's key. On import every file must match the manifest (a tampered archive is refused); a
Keras model from anywhere is accepted (it is loaded with Keras' safe mode), but a forest's pickle
only when this install signed it: a pickle made elsewhere is never loaded.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import zipfile
from pathlib import Path

from core import registry

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FORMAT = 1
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024
CARRIED = (registry.KERAS_FILE, registry.SKLEARN_FILE, registry.SIGNATURE_FILE, registry.META_FILE,
           registry.HISTORY_FILE, registry.HASHES_FILE, "model.tflite", "model.tflite.json")


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def export_bytes(name: str) -> bytes:
    """The zip of model `name` (refused while it is still training: its files are changing)."""
    meta = registry.read_meta(name)
    folder = registry.model_dir(name)
    if registry.ModelInfo(name, meta).status in ("queued", "running"):
        raise ValueError(f"{name} is still training: export it once it has ended")
    files = {f: (folder / f).read_bytes() for f in CARRIED if (folder / f).is_file()}
    if not any(f in files for f in registry.MODEL_FILES):
        raise ValueError(f"{name} has no model file to export")
    digests = {f: _sha256(b) for f, b in files.items()}
    manifest = json.dumps({"format": FORMAT, "name": name, "files": digests}, indent=1).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, manifest)
        zf.writestr(SIGNATURE, registry.sign(manifest))
        for fname, payload in files.items():
            zf.writestr(fname, payload)
    return buf.getvalue()


def _read(payload: bytes, source: str) -> tuple[dict, dict[str, bytes], bool]:
    """(manifest, files, signed by this install), or ValueError naming what is wrong."""
    if len(payload) > MAX_ARCHIVE_BYTES:
        raise ValueError(f"{source} is larger than {MAX_ARCHIVE_BYTES // 2**20} MB: not a model export")
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as zf:
            names = zf.namelist()
            if MANIFEST not in names:
                raise ValueError(f"{source} has no {MANIFEST}: not a model exported by this app")
            manifest_bytes = zf.read(MANIFEST)
            signature = zf.read(SIGNATURE).decode(errors="replace") if SIGNATURE in names else ""
            manifest = json.loads(manifest_bytes)
            listed = manifest.get("files") or {}
            unknown = [n for n in names if n not in (MANIFEST, SIGNATURE) and n not in listed]
            if unknown or any(f not in CARRIED for f in listed):
                raise ValueError(f"{source} holds files that are not part of a model export: "
                                 f"{', '.join(sorted(set(unknown) | (set(listed) - set(CARRIED))))}")
            files = {f: zf.read(f) for f in listed}
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{source} is not a readable model export ({exc})") from None
    for fname, digest in listed.items():
        if _sha256(files[fname]) != digest:
            raise ValueError(f"{source} was tampered with: {fname} does not match its manifest")
    return manifest, files, hmac.compare_digest(signature, registry.sign(manifest_bytes))


def import_model(payload: bytes, *, source: str = "the archive", name: str | None = None) -> str:
    """Save the model in an export as `name` (default: its own, or `-2`… if taken); its name."""
    manifest, files, ours = _read(payload, source)
    if registry.SKLEARN_FILE in files and not ours:
        raise ValueError(f"{source} holds a forest pickled by another install: it is never loaded here")
    if not any(f in files for f in registry.MODEL_FILES) or registry.META_FILE not in files:
        raise ValueError(f"{source} has no model file and meta.json")
    target = registry.unique_name(registry.validate_name(name or str(manifest.get("name", "imported"))))
    meta = json.loads(files[registry.META_FILE])
    meta.update(name=target, imported_from=Path(source).name, status=meta.get("status", "done"))
    meta.pop("process", None)
    folder = registry.model_dir(target)
    folder.mkdir(parents=True)
    for fname, content in files.items():
        if fname != registry.META_FILE:
            (folder / fname).write_bytes(content)
    registry.write_meta(target, meta)
    return target
