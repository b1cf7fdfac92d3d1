"""Numbers reported by the MusicGen paper and model card, kept as data for the report's context block.

These are *published* values, never measurements of this project: the report shows them in a separate,
labelled block and never in the measured columns. Sources:

- ``PAPER``: Copet et al. 2023, "Simple and Controllable Music Generation", arXiv:2306.05284 (v3),
  Tables 1, 4 and 5. Human ratings (OVL, REL) are kept as text with their ± intervals.
- ``MODEL_CARD``: audiocraft MODEL_CARD.md / docs (MusicCaps evaluation of the released checkpoints,
  trained on audio with vocals removed). KLD changed when padding was dropped (2023-08-09); both kept.

Each table is a ``PublishedTable``: a title, a source line, a note, column names and rows of strings
(exactly as printed; "–" where the paper gives no number).
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER = 'Copet et al. 2023, "Simple and Controllable Music Generation", arXiv:2306.05284 v3'
MODEL_CARD = "audiocraft MODEL_CARD.md (MusicGen released checkpoints, MusicCaps)"


@dataclass(frozen=True)
class PublishedTable:
    key: str
    title: str
    source: str
    note: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


TABLE1 = PublishedTable(
    key="table1", title="Table 1: text-to-music, MusicCaps test set", source=PAPER + ", Table 1",
    note="MusicLM and Noise2Music: FAD copied from their papers. Mousai was retrained on MusicGen's data.",
    columns=("model", "FAD_vgg", "KL", "CLAP score", "OVL", "REL"),
    rows=(
        ("Riffusion", "14.8", "2.06", "0.19", "79.31 ± 1.37", "74.20 ± 2.17"),
        ("Mousai", "7.5", "1.59", "0.23", "76.11 ± 1.56", "77.35 ± 1.72"),
        ("MusicLM", "4.0", "–", "–", "80.51 ± 1.07", "82.35 ± 1.36"),
        ("Noise2Music", "2.1", "–", "–", "–", "–"),
        ("MusicGen 300M, text only", "3.1", "1.28", "0.31", "78.43 ± 1.30", "81.11 ± 1.31"),
        ("MusicGen 1.5B, text only", "3.4", "1.23", "0.32", "80.74 ± 1.17", "83.70 ± 1.21"),
        ("MusicGen 3.3B, text only", "3.8", "1.22", "0.31", "84.81 ± 0.95", "82.47 ± 1.25"),
        ("MusicGen 1.5B, random melody", "5.0", "1.31", "0.28", "81.30 ± 1.29", "81.98 ± 1.79"),
    ),
)

TABLE4 = PublishedTable(
    key="table4", title="Table 4: codebook interleaving patterns (in-domain set, 30 s, 300M)",
    source=PAPER + ", Table 4",
    note="steps = autoregressive steps for 30 s at 50 Hz (T = 1500 frames, K = 4 codebooks).",
    columns=("pattern", "steps", "FAD_vgg", "KL", "CLAP score", "OVL", "REL"),
    rows=(
        ("delay", "1500", "0.96", "0.52", "0.35", "79.69 ± 1.46", "79.67 ± 1.41"),
        ("partial delay", "1500", "1.51", "0.54", "0.32", "79.13 ± 1.56", "79.67 ± 1.46"),
        ("parallel", "1500", "2.58", "0.62", "0.27", "72.21 ± 2.49", "80.30 ± 1.43"),
        ("partial flattening", "3000", "1.32", "0.54", "0.34", "78.56 ± 1.86", "79.18 ± 1.49"),
        ("coarse first", "3000", "1.98", "0.56", "0.30", "74.42 ± 2.28", "76.55 ± 1.67"),
        ("flattening", "6000", "0.86", "0.51", "0.37", "79.71 ± 1.58", "82.03 ± 1.1"),
    ),
)

TABLE5 = PublishedTable(
    key="table5", title="Table 5: model size (in-domain set)", source=PAPER + ", Table 5", note="",
    columns=("dim", "heads", "layers", "params", "PPL", "FAD_vgg", "KL", "CLAP score", "OVL", "REL"),
    rows=(
        ("1024", "16", "24", "300M", "56.1", "0.96", "0.52", "0.35", "78.3 ± 1.4", "82.5 ± 1.6"),
        ("1536", "24", "48", "1.5B", "48.4", "0.86", "0.50", "0.35", "81.9 ± 1.4", "82.9 ± 1.5"),
        ("2048", "32", "48", "3.3B", "46.1", "0.82", "0.50", "0.36", "79.2 ± 1.3", "83.5 ± 1.3"),
    ),
)

MODEL_CARD_TABLE = PublishedTable(
    key="model_card", title="Released checkpoints on MusicCaps (audiocraft model card)", source=MODEL_CARD,
    note=("The released models were trained on audio with vocals removed, hence the gap to Table 1. "
          "KLD changed when padding was dropped (2023-08-09); both values are shown. "
          "No scores were published for the stereo checkpoints."),
    columns=("checkpoint", "FAD", "KLD (current)", "KLD (v1.0 card)", "text consistency (CLAP)",
             "chroma cosine"),
    rows=(
        ("facebook/musicgen-small", "4.88", "1.42", "1.28", "0.27", "–"),
        ("facebook/musicgen-medium", "5.14", "1.38", "1.24", "0.28", "–"),
        ("facebook/musicgen-large", "5.48", "1.37", "1.22", "0.28", "–"),
        ("facebook/musicgen-melody", "4.93", "1.41", "1.26", "0.27", "0.44"),
    ),
)

PUBLISHED_TABLES: tuple[PublishedTable, ...] = (TABLE1, TABLE4, TABLE5, MODEL_CARD_TABLE)

#: Table 4's step counts per pattern (our registry names), for checking the report's steps column
TABLE4_STEPS: dict[str, int] = {row[0].replace(" ", "_"): int(row[1]) for row in TABLE4.rows}


@dataclass(frozen=True)
class PublishedValue:
    """A published number placed beside a measured one: ``text`` as printed, where it comes from."""

    text: str
    source: str


#: our metric name -> (model card column, embedder registry name the protocol must use)
_CARD_METRICS: dict[str, tuple[str, str]] = {
    "fad_vggish": ("FAD", "vggish"), "kl": ("KLD (current)", "passt"),
    "clap_score": ("text consistency (CLAP)", "clap"), "chroma_cosine": ("chroma cosine", "")}


def _dataset_name(protocol: dict) -> str:
    data = protocol.get("dataset")
    return str(data.get("dataset", data.get("name", ""))) if isinstance(data, dict) else ""


def published_value(metric: str, params: dict, protocol: dict) -> PublishedValue | None:
    """The model card's number for this measurement when the protocol matches the card's: MusicCaps,
    the same embedder (VGGish FAD, PaSST KL, CLAP score), a released checkpoint named by the
    generator's ``checkpoint`` or ``model`` parameter (``{size}`` and the like filled from the other
    parameters, as the musicgen generator does). None otherwise (never a number from another
    protocol)."""
    if metric not in _CARD_METRICS or _dataset_name(protocol) != "musiccaps":
        return None
    column, embedder = _CARD_METRICS[metric]
    embedders = protocol.get("embedders") or {}
    if embedder and (not isinstance(embedders, dict) or set(embedders) != {embedder}):
        return None
    checkpoint = str(params.get("checkpoint") or params.get("model") or "")
    try:  # a matrix suite names it as a template: "facebook/musicgen-{size}"
        checkpoint = checkpoint.format(**{k: v for k, v in params.items()
                                          if isinstance(v, str | int | float)})
    except (KeyError, IndexError, ValueError):
        pass
    col = MODEL_CARD_TABLE.columns.index(column)
    for row in MODEL_CARD_TABLE.rows:
        if row[0] == checkpoint and row[col] != "–":
            return PublishedValue(row[col], f"model card ({column})")
    return None
