"""Metrics: pure functions in ``functional/`` plus stateful classes with float64 mergeable state.

``BUILTIN_METRICS`` maps registry names to lazy ``"module:Class"`` strings.
"""

BUILTIN_METRICS: dict[str, str] = {
    "fad": "bench.metrics.fad:FrechetAudioDistance",
    "kad": "bench.metrics.kad:KernelAudioDistance",
    "kl": "bench.metrics.kl:KLDivergence",
    "clap_score": "bench.metrics.clap_score:ClapScore",
    "chroma_cosine": "bench.metrics.chroma:ChromaCosineSimilarity",
    "memorization": "bench.metrics.memorization:Memorization",
}
