"""Archives, pins and a fetch shortcut shared by the supply-chain tests."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
from pathlib import Path
from types import MappingProxyType

from config import Settings
from core.artifacts.catalog import Catalog
from core.artifacts.download import RetryPolicy
from core.artifacts.install import ensure_model
from core.artifacts.plan import Source

REPO = Path(__file__).resolve().parents[2]
SSDLITE = "ssdlite_mobilenet_v2_coco.tar.gz"
SSDLITE_SHA = "6165257e55960d20629acec1c55fa11a8f8f81fd8559ccd4f8f59269cdebfbb8"
TFLITE = "coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip"
TFLITE_SHARED_SHA = "c9a7eaabba654149f996df50ccc387a21063e9c29fb5c53828b35f8e6573c20a"
DETECT_SHA = "e4b118e5e4531945de2e659742c7c590f7536f8d0ed26d135abcfe83b4779d13"
FAST = RetryPolicy(attempts=3, base_delay=0.01, timeout=5)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def custom(assets: Path, url: str, sha: str) -> Settings:
    return Settings(assets_dir=assets, model_url=url, model_sha256=sha)


def fetch(settings: Settings, mirror_of: str | None = None, **kw) -> Path:
    kw.setdefault("retry", FAST)
    source = settings.source
    if mirror_of:
        source = Source(mirror_of, settings.model_url, settings.model_sha256, mirror=True)
    return ensure_model(source, settings.models_dir, show_progress=False, **kw)


def assert_nothing_installed(assets: Path) -> None:
    leftovers = [p.name for p in (assets / "models").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def small_tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SMALL = small_tar_gz({"m/model.pb": b"graph bytes" * 100, "m/labels.txt": b"person\n"})


def with_entry(catalog: Catalog, name: str, **changes) -> Catalog:
    entries = dict(catalog.entries)
    entries[name] = dataclasses.replace(entries[name], **changes)
    return Catalog(MappingProxyType(entries))
