"""Runs one reference package inside its own venv and serves embedding requests from the benchmark.

    <venv>/bin/python benchmarks/reference_runner.py --backend passt --weights W.pt --threads 1

Started by ``benchmarks/reference_client.py``; imports nothing of this project (it runs with the
reference venv's packages: torch, numpy and the reference). Protocol, one JSON object per line:
- the runner loads the reference and the weights file, then writes ``{"ready": true, "load_s",
  "versions"}`` (or ``{"ready": false, "error"}`` and exits 1);
- ``{"cmd": "embed", "input": "clips.npy", "output": "out.npy"}``: ``clips.npy`` holds float32
  ``[N, T]`` mono clips at the reference's rate; the runner embeds them all with one call of the
  reference API, saves float32 ``[N, D]`` to ``out.npy`` and answers ``{"ok": true, "seconds",
  "shape"}``, ``seconds`` being the wall time of that call alone (file I/O excluded);
- ``{"cmd": "quit"}``: answers ``{"ok": true}`` and exits. A failed request answers
  ``{"ok": false, "error"}`` and the runner keeps serving.
The protocol goes through a private copy of stdout; the process's own stdout is pointed at stderr
first, so whatever the references print (hear21passt prints its whole network) never mixes in.

Backends (the reference's published entry points; only what would reach the network is replaced):
- ``passt``: ``hear21passt.base20sec.get_basic_model(mode="logits")`` (its ``AugmentMelSTFT`` in
  eval mode + ``passt_20sec``) built with ``pretrained=False`` instead of downloading the released
  weights, then ``net.load_state_dict`` of the weights file (a plain PaSST state dict, the layout of
  passt-s-f128-20sec-p16-s10-ap.474-swa.pt, strict); ``get_scene_embeddings`` on the batch
  (logits ``[N, 527]``; one forward per batch up to 20 s clips).
- ``clap``: ``laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-base")`` with
  ``RobertaModel.from_pretrained("roberta-base")`` answered by a RoBERTa-base-sized model built
  from its config (its weights come from the file) and the tokenizers it loads at import (text
  only) skipped: see ``_offline_hub``;
  the weights file is the laion checkpoint layout (``{"state_dict": {"module.…": …}}``) read with
  ``weights_only=True``; keys the reference computes itself (STFT/mel kernels, attention masks,
  position indices) or uses only in training may be absent, any other missing or unexpected key is
  an error. ``get_audio_embedding_from_data(x, use_tensor=True)``: no int16 quantisation, so both
  sides see the same samples; output L2-normalised ``[N, 512]``.
- ``echo``: numpy only, per-clip ``[mean, std, min, max]``: a protocol self-test, not a reference.
``--check`` only imports the backend's reference the way a run does (offline) and answers
``{"ready": true}``: the venv builder's last step.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from typing import IO

import numpy as np

Embed = Callable[[np.ndarray], np.ndarray]


def _versions(*names: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = "not installed"
    return out


def load_echo(weights: str | None) -> tuple[Embed, dict]:
    def embed(x: np.ndarray) -> np.ndarray:
        return np.stack([x.mean(1), x.std(1), x.min(1), x.max(1)], axis=1).astype(np.float32)

    return embed, _versions("numpy")


def import_passt():
    from hear21passt import base20sec

    return base20sec


def load_passt(weights: str) -> tuple[Embed, dict]:
    import functools

    import torch

    base20sec = import_passt()
    base20sec.get_model_passt = functools.partial(base20sec.get_model_passt, pretrained=False)
    model = base20sec.get_basic_model(mode="logits")
    model.net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()

    def embed(x: np.ndarray) -> np.ndarray:
        return base20sec.get_scene_embeddings(torch.from_numpy(x), model).float().numpy()

    return embed, _versions("hear21passt", "torch", "torchaudio", "timm", "numpy")


#: keys a laion CLAP model holds that the file may lack: computed by the model, or training-only
CLAP_MAY_BE_ABSENT = re.compile(r"(spectrogram_extractor|logmel_extractor|attn_mask|relative_position_index|"
                                r"position_ids|token_type_ids|tscam_conv|audio_branch\.head\.|_transform\.)")


def _offline_hub() -> None:
    """laion_clap reaches the hub twice: ``training/data.py`` loads the BERT, RoBERTa and BART
    tokenizers at import (text only: skipped here), and the text tower is built with
    ``RobertaModel.from_pretrained("roberta-base")``, answered with the same architecture from its
    config (its weights then come from the file)."""
    import transformers

    for name in ("BertTokenizer", "RobertaTokenizer", "BartTokenizer"):
        getattr(transformers, name).from_pretrained = classmethod(lambda cls, *a, **k: None)
    config = transformers.RobertaConfig(vocab_size=50265, hidden_size=768, num_hidden_layers=12,
                                        num_attention_heads=12, intermediate_size=3072,
                                        max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                                        pad_token_id=1, bos_token_id=0, eos_token_id=2)

    def model(cls, name, *args, **kwargs):
        if name != "roberta-base":
            raise RuntimeError(f"reference runner: offline, cannot fetch {name!r}")
        return cls(config)

    transformers.RobertaModel.from_pretrained = classmethod(model)


def import_clap():
    _offline_hub()
    import laion_clap

    return laion_clap


def load_clap(weights: str) -> tuple[Embed, dict]:
    import torch

    laion_clap = import_clap()
    module = laion_clap.CLAP_Module(enable_fusion=False, amodel="HTSAT-base", device="cpu")
    ckpt = torch.load(weights, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in ckpt.get("state_dict", ckpt).items()}
    missing, unexpected = module.model.load_state_dict(state, strict=False)
    bad = [k for k in missing if not CLAP_MAY_BE_ABSENT.search(k)]
    if bad or unexpected:
        raise ValueError(f"{weights}: not the laion_clap HTSAT-base layout: missing {bad[:6]} ({len(bad)}), "
                         f"unexpected {list(unexpected)[:6]} ({len(unexpected)})")
    module.eval()

    def embed(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module.get_audio_embedding_from_data(torch.from_numpy(x), use_tensor=True).float().numpy()

    return embed, _versions("laion_clap", "torch", "torchvision", "transformers", "numpy")


BACKENDS: dict[str, Callable[[str], tuple[Embed, dict]]] = {
    "echo": load_echo, "passt": load_passt, "clap": load_clap}
#: what ``--check`` imports (a venv's post-install check): the reference, offline
IMPORTS: dict[str, Callable[[], object]] = {"echo": lambda: np, "passt": import_passt, "clap": import_clap}


def _send(out: IO[str], msg: dict) -> None:
    out.write(json.dumps(msg) + "\n")
    out.flush()


def _error(e: BaseException) -> str:
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    at = f" (at {os.path.basename(where.filename)}:{where.lineno})" if where else ""
    return f"{type(e).__name__}: {e}{at}"


def serve(embed: Embed, requests: IO[str], replies: IO[str]) -> None:
    """Answer requests (one JSON line each) until ``quit`` or end of input."""
    for line in requests:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            cmd = msg.get("cmd")
            if cmd == "quit":
                _send(replies, {"ok": True})
                return
            if cmd != "embed":
                raise ValueError(f"unknown command {cmd!r}; expected 'embed' or 'quit'")
            x = np.load(msg["input"])
            if x.ndim != 2 or x.dtype != np.float32:
                raise ValueError(
                    f"{msg['input']}: expected float32 [N, T] clips, got {x.dtype} {list(x.shape)}")
            t = time.perf_counter()
            y = np.asarray(embed(x), dtype=np.float32)
            seconds = time.perf_counter() - t
            np.save(msg["output"], y)
            _send(replies, {"ok": True, "seconds": seconds, "shape": list(y.shape)})
        except Exception as e:  # noqa: BLE001 - every failure goes back to the parent as one line
            _send(replies, {"ok": False, "error": _error(e)})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", required=True, choices=sorted(BACKENDS))
    ap.add_argument("--weights", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--check", action="store_true", help="import the reference (offline) and exit")
    args = ap.parse_args(argv)
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the references' prints go to stderr
    t = time.perf_counter()
    try:
        if args.backend != "echo":
            import torch

            torch.set_num_threads(args.threads)
        if args.check:
            IMPORTS[args.backend]()
            _send(replies, {"ready": True, "checked": args.backend})
            return 0
        embed, versions = BACKENDS[args.backend](args.weights)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        _send(replies, {"ready": False, "error": _error(e)})
        return 1
    _send(replies, {"ready": True, "load_s": time.perf_counter() - t, "versions": versions,
                    "python": sys.version.split()[0]})
    serve(embed, sys.stdin, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
