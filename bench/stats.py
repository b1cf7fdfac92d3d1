"""Reference statistics files: ``bench stats REF_DIR --embedder NAME -o ref.npz`` and their reader.

A statistics file is a numpy ``.npz`` (read with ``allow_pickle=False``) holding, per embedder NAME,
the float64 sufficient statistics of the reference clips' frame embeddings, which is all FAD needs:

- ``NAME.n`` (frames), ``NAME.sum`` ``[D]``, ``NAME.outer`` ``[D, D]`` (sum of ``x x^T``): they merge by
  addition and give exactly the Gaussian the runner fits from the same clips;
- ``NAME.mu`` ``[D]`` and ``NAME.cov`` ``[D, D]`` (unbiased): the same fit, under the key names fadtk
  uses for its statistics files;
- with ``--embeddings``: ``NAME.clip_ids`` ``[N]``, ``NAME.offsets`` ``[N + 1]`` (int64) and
  ``NAME.embeddings`` ``[F, D]``, the frames of every clip (for per-clip and kernel metrics);
- ``format`` (``FORMAT``) and ``meta``, a JSON string: the embedder's protocol (backbone, version,
  sample rate, checkpoint digest, window) and params, the number of clips, and how the audio was
  prepared (``preprocessing``: crop to ``duration_s``, loudness normalisation, channel downmix, resampling),
  which is the runner's treatment of reference audio (``bench.runner``), so that
  ``fad: {reference_stats: ref.npz}`` equals scoring against the folder the file was made from.

``read_stats`` checks everything it reads (keys, dtypes, shapes, finiteness, that ``mu`` and ``cov``
match the sums) and raises ``StatsError`` with one line naming the file for anything else, whatever
the bytes. ``check_protocol`` refuses statistics made with another embedder protocol and shows both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.embed import DEFAULT_EMBED_BATCH

FORMAT = "musicgen-bench-reference-stats/1"
#: relative tolerance of the check that ``mu``/``cov`` in a file match its sums
CONSISTENCY_RTOL = 1e-6


class StatsError(ValueError):
    """A statistics file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class EmbedderStats:
    """Sufficient statistics of one embedder's reference frames (float64)."""

    name: str
    protocol: dict[str, Any]
    n: float
    total: np.ndarray  # [D]
    outer: np.ndarray  # [D, D]
    n_clips: int
    clip_ids: tuple[str, ...] | None = None
    offsets: np.ndarray | None = None  # [N + 1]
    embeddings: np.ndarray | None = None  # [F, D]

    def frames_of(self, clip_id: str) -> np.ndarray:
        """The stored frame embeddings ``[F, D]`` of one reference clip (files made with
        ``--embeddings``); raises ``StatsError`` when there are none or the id is unknown."""
        if self.embeddings is None or self.clip_ids is None or self.offsets is None:
            raise StatsError(f"the {self.name!r} statistics hold no per-clip embeddings (make the file "
                             f"with bench stats --embeddings)")
        if not hasattr(self, "_index"):
            object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.clip_ids)})
        i = self._index.get(clip_id)  # type: ignore[attr-defined]
        if i is None:
            raise StatsError(f"the {self.name!r} statistics have no reference clip {clip_id!r}")
        return self.embeddings[self.offsets[i]:self.offsets[i + 1]]

    def gaussian(self) -> tuple[np.ndarray, np.ndarray]:
        from bench.metrics.functional.frechet import gaussian_from_sums

        return gaussian_from_sums(self.n, self.total, self.outer)


@dataclass(frozen=True)
class ReferenceStats:
    path: Path
    meta: dict[str, Any]
    embedders: dict[str, EmbedderStats]

    def get(self, name: str) -> EmbedderStats:
        if name not in self.embedders:
            raise StatsError(f"statistics file {str(self.path)!r} has no statistics for embedder {name!r} "
                             f"(it has: {', '.join(sorted(self.embedders)) or 'none'})")
        return self.embedders[name]


