"""Dataset plug-ins. ``BUILTIN_DATASETS`` maps registry names to lazy ``"module:Class"`` strings."""

BUILTIN_DATASETS: dict[str, str] = {
    "audio-folder": "bench.datasets.audio_folder:AudioFolder",
    "musiccaps": "bench.datasets.musiccaps:MusicCaps",
    "synthcaps": "bench.datasets.synthcaps:SynthCaps",
}
