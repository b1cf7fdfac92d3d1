"""The registry: every built-in imports, unknown names suggest close matches, plug-ins come in through
the API and through entry points, conflicts are errors."""

from __future__ import annotations

from importlib import metadata

import pytest

from bench import registry
from bench.api import Dataset, Embedder, Generator, Metric
from bench.cli import main
from bench.registry import (
    DATASETS,
    EMBEDDERS,
    GENERATORS,
    METRICS,
    REGISTRIES,
    Registry,
    RegistryError,
    UnknownPluginError,
)


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_every_registered_entry_imports(kind):
    reg = REGISTRIES[kind]
    for name in reg.names():
        cls = reg.get(name)
        assert issubclass(cls, reg.base), name
        assert hasattr(cls, "Params"), name


def test_builtins_are_listed():
    assert {"reference", "noise", "silence", "retrieval"} <= set(GENERATORS.names())
    assert {"audio-folder", "musiccaps", "synthcaps"} <= set(DATASETS.names())
    assert GENERATORS.base is Generator and DATASETS.base is Dataset
    assert METRICS.base is Metric and EMBEDDERS.base is Embedder


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownPluginError) as e:
        GENERATORS.get("nosie")
    assert "unknown generator 'nosie'" in str(e.value) and "did you mean 'noise'" in str(e.value)


def test_runtime_registration_and_refusal_to_shadow(plugins):
    assert METRICS.get("test-distance") is plugins.MeanDistance
    with pytest.raises(RegistryError, match="already registered"):
        GENERATORS.register("noise", plugins.SlowNoise)
    plugins.unregister()
    assert "test-distance" not in METRICS


def test_non_subclass_target_is_an_error():
    reg: Registry[Generator] = Registry("generator", Generator, {"bad": "bench.api:Prompt"}, "x.none")
    with pytest.raises(RegistryError, match="not a subclass"):
        reg.get("bad")
    reg2: Registry[Generator] = Registry("generator", Generator, {"gone": "no_such_module:X"}, "x.none")
    with pytest.raises(RegistryError, match="cannot import 'no_such_module'"):
        reg2.get("gone")


def test_entry_points_are_found_and_conflicts_raise(monkeypatch):
    group = "musicgen_bench.generators"
    eps = [metadata.EntryPoint("third-party-noise", "baselines.controls:NoiseGenerator", group),
           metadata.EntryPoint("silence", "baselines.controls:NoiseGenerator", group)]
    monkeypatch.setattr(registry.metadata, "entry_points",
                        lambda group=None: [e for e in eps if e.group == group])
    builtins = {"silence": "baselines.controls:SilenceGenerator"}
    reg: Registry[Generator] = Registry("generator", Generator, builtins, group)
    assert "third-party-noise" in reg.names()
    assert reg.get("third-party-noise").__name__ == "NoiseGenerator"
    with pytest.raises(RegistryError, match="both a built-in"):
        reg.get("silence")


def test_bench_list(capsys):
    assert main(["list", "generators"]) == 0
    out = capsys.readouterr().out
    assert "retrieval" in out and "baselines.retrieval:RetrievalGenerator" in out
    assert main(["list", "generatorz"]) == 2
    assert "did you mean 'generators'" in capsys.readouterr().out


def test_runner_imports_no_concrete_plugin():
    import subprocess
    import sys

    code = ("import sys, bench.runner, bench.commands, bench.suite; "
            "print(sorted(m for m in sys.modules if m.startswith(('baselines', 'bench.datasets', "
            "'bench.metrics', 'bench.embedders'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out  # not even the packages holding the built-in tables


def test_builtin_tables_load_on_first_lookup():
    import subprocess
    import sys

    code = ("import sys; from bench.registry import GENERATORS; before = 'baselines' in sys.modules; "
            "cls = GENERATORS.get('noise'); print(before, 'baselines' in sys.modules, cls.__module__, "
            "'baselines.musicgen' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "baselines.controls", "False"], out
