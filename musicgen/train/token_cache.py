"""Token cache: a dataset encoded once by the codec, stored as memory-mapped numpy shards.

``build_token_cache(dataset, codec, cache_root)`` encodes every file of an ``AudioDataset`` (whole
files: build the dataset with ``duration_s=None``) and writes::

    cache_root/{split}-{digest16}/index.json          codec digest, K, card, frame_rate, sample_rate,
                                                      and per item: id, shard, start, frames,
                                                      description, metadata (sidecar minus bulky
                                                      fields such as the melody notes)
    cache_root/{split}-{digest16}/shard_00000.npy     int16 codes [K, frames of several items]

``digest16`` is the start of ``codec_digest(codec)`` (sha256 of the codec's config and weights), so a
different codec never reads another codec's tokens; a complete cache with the same digest is reused.
The folder is built under a temporary name and renamed into place.

``TokenCache(folder)`` opens the shards with ``np.load(mmap_mode="r")`` and gives ``codes(i) [K, F]``
and ``crop(i, frames, offset)``; ``sample_batch(batch_size, frames, rng)`` draws random items and crops
``[B, K, frames]`` (long) plus their descriptions/metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from musicgen.checkpoints.files import atomic_folder, state_dict_digest

INDEX = "index.json"
CACHE_VERSION = 1
_BULKY_FIELDS = ("melody", "chords")


def codec_digest(codec: torch.nn.Module) -> str:
    """sha256 over the codec's class, config (when it has one) and weights."""
    h = hashlib.sha256(type(codec).__name__.encode())
    config = getattr(codec, "config", None)
    if config is not None:
        to_dict = getattr(config, "to_dict", None)
        h.update(json.dumps(to_dict() if to_dict else repr(config), sort_keys=True, default=str).encode())
    h.update(state_dict_digest(codec.state_dict()).encode())
    return h.hexdigest()


def _light_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in _BULKY_FIELDS}


@torch.no_grad()
def _encode_shards(dataset: Any, codec: torch.nn.Module, folder: Path, shard_frames: int,
                   device: str | torch.device) -> list[dict[str, Any]]:
    """Encode every item into int16 shards ``folder/shard_NNNNN.npy`` (``[K, frames]``, at least
    ``shard_frames`` frames each but the last); return the items' index rows."""
    items: list[dict[str, Any]] = []
    pending: list[np.ndarray] = []
    pending_frames = 0
    shard = 0
    for i in range(len(dataset)):
        sample = dataset[i]
        codes = codec.encode(sample["wav"][None].to(device))[0].cpu().numpy().astype(np.int16)
        items.append({"id": sample["id"], "shard": shard, "start": pending_frames,
                      "frames": int(codes.shape[-1]), "description": sample["description"],
                      "metadata": _light_metadata(sample["metadata"]), "path": sample["path"]})
        pending.append(codes)
        pending_frames += codes.shape[-1]
        if pending_frames >= shard_frames or i == len(dataset) - 1:
            np.save(folder / f"shard_{shard:05d}.npy", np.concatenate(pending, axis=1))
            shard += 1
            pending, pending_frames = [], 0
    return items


def build_token_cache(dataset: Any, codec: torch.nn.Module, cache_root: str | os.PathLike[str], *,
                      shard_frames: int = 1 << 20, device: str | torch.device = "cpu") -> Path:
    """Encode ``dataset`` (an ``AudioDataset`` of whole files) with ``codec``; return the cache folder."""
    if getattr(dataset, "duration_s", None) is not None:
        raise ValueError("build_token_cache encodes whole files: build the AudioDataset with duration_s=None")
    if dataset.sample_rate != codec.sample_rate or dataset.channels != codec.channels:
        raise ValueError(f"dataset gives {dataset.channels} channel(s) at {dataset.sample_rate} Hz but the "
                         f"codec takes {codec.channels} at {codec.sample_rate} Hz")
    if codec.cardinality > np.iinfo(np.int16).max:
        raise ValueError(f"codec cardinality {codec.cardinality} does not fit the int16 shards")
    digest = codec_digest(codec)
    split = dataset.split or "all"
    folder = Path(cache_root) / f"{split}-{digest[:16]}"
    index_path = folder / INDEX
    if index_path.is_file():
        index = json.loads(index_path.read_text())
        if index.get("codec_digest") == digest and index.get("version") == CACHE_VERSION \
                and index.get("num_items") == len(dataset):
            return folder
    codec = codec.to(device).eval()
    with atomic_folder(folder) as tmp:
        items = _encode_shards(dataset, codec, tmp, shard_frames, device)
        index = {"version": CACHE_VERSION, "codec_digest": digest, "num_codebooks": int(codec.num_codebooks),
                 "card": int(codec.cardinality), "frame_rate": float(codec.frame_rate),
                 "sample_rate": int(codec.sample_rate), "split": split, "num_items": len(items),
                 "skipped": [list(s) for s in dataset.skipped], "items": items}
        (tmp / INDEX).write_text(json.dumps(index, indent=1, sort_keys=True))
    return folder


class TokenCache:
    """Read-only view of a cache folder; shards are memory-mapped."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        index_path = self.folder / INDEX
        if not index_path.is_file():
            raise FileNotFoundError(f"no token cache at {self.folder} ({INDEX} is missing)")
        self.index = json.loads(index_path.read_text())
        self.items: list[dict[str, Any]] = self.index["items"]
        if not self.items:
            raise ValueError(f"token cache {self.folder} holds no items")
        num_shards = max(it["shard"] for it in self.items) + 1
        self.shards = [np.load(self.folder / f"shard_{s:05d}.npy", mmap_mode="r") for s in range(num_shards)]
        self.num_codebooks = int(self.index["num_codebooks"])
        self.card = int(self.index["card"])
        self.frame_rate = float(self.index["frame_rate"])

    def __len__(self) -> int:
        return len(self.items)

    def codes(self, i: int) -> np.ndarray:
        """All codes ``[K, F]`` of item ``i`` (a view into the memory map)."""
        it = self.items[i]
        return self.shards[it["shard"]][:, it["start"]: it["start"] + it["frames"]]

    def min_frames(self) -> int:
        return min(it["frames"] for it in self.items)

    def crop(self, i: int, frames: int, offset: int) -> np.ndarray:
        codes = self.codes(i)
        if offset < 0 or offset + frames > codes.shape[-1]:
            raise ValueError(f"crop [{offset}, {offset + frames}) is outside item {i} "
                             f"({codes.shape[-1]} frames)")
        return np.asarray(codes[:, offset: offset + frames])

    def sample_batch(self, batch_size: int, frames: int, rng: np.random.Generator
                     ) -> tuple[torch.Tensor, list[str], list[dict[str, Any]]]:
        """``(codes [B, K, frames] long, descriptions, metadata)`` for random items and offsets."""
        if frames > self.min_frames():
            raise ValueError(f"crops of {frames} frames do not fit the shortest item of {self.folder} "
                             f"({self.min_frames()} frames)")
        picks = rng.integers(0, len(self.items), size=batch_size)
        batch, texts, metas = [], [], []
        for i in picks:
            it = self.items[int(i)]
            offset = int(rng.integers(0, it["frames"] - frames + 1))
            batch.append(self.crop(int(i), frames, offset))
            texts.append(it["description"])
            metas.append(it["metadata"])
        return torch.from_numpy(np.stack(batch).astype(np.int64)), texts, metas