def write_stats(path: str | Path, meta: Mapping[str, Any], embedders: Mapping[str, EmbedderStats]) -> Path:
    """Write a statistics file atomically (float64 sums, mean and covariance per embedder)."""
    import io

    from bench.files import atomic_write_bytes

    arrays: dict[str, np.ndarray] = {"format": np.array(FORMAT)}
    info = {}
    for name, st in embedders.items():
        mu, cov = st.gaussian()
        arrays |= {f"{name}.n": np.float64(st.n), f"{name}.sum": st.total.astype(np.float64),
                   f"{name}.outer": st.outer.astype(np.float64), f"{name}.mu": mu, f"{name}.cov": cov}
        if st.embeddings is not None and st.clip_ids is not None and st.offsets is not None:
            arrays |= {f"{name}.clip_ids": np.array(st.clip_ids, dtype=str),
                       f"{name}.offsets": st.offsets.astype(np.int64),
                       f"{name}.embeddings": st.embeddings.astype(np.float64)}
        info[name] = {"protocol": st.protocol, "n_clips": st.n_clips}
    arrays["meta"] = np.array(json.dumps({**meta, "embedders": info}, sort_keys=True, default=str))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _array(z: Any, key: str, where: str, ndim: int, kind: str = "f") -> np.ndarray:
    if key not in z.files:
        raise StatsError(f"{where}: missing array {key!r}")
    a = z[key]
    if not isinstance(a, np.ndarray) or a.ndim != ndim or a.dtype.kind not in kind:
        raise StatsError(f"{where}: {key!r} must be a {ndim}-d array of kind {kind!r}; got "
                         f"{getattr(a, 'dtype', type(a))} {getattr(a, 'shape', '')}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise StatsError(f"{where}: {key!r} holds NaN or inf")
    return a


def _embedder(z: Any, name: str, info: Any, where: str) -> EmbedderStats:
    if not isinstance(info, dict) or not isinstance(info.get("protocol"), dict):
        raise StatsError(f"{where}: meta of embedder {name!r} has no protocol")
    n_clips = info.get("n_clips")
    if not isinstance(n_clips, int) or isinstance(n_clips, bool) or n_clips < 1:
        raise StatsError(f"{where}: embedder {name!r}: n_clips must be a positive integer")
    n = float(_array(z, f"{name}.n", where, 0))
    total = _array(z, f"{name}.sum", where, 1).astype(np.float64)
    outer = _array(z, f"{name}.outer", where, 2).astype(np.float64)
    d = total.shape[0]
    if d < 1 or outer.shape != (d, d) or n < 2 or n != int(n):
        raise StatsError(f"{where}: embedder {name!r}: need n >= 2 frames, sum [D] and outer [D, D]; got "
                         f"n={n}, {total.shape}, {outer.shape}")
    st = EmbedderStats(name, info["protocol"], n, total, outer, n_clips)
    mu, cov = st.gaussian()
    for key, mine in ((f"{name}.mu", mu), (f"{name}.cov", cov)):
        theirs = _array(z, key, where, mine.ndim)
        if theirs.shape != mine.shape or not np.allclose(theirs, mine, rtol=CONSISTENCY_RTOL,
                                                         atol=CONSISTENCY_RTOL * (1 + np.abs(mine).max())):
            raise StatsError(f"{where}: {key!r} does not match the sums it should be computed from")
    if f"{name}.embeddings" not in z.files:
        return st
    ids = _array(z, f"{name}.clip_ids", where, 1, "U")
    offsets = _array(z, f"{name}.offsets", where, 1, "iu").astype(np.int64)
    emb = _array(z, f"{name}.embeddings", where, 2).astype(np.float64)
    if (len(ids) != n_clips or len(offsets) != n_clips + 1 or offsets[0] != 0 or offsets[-1] != len(emb)
            or np.any(np.diff(offsets) < 1) or emb.shape[1] != d or len(emb) != n):
        raise StatsError(f"{where}: embedder {name!r}: clip_ids, offsets and embeddings do not agree "
                         f"with each other or with the sums")
    if len(set(ids.tolist())) != len(ids):
        raise StatsError(f"{where}: embedder {name!r}: duplicate clip ids")
    return EmbedderStats(name, info["protocol"], n, total, outer, n_clips, tuple(ids.tolist()), offsets, emb)


def read_stats(path: str | Path) -> ReferenceStats:
    """A statistics file, fully checked. Raises ``StatsError`` (one line) for anything unusable."""
    path = Path(path)
    where = f"statistics file {str(path)!r}"
    if not path.is_file():
        raise StatsError(f"{where} does not exist (make it with: bench stats REF_DIR --embedder NAME -o "
                         f"{path.name})")
    try:
        with np.load(path, allow_pickle=False) as z:
            fmt = _array(z, "format", where, 0, "U")
            if str(fmt) != FORMAT:
                raise StatsError(f"{where}: format {str(fmt)[:80]!r}, expected {FORMAT!r}")
            meta = json.loads(str(_array(z, "meta", where, 0, "U")))
            listed = meta.get("embedders") if isinstance(meta, dict) else None
            if not isinstance(listed, dict) or not listed:
                raise StatsError(f"{where}: meta lists no embedders")
            embedders = {str(name): _embedder(z, str(name), info, where)
                         for name, info in meta["embedders"].items()}
    except StatsError:
        raise
    except Exception as e:  # any damage to the zip, the arrays or the JSON: one line, no traceback
        raise StatsError(f"{where} is not a readable bench statistics file ({type(e).__name__}: "
                         f"{str(e)[:200]})".replace("\n", " ")) from None
    return ReferenceStats(path, meta, embedders)


def stats_problems(path: Path, name: str, need_embeddings: bool = False) -> list[str]:
    """What makes ``path`` unusable for embedder ``name`` (a metric's ``check()``), one line each."""
    try:
        st = read_stats(path).get(name)
    except StatsError as e:
        return [str(e)]
    if need_embeddings and st.embeddings is None:
        return [f"statistics file {str(path)!r} holds no per-clip {name!r} embeddings, which a paired "
                f"metric needs (make it with bench stats --embeddings)"]
    return []


def bind_reference_stats(path: Path, name: str, protocol: Mapping[str, Any]) -> EmbedderStats:
    """The statistics of embedder ``name`` in ``path``, refused (``StatsError``) when they were made
    with another protocol than ``protocol`` (the embedder in use)."""
    stats = read_stats(path).get(name)
    check_protocol(stats, protocol, path)
    return stats


def check_protocol(stats: EmbedderStats, protocol: Mapping[str, Any], path: Path | str) -> None:
    """Raise ``StatsError`` when the embedder in use (``protocol``, ``Embedder.protocol()``) differs
    from the one the statistics were made with (backbone, version, rate, checkpoint digest, window,
    ...), showing the keys that differ and both protocols."""
    mine = json.loads(json.dumps(dict(protocol), sort_keys=True, default=str))  # as stored in a file
    theirs = dict(stats.protocol)
    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if differ:
        diffs = "; ".join(f"{k}: file {theirs.get(k)!r} vs in use {mine.get(k)!r}" for k in differ)
        raise StatsError(f"statistics file {str(path)!r} was made with another {stats.name!r} protocol "
                         f"({diffs}). File protocol: {json.dumps(theirs, sort_keys=True, default=str)}; "
                         f"in use: {json.dumps(mine, sort_keys=True, default=str)}")


def embedder_params(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``["vggish.weights=w.pth", ...]`` -> ``{"vggish": {"weights": "w.pth"}}`` (values parsed as
    YAML scalars, so numbers and booleans keep their type)."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        name_key, sep, value = pair.partition("=")
        name, dot, key = name_key.partition(".")
        if not sep or not dot or not name or not key:
            raise ValueError(f"--embedder-param {pair!r}: expected NAME.KEY=VALUE "
                             f"(e.g. vggish.weights=w.pth)")
        out.setdefault(name, {})[key] = yaml.safe_load(value) if value else ""
    return out


def make_embedder(name: str, raw: Mapping[str, Any]) -> Any:
    """A loaded embedder from the registry (``check()`` problems raise ``StatsError``)."""
    from bench.registry import EMBEDDERS
    from bench.suite import validate_params

    cls = EMBEDDERS.get(name)
    emb = cls(validate_params(cls, raw, Path.cwd()))
    missing = emb.check()
    if missing:
        raise StatsError(f"embedder {name!r}: " + "; ".join(missing))
    emb.load("cpu")
    return emb


def compute_stats(folder: Path, embedders: Mapping[str, Any], params: Mapping[str, Mapping[str, Any]],
                  duration_s: float | None, keep_embeddings: bool, manifest: Path | None = None,
                  progress: bool = False,
                  batch_size: int = DEFAULT_EMBED_BATCH) -> tuple[dict[str, Any], dict[str, EmbedderStats]]:
    """Statistics of every clip of ``folder`` (``bench.clipfiles.scan``) as the runner prepares
    reference audio: read, cut to ``duration_s`` (when given), channels averaged, resampled (julius)
    to each embedder's rate, embedded ``batch_size`` clips per backbone call (``embed_each``: a
    failing batch is redone clip by clip, and the clip that fails is named).
    Returns ``(meta, {name: EmbedderStats})``."""
    from tqdm import tqdm

    from bench.audio import crop, read_audio, resample, to_mono
    from bench.clipfiles import scan
    from bench.embedders.common import embed_each
    from bench.metrics.functional.frechet import gaussian_sums

    entries = scan(folder, manifest)
    sums: dict[str, list[Any]] = {n: [0.0, 0.0, 0.0, [], [0]] for n in embedders}
    bar = tqdm(total=len(entries), desc="stats", unit="clip", disable=not progress)
    for start in range(0, len(entries), batch_size):
        chunk = entries[start:start + batch_size]
        wavs = []
        for e in chunk:
            wav, sr = read_audio(e.path)
            if duration_s is not None:
                wav = crop(wav, round(duration_s * sr))
            if wav.shape[-1] == 0 or not np.all(np.isfinite(wav)):
                raise StatsError(f"clip {str(e.path)!r} is empty or holds NaN/inf samples")
            wavs.append((to_mono(wav), sr))
        for name, emb in embedders.items():
            resampled = [resample(w, sr, emb.sample_rate) for w, sr in wavs]
            for e, feats in zip(chunk, embed_each(emb, resampled)):
                if isinstance(feats, Exception):
                    raise StatsError(f"embedder {name!r} failed on {str(e.path)!r}: "
                                     f"{type(feats).__name__}: {feats}") from feats
                feats = np.asarray(feats)
                if feats.ndim != 2 or len(feats) == 0 or not np.all(np.isfinite(feats)):
                    raise StatsError(f"embedder {name!r} returned shape {feats.shape} or NaN/inf for "
                                     f"{str(e.path)!r}")
                n, total, outer = gaussian_sums(feats)
                acc = sums[name]
                acc[0], acc[1], acc[2] = acc[0] + n, acc[1] + total, acc[2] + outer
                if keep_embeddings:
                    acc[3].append(feats.astype(np.float64))
                    acc[4].append(acc[4][-1] + len(feats))
        bar.update(len(chunk))
    bar.close()
    ids = tuple(e.prompt_id if e.seed == 0 else f"{e.prompt_id}#s{e.seed}" for e in entries)
    out = {}
    for name, emb in embedders.items():
        n, total, outer, frames, offsets = sums[name]
        proto = json.loads(json.dumps(emb.protocol(), sort_keys=True, default=str))
        out[name] = EmbedderStats(
            name, {**proto}, n, np.asarray(total, np.float64), np.asarray(outer, np.float64), len(entries),
            ids if keep_embeddings else None, np.asarray(offsets, np.int64) if keep_embeddings else None,
            np.concatenate(frames) if keep_embeddings else None)
    meta = {"source": str(folder), "n_clips": len(entries),
            "params": {n: dict(params.get(n, {})) for n in embedders},
            "preprocessing": {"duration_s": duration_s, "crop": "first duration_s seconds" if duration_s
                              else "whole clip", "loudness": "not normalised (as the runner's reference "
                              "audio with normalize_reference: false)",
                              "channels": "mean of channels", "resampling": "julius resample_frac"}}
    return meta, out


def stats_command(args: list[str]) -> int:
    """``bench stats REF_DIR --embedder NAME [--embedder NAME2] -o ref.npz [--duration-s S]
    [--embeddings] [--embedder-param NAME.KEY=VALUE]``."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="bench stats", description="Reference statistics of a folder of "
                                 "clips (float64 sums, mean, covariance per embedder) for --reference.")
    ap.add_argument("ref_dir", type=Path)
    ap.add_argument("--embedder", action="append", required=True, help="registry name; repeatable")
    ap.add_argument("-o", "--out", type=Path, required=True, help="statistics file to write (.npz)")
    ap.add_argument("--duration-s", type=float, default=None,
                    help="cut each clip to its first S seconds (as a suite's duration_s); default whole")
    ap.add_argument("--embeddings", action="store_true", help="also store every clip's frame embeddings")
    ap.add_argument("--manifest", type=Path, default=None,
                    help="CSV/JSONL naming the clips (file, prompt_id)")
    ap.add_argument("--embedder-param", action="append", default=[], metavar="NAME.KEY=VALUE")
    ap.add_argument("--no-progress", action="store_true")
    ns = ap.parse_args(args)
    from bench.clipfiles import ClipFilesError
    from bench.registry import RegistryError

    try:
        params = embedder_params(ns.embedder_param)
        embedders = {name: make_embedder(name, params.get(name, {})) for name in dict.fromkeys(ns.embedder)}
        meta, stats = compute_stats(ns.ref_dir, embedders, params, ns.duration_s, ns.embeddings,
                                    ns.manifest, progress=not ns.no_progress)
        write_stats(ns.out, meta, stats)
    except (StatsError, ClipFilesError, RegistryError, ValueError, FileNotFoundError) as e:
        print(f"bench stats: {e}", file=sys.stderr)
        return 1
    for name, st in stats.items():
        digest = str(st.protocol.get("checkpoint_digest"))[:12]
        print(f"{name}: {st.n_clips} clips, {int(st.n)} frames, dim {st.total.shape[0]} "
              f"(digest {digest}, {st.protocol.get('sample_rate')} Hz)")
    print(f"statistics: {ns.out}")
    return 0
