"""Step 3 of ``bench run``: the audio the metrics see, and the per-sample row of each item.

Generated audio is normalised to ``generation.loudness_lufs`` (ITU-R BS.1770, pyloudnorm; silence
stays silent), reference audio is cut to ``duration_s`` (and normalised too when
``normalize_reference``), and both are trimmed to their common length when ``trim_to_reference``.
The row's flags (``silent``, ``peak_dbfs``, ``over_full_scale``) come from ``bench.run_flags``; audio
that cannot be read or measured (a damaged file, 6 channels) is one ``RunError`` line naming it. The
evaluated audio is written under ``RUN/audio/`` for the report (``audio/<label>/<prompt>__s<seed>.wav``,
references once under ``audio/_reference/``).
"""

from __future__ import annotations

from bench.api import AudioClip, Prompt
from bench.audio import crop, normalize_loudness, read_audio
from bench.plan import EvalItem, RunError, slug
from bench.run_flags import clip_flags
from bench.store import RunStore
from bench.suite import GenerationSpec


def reference_clip(prompt: Prompt, settings: GenerationSpec) -> AudioClip | None:
    """The prompt's reference audio as the metrics see it, or None when it has none. Read again per
    generator, so memory stays bounded."""
    if prompt.reference_path is None:
        return None
    try:
        wav, sr = read_audio(prompt.reference_path)
        wav = crop(wav, round(settings.duration_s * sr))
        if settings.normalize_reference and settings.loudness_lufs is not None:
            wav, _ = normalize_loudness(wav, sr, settings.loudness_lufs)
    except ValueError as e:
        raise RunError(f"reference audio of prompt {prompt.id!r} ({prompt.reference_path}): {e}") from None
    return AudioClip(wav, sr, prompt.id, -1, meta={"reference": True})


def prepare_item(store: RunStore, settings: GenerationSpec, label: str, item: EvalItem) -> None:
    """Fill ``item.clip``, ``item.reference`` and ``item.row`` (the per-sample table's row) from the
    cached clip, and write the evaluated audio."""
    clip = store.load_clip(item.key, item.prompt.id, item.seed)
    if clip is None:
        raise RunError(f"clip {item.key} for {label!r} / {item.prompt.id!r} vanished from the cache (or was "
                       "damaged since the plan checked it); run again to regenerate it")
    measured, generated = None, clip.wav
    if settings.loudness_lufs is not None:
        try:
            wav, measured = normalize_loudness(clip.wav, clip.sample_rate, settings.loudness_lufs)
        except ValueError as e:
            raise RunError(f"generator {label!r}, prompt {item.prompt.id!r} seed {item.seed}: {e}; "
                           "set generation.loudness_lufs: null to skip normalisation") from None
        clip = AudioClip(wav, clip.sample_rate, clip.prompt_id, clip.seed, clip.tokens, clip.meta)
    ref = reference_clip(item.prompt, settings)
    if ref is not None and settings.trim_to_reference:
        common_s = min(clip.duration_s, ref.duration_s)
        clip = AudioClip(crop(clip.wav, round(common_s * clip.sample_rate)), clip.sample_rate,
                         clip.prompt_id, clip.seed, clip.tokens, clip.meta)
        ref = AudioClip(crop(ref.wav, round(common_s * ref.sample_rate)), ref.sample_rate,
                        ref.prompt_id, ref.seed, meta=ref.meta)
    item.clip, item.reference = clip, ref
    audio = f"audio/{slug(label)}/{slug(item.prompt.id)}__s{item.seed}.wav"
    store.write_audio(audio, clip.wav, clip.sample_rate)
    ref_audio = None
    if ref is not None:
        ref_audio = f"audio/_reference/{slug(item.prompt.id)}.wav"
        if not store.path(ref_audio).is_file():
            store.write_audio(ref_audio, ref.wav, ref.sample_rate)
    item.row = {"generator": label, "prompt_id": item.prompt.id, "seed": item.seed,
                "text": item.prompt.text, "audio": audio, "reference_audio": ref_audio,
                "duration_s": round(clip.duration_s, 6), "sample_rate": clip.sample_rate,
                "loudness_lufs_before": None if measured is None else round(measured, 3),
                **clip_flags(generated, clip.wav), "cached": item.cached}
