"""Generator adapters: our MusicGen, other systems and controls.

``BUILTIN_GENERATORS`` maps registry names to lazy ``"module:Class"`` strings (see ``bench.registry``).
"""

BUILTIN_GENERATORS: dict[str, str] = {}
