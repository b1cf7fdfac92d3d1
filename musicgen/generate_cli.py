"""``musicgen generate "prompt" -o out.wav --model PATH --duration 8``: text -> a WAV file."""

from __future__ import annotations

import argparse
from pathlib import Path


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="musicgen generate", description="Generate music from text.")
    parser.add_argument("prompts", nargs="+", help="one or more text descriptions")
    parser.add_argument("-o", "--output", required=True,
                        help="output WAV path; with several prompts, files are numbered out_0.wav, ...")
    parser.add_argument("--model", required=True,
                        help="local checkpoint folder (ours, transformers or audiocraft) or a hub id in "
                             "the local Hugging Face cache")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-k", type=int, default=250)
    parser.add_argument("--top-p", type=float, default=0.0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--cfg-coef", type=float, default=3.0)
    parser.add_argument("--greedy", action="store_true", help="argmax decoding instead of sampling")
    parser.add_argument("--melody", help="a WAV file whose chromagram conditions a melody model")
    parser.add_argument("--device", default="cpu")
    ns = parser.parse_args(args)

    import sys

    try:
        return _run(ns)
    except (FileNotFoundError, ValueError, TypeError, NotImplementedError) as e:
        print(f"musicgen generate: error: {e}", file=sys.stderr)
        return 2


def _run(ns: argparse.Namespace) -> int:
    import soundfile as sf
    import torch

    from musicgen.models.musicgen import MusicGen

    model = MusicGen.from_pretrained(ns.model, device=ns.device)
    model.set_generation_params(duration_s=ns.duration, top_k=ns.top_k, top_p=ns.top_p,
                                temperature=ns.temperature, cfg_coef=ns.cfg_coef, use_sampling=not ns.greedy)
    if ns.melody:
        data, sr = sf.read(ns.melody, dtype="float32", always_2d=True)  # [T, C]
        wav = torch.from_numpy(data.T.copy())[None].expand(len(ns.prompts), -1, -1)
        audio = model.generate_with_chroma(ns.prompts, wav, int(sr), seed=ns.seed, progress=True)
    else:
        audio = model.generate(ns.prompts, seed=ns.seed, progress=True)
    out = Path(ns.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out] if len(ns.prompts) == 1 else [out.with_name(f"{out.stem}_{i}{out.suffix}")
                                                for i in range(len(ns.prompts))]
    for path, clip in zip(paths, audio):
        sf.write(str(path), clip.T.cpu().numpy(), model.sample_rate, subtype="FLOAT")
        print(f"wrote {path} ({clip.shape[-1] / model.sample_rate:.2f} s, {model.sample_rate} Hz, "
              f"{clip.shape[0]} channel(s))")
    return 0
