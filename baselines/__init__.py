"""Generator adapters: our MusicGen, other systems and controls.

``BUILTIN_GENERATORS`` maps registry names to lazy ``"module:Class"`` strings (see ``bench.registry``).
"""

BUILTIN_GENERATORS: dict[str, str] = {
    "reference": "baselines.controls:ReferenceGenerator",
    "noise": "baselines.controls:NoiseGenerator",
    "silence": "baselines.controls:SilenceGenerator",
    "retrieval": "baselines.retrieval:RetrievalGenerator",
    "musicgen": "baselines.musicgen:MusicGenGenerator",
    "hf-musicgen": "baselines.hf_musicgen:HFMusicGen",
    "riffusion": "baselines.riffusion:RiffusionGenerator",
    "mousai": "baselines.mousai:MousaiGenerator",
    "files": "baselines.files:FilesGenerator",
}
