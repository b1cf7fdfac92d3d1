"""Pure metric functions (no state, no I/O): Frechet and kernel audio distances, bootstrap, KL,
cosine scores, chroma, memorization, rank correlations and per-clip audio checks."""

from bench.metrics.functional.audio_checks import audio_flags
from bench.metrics.functional.bootstrap import bootstrap_ci, percentile_interval, poisson_weights
from bench.metrics.functional.divergence import clip_label_distribution, kl_all_directions, kl_divergence
from bench.metrics.functional.frechet import (
    fad_inf_fit,
    fad_inf_from_embeddings,
    frechet_details,
    frechet_distance,
    gaussian_fit,
    gaussian_from_sums,
    gaussian_sums,
    per_sample_fad,
)
from bench.metrics.functional.kernel import kernel_audio_distance, median_pair_distance
from bench.metrics.functional.memorization import (
    nearest_neighbour_rate,
    token_match_fraction,
    token_match_rates,
)
from bench.metrics.functional.rank_correlation import kendall_rows, spearman_rows
from bench.metrics.functional.similarity import (
    chroma_cosine_similarity,
    chroma_cosine_sums,
    chromagram,
    clap_score,
    cosine_similarity,
)

__all__ = [
    "audio_flags", "bootstrap_ci", "chroma_cosine_similarity", "chroma_cosine_sums", "chromagram",
    "clap_score", "clip_label_distribution", "cosine_similarity", "fad_inf_fit", "fad_inf_from_embeddings",
    "frechet_details", "frechet_distance", "gaussian_fit", "gaussian_from_sums", "gaussian_sums",
    "kendall_rows", "kernel_audio_distance", "kl_all_directions", "kl_divergence", "median_pair_distance",
    "nearest_neighbour_rate", "per_sample_fad", "percentile_interval", "poisson_weights",
    "spearman_rows", "token_match_fraction", "token_match_rates",
]
