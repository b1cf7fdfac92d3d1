"""The fields of an audiocraft ``xp.cfg`` that change generation, read from the checkpoint.

audiocraft builds its inference model from the training config stored in ``state_dict.bin``, so a
fine-tune trained on other segments or with other settings generates differently; these are the
fields its generation reads (audiocraft 1.3.0: ``models/builders.py``, ``models/genmodel.py``,
``models/lm.py``, ``modules/conditioners.py``):

- ``dataset.segment_duration`` (s): ``MusicGen.max_duration`` (one generation window; longer requests
  are extended window by window) and the chroma conditioner's ``duration``, whose chroma length
  (frames of that many seconds of audio) the melody prefix is tiled or cut to;
- ``classifier_free_guidance.inference_coef``: the LM's ``cfg_coef``, which ``LMModel`` uses instead
  of ``set_generation_params(cfg_coef=...)`` when ``two_step_cfg=True``;
- ``conditioners.self_wav.chroma_stem``: ``sample_rate``, ``n_chroma``, ``radix2_exp`` (window
  ``2**radix2_exp``, hop a quarter of it), ``argmax``. Its ``match_len_on_eval`` is not read:
  ``MusicGen.get_pretrained`` sets it to true (and masking off) for every melody checkpoint, so the
  chroma is always tiled or cut to the segment's frames;
- ``codebooks_pattern``: the interleaving (``delay`` with delays ``0..K-1``, or the stereo delays).

Values this implementation does not reproduce are refused with the field named, never ignored.
A missing field takes the released models' value (30 s, 3.0, 32 kHz, 12 bins, 2**14, argmax, tiled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RELEASED_SEGMENT_S = 30.0
RELEASED_CFG_COEF = 3.0


@dataclass(frozen=True)
class AudiocraftSettings:
    """What generation takes from ``xp.cfg`` (see the module docstring)."""

    segment_duration_s: float = RELEASED_SEGMENT_S
    cfg_coef: float = RELEASED_CFG_COEF
    chroma_sample_rate: int = 32000
    chroma_n_fft: int = 2 ** 14


def _get(cfg: dict[str, Any], dotted: str, default: Any) -> Any:
    """``cfg[a][b]...`` with OmegaConf ``${...}`` references resolved (``xp.cfg`` is saved unresolved)."""
    from musicgen.checkpoints.codec_audiocraft import resolve_interpolations

    node: Any = cfg
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node or node[key] is None:
            return default
        node = node[key]
    return resolve_interpolations(node, root=cfg)


def _number(cfg: dict[str, Any], dotted: str, default: float, source: str) -> float:
    value = _get(cfg, dotted, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{source}: xp.cfg {dotted} is {value!r}; expected a positive number")
    return float(value)


def audiocraft_settings(cfg: dict[str, Any] | None, num_codebooks: int, melody: bool,
                        source: str = "xp.cfg") -> AudiocraftSettings:
    """The generation settings of an audiocraft checkpoint from its parsed ``xp.cfg`` (``{}`` when the
    file has none: the released values). ``num_codebooks``: the LM's K, to check the pattern."""
    cfg = cfg or {}
    segment = _number(cfg, "dataset.segment_duration", RELEASED_SEGMENT_S, source)
    coef = float(_get(cfg, "classifier_free_guidance.inference_coef", RELEASED_CFG_COEF))
    _check_pattern(cfg, num_codebooks, source)
    unsupported = []
    if _get(cfg, "conditioners.description.t5.normalize_text", False):
        unsupported.append("conditioners.description.t5.normalize_text: true (spacy text normalisation)")
    sample_rate, n_fft = 32000, 2 ** 14
    if melody:
        stem = _get(cfg, "conditioners.self_wav.chroma_stem", {}) or {}
        sample_rate = int(stem.get("sample_rate", 32000) or 32000)
        n_fft = 2 ** int(stem.get("radix2_exp", 14))
        if int(stem.get("n_chroma", 12)) != 12:
            unsupported.append(f"conditioners.self_wav.chroma_stem.n_chroma: {stem.get('n_chroma')} "
                               f"(12 only)")
        if not stem.get("argmax", True):
            unsupported.append("conditioners.self_wav.chroma_stem.argmax: false (one-hot chroma only)")
    if unsupported:
        raise NotImplementedError(f"{source}: xp.cfg settings not supported: {'; '.join(unsupported)}")
    return AudiocraftSettings(segment, coef, sample_rate, n_fft)


def _check_pattern(cfg: dict[str, Any], k: int, source: str) -> None:
    modeling = _get(cfg, "codebooks_pattern.modeling", "delay")
    delays = _get(cfg, "codebooks_pattern.delay.delays", None)
    expected = [list(range(k)), [i // 2 for i in range(k)]]  # mono delay, stereo delay (L/R pairs)
    if modeling != "delay" or (delays is not None and list(delays) not in expected):
        raise NotImplementedError(f"{source}: xp.cfg codebooks_pattern {modeling!r} with delays {delays} is "
                                  f"not supported (delay 0..{k - 1}, or the stereo pairs)")
    flatten = _get(cfg, "codebooks_pattern.delay.flatten_first", 0)
    initial = _get(cfg, "codebooks_pattern.delay.empty_initial", 0)
    if flatten or initial:
        raise NotImplementedError(f"{source}: xp.cfg codebooks_pattern.delay flatten_first={flatten}, "
                                  f"empty_initial={initial} are not supported (0, 0)")
