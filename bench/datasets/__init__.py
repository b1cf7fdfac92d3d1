"""Dataset plug-ins. ``BUILTIN_DATASETS`` maps registry names to lazy ``"module:Class"`` strings."""

BUILTIN_DATASETS: dict[str, str] = {
    "audio-folder": "bench.datasets.audio_folder:AudioFolder",
    "clip-folder": "bench.datasets.clip_folder:ClipFolder",
    "musiccaps": "bench.datasets.musiccaps:MusicCaps",
    "synthcaps": "bench.datasets.synthcaps:SynthCaps",
}
