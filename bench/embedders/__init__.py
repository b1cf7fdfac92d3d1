"""Embedding backbones (VGGish, PaSST, CLAP, EnCodec, synth evaluators).

``BUILTIN_EMBEDDERS`` maps registry names to lazy ``"module:Class"`` strings.
"""

BUILTIN_EMBEDDERS: dict[str, str] = {
    "vggish": "bench.embedders.vggish:VGGishEmbedder",
    "vggish-relu": "bench.embedders.vggish:VGGishReluEmbedder",
    "vggish-pca": "bench.embedders.vggish:VGGishPCAEmbedder",
    "passt": "bench.embedders.passt:PasstEmbedder",
    "clap": "bench.embedders.clap:ClapEmbedder",
    "encodec": "bench.embedders.encodec:EncodecEmbedder",
    "synth-tagger": "bench.embedders.synth:SynthTaggerEmbedder",
    "synth-tagger-logits": "bench.embedders.synth:SynthTaggerLogitsEmbedder",
    "synth-clap": "bench.embedders.synth:SynthClapEmbedder",
}
