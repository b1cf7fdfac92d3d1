"""``bench score GEN_DIR --reference REF_DIR_OR_STATS``: score a folder of clips, no plug-in to write.

Builds a suite in memory and runs it through the same runner, caches and report as ``bench run``:

- dataset ``clip-folder``: with a reference folder, its clips (stem or manifest = prompt id) are the
  prompts' reference audio; with a statistics file (``bench stats``), the prompt ids are those of
  GEN_DIR and FAD uses the file's sums (``fad: {reference_stats: ...}``), whose embedder protocol must
  match the embedder in use; KL reads each prompt's reference logits from the file when it was made
  with ``--embeddings`` for the KL embedder (else KL is left out);
- generator ``files`` over GEN_DIR (label: the folder's name), clips matched to prompts by GEN_DIR's
  manifest or file stems;
- metrics (``--metrics``; default ``fad,kl,clap_score``): ``fad`` on ``--embedder``, ``kl`` on the
  classifier of the preset (paired: needs a reference folder), ``clap_score`` (needs a caption for
  every prompt: ``--captions``, a manifest ``caption`` column or JSON sidecars). A default metric
  that cannot be computed is left out and said so; one asked for by name is an error.
  Embedder presets (``--embedders``): ``paper`` (vggish, passt, clap: the paper's protocol; weights
  are local files, see ``--embedder-param``) or ``offline`` (the shipped synth evaluators).
- ``duration_s``: ``--duration-s``, else the statistics file's crop, else the longest clip of GEN_DIR;
  clips follow ``--length`` (crop / pad / refuse, see ``baselines.files``).

The suite is written to ``RUN_DIR/suite.yaml`` with absolute paths (``bench run RUN_DIR/suite.yaml``
reproduces the run); RUN_DIR defaults to ``runs/score-<digest of the suite>``. Prints one line per
value with its protocol (backbone, checkpoint digest, rate, N, length policy), then the report path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

PRESETS = {"paper": {"fad": "vggish", "kl": "passt", "clap_score": "clap"},
           "offline": {"fad": "synth-tagger", "kl": "synth-tagger-logits", "clap_score": "synth-clap"}}
DEFAULT_METRICS = ("fad", "kl", "clap_score")


class ScoreError(ValueError):
    """A ``bench score`` request that cannot be run as asked (one line)."""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bench score", description="Score a folder of clips against a "
                                 "reference folder or a statistics file (bench stats).")
    ap.add_argument("gen_dir", type=Path, help="generated clips: <prompt id>.wav ... or a manifest.csv")
    ap.add_argument("--reference", type=Path, required=True,
                    help="reference folder, or a .npz from bench stats")
    ap.add_argument("--metrics", default=None, help=f"comma list (default {','.join(DEFAULT_METRICS)})")
    ap.add_argument("--embedders", choices=sorted(PRESETS), default="paper", help="embedder preset")
    ap.add_argument("--embedder", default=None, help="FAD backbone (overrides the preset)")
    ap.add_argument("--kl-embedder", default=None, help="KL classifier (overrides the preset)")
    ap.add_argument("--clap-embedder", default=None, help="CLAP score embedder (overrides the preset)")
    ap.add_argument("--embedder-param", action="append", default=[], metavar="NAME.KEY=VALUE")
    ap.add_argument("--captions", type=Path, default=None, help="CSV/JSONL with prompt_id, caption")
    ap.add_argument("--manifest", type=Path, default=None,
                    help="GEN_DIR's manifest (default GEN_DIR/manifest.*)")
    ap.add_argument("--duration-s", type=float, default=None)
    ap.add_argument("--length", choices=["crop", "pad", "refuse"], default="crop")
    ap.add_argument("--allow-missing", action="store_true", help="score the prompts that have a clip")
    ap.add_argument("--allow-unknown", action="store_true",
                    help="ignore clips whose prompt id has no reference (for unpaired sets, see bench stats)")
    ap.add_argument("--loudness-lufs", default="-14",
                    help="normalise generated clips (the paper); 'none': off")
    ap.add_argument("--label", default=None, help="system name in the results (default GEN_DIR's name)")
    ap.add_argument("--out", type=Path, default=None, help="run directory (default runs/score-<digest>)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the embedders run")
    ap.add_argument("--no-progress", action="store_true")
    from bench.commands import add_embed_batch_option

    add_embed_batch_option(ap)
    return ap


def _longest_clip_s(gen_dir: Path, manifest: Path | None) -> float:
    import soundfile as sf

    from bench.clipfiles import scan

    longest = 0.0
    for e in scan(gen_dir, manifest):
        try:
            info = sf.info(str(e.path))
        except Exception:  # undecodable files are listed, all of them, by the files generator's check
            continue
        longest = max(longest, info.frames / info.samplerate)
    return round(longest, 3) if longest > 0 else 1.0


def build_suite(ns: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """The suite (a YAML-ready dict with absolute paths) and notes on metrics left out."""
    from bench.datasets.clip_folder import ClipFolder
    from bench.stats import embedder_params, read_stats

    gen_dir, ref = ns.gen_dir.resolve(), ns.reference.resolve()
    stats_mode = ref.is_file()
    if not stats_mode and not ref.is_dir():
        raise ScoreError(f"--reference {str(ns.reference)!r} is neither a folder of clips nor a "
                         f"statistics file")
    names = {**PRESETS[ns.embedders]}
    for metric, override in (("fad", ns.embedder), ("kl", ns.kl_embedder), ("clap_score", ns.clap_embedder)):
        names[metric] = override or names[metric]
    asked = [m.strip() for m in ns.metrics.split(",") if m.strip()] if ns.metrics else None
    unknown = sorted(set(asked or ()) - set(DEFAULT_METRICS))
    if unknown:
        raise ScoreError(f"--metrics {','.join(unknown)}: bench score knows {', '.join(DEFAULT_METRICS)} "
                         f"(write a suite for others)")
    metrics, notes = list(asked or DEFAULT_METRICS), []
    captions = str(ns.captions.resolve()) if ns.captions else None
    manifest = str(ns.manifest.resolve()) if ns.manifest else None
    dataset = {"root": str(gen_dir if stats_mode else ref), "captions": captions, "reference": not stats_mode}
    if stats_mode and manifest:
        dataset["manifest"] = manifest
    duration = ns.duration_s
    if stats_mode:
        stats = read_stats(ref)
        if "fad" in metrics:
            stats.get(names["fad"])  # the FAD backbone must be in the file
        duration = duration or stats.meta.get("preprocessing", {}).get("duration_s")
        kl_stats = stats.embedders.get(names["kl"])
        if "kl" in metrics and (kl_stats is None or kl_stats.embeddings is None):
            why = (f"kl pairs each clip with its prompt's reference; {str(ns.reference)!r} holds no per-clip "
                   f"{names['kl']!r} embeddings (bench stats --embedder {names['kl']} --embeddings), so "
                   f"score KL against a reference folder")
            if asked:
                raise ScoreError(why)
            metrics.remove("kl")
            notes.append(f"kl left out: {why}")
    if "clap_score" in metrics:
        prompts = ClipFolder(ClipFolder.Params(**{k: (Path(v) if isinstance(v, str) else v)
                                                  for k, v in dataset.items() if v is not None})).prompts()
        uncaptioned = [p.id for p in prompts if not p.text]
        if uncaptioned:
            why = (f"{len(uncaptioned)} of {len(prompts)} prompts have no caption "
                   f"(e.g. {uncaptioned[0]!r}); pass --captions CSV/JSONL with prompt_id, caption")
            if asked:
                raise ScoreError(f"clap_score: {why}")
            metrics.remove("clap_score")
            notes.append(f"clap_score left out: {why}")
    if not metrics:
        raise ScoreError("no metric left to compute")
    duration = float(duration or _longest_clip_s(gen_dir, ns.manifest))
    lufs = None if str(ns.loudness_lufs).lower() in ("none", "null", "off") else float(ns.loudness_lufs)
    files = {"root": str(gen_dir), "length": ns.length, "allow_missing": bool(ns.allow_missing),
             "allow_unknown": bool(ns.allow_unknown)}
    if manifest:
        files["manifest"] = manifest
    specs = []
    for m in metrics:
        params: dict[str, Any] = {"embedder": names[m]}
        if m in ("fad", "kl") and stats_mode:
            params["reference_stats"] = str(ref)
        specs.append({"name": m, "params": params})
    used = {names[m] for m in metrics}
    extra = embedder_params(ns.embedder_param)
    stray = sorted(set(extra) - used)
    if stray:
        raise ScoreError(f"--embedder-param names embedder(s) {', '.join(stray)} that no metric uses "
                         f"(in use: {', '.join(sorted(used))})")
    suite = {"name": "score", "description": f"bench score {gen_dir} --reference {ref}",
             "dataset": {"name": "clip-folder",
                         "params": {k: v for k, v in dataset.items() if v is not None}},
             "generation": {"duration_s": duration, "seeds": [0], "batch_size": 1, "loudness_lufs": lufs,
                            "normalize_reference": False, "trim_to_reference": True},
             "generators": [{"name": "files", "label": ns.label or gen_dir.name, "params": files}],
             "metrics": specs, "embedders": extra,
             "report": {"title": f"bench score: {ns.label or gen_dir.name}"}}
    from bench.files import sha256_json

    suite["name"] = f"score-{sha256_json(suite)[:12]}"
    return suite, notes


def _protocol_line(rec: dict[str, Any]) -> str:
    """Backbone, checkpoint digest and rate of each embedder of a record, and a KL direction."""
    proto = rec.get("protocol", {})
    parts = []
    for name, p in (proto.get("embedders") or {}).items():
        digest = str(p.get("checkpoint_digest"))[:12]
        parts.append(f"{p.get('backbone', name)} {digest} {p.get('sample_rate')} Hz")
    if "direction" in proto:
        parts.append(proto["direction"])
    return "; ".join(parts)


def _shared_protocol(results: dict[str, Any], reference: Path) -> str:
    """What every printed number shares: clip length and policy, loudness, reference set and N."""
    meta, first = results["metadata"], results["records"][0]
    gen, settings = first.get("generator_info", {}), first["protocol"].get("generation", {})
    missing = f" ({gen['n_missing']} prompts without a clip left out)" if gen.get("n_missing") else ""
    if reference.is_file():
        from bench.stats import read_stats

        ref = f"statistics file {reference} ({read_stats(reference).meta.get('n_clips')} clips)"
    else:
        ref = f"folder {reference} ({meta['dataset'].get('n_prompts')} clips)"
    return (f"protocol: {settings.get('duration_s')} s clips (length policy {gen['length_policy']}), "
            f"generated audio at {settings.get('loudness_lufs')} LUFS, channels {gen['channels']}; "
            f"reference {ref}{missing}")


def score_command(args: list[str]) -> int:
    ns = _parser().parse_args(args)
    from bench.clipfiles import ClipFilesError
    from bench.commands import render_report
    from bench.runner import RunError, Runner
    from bench.stats import StatsError
    from bench.suite import load_suite
    from bench.yamlsource import SuiteError

    try:
        suite, notes = build_suite(ns)
    except (ScoreError, StatsError, ClipFilesError, ValueError) as e:
        print(f"bench score: {e}", file=sys.stderr)
        return 1
    run_dir = ns.out if ns.out is not None else Path("runs") / suite["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    suite_file = run_dir / "suite.yaml"
    from bench.files import atomic_write_text

    atomic_write_text(suite_file, "# written by bench score; rerun with: bench run " + str(suite_file)
                      + "\n" + yaml.safe_dump(suite, sort_keys=False))
    for note in notes:
        print(f"note: {note}")
    runner = None
    try:  # the run directory stays locked until the report is written
        try:
            planned = load_suite(suite_file, run_dir=run_dir, device=ns.device)
            runner = Runner(planned, device=ns.device, progress=not ns.no_progress,
                            embed_batch_size=ns.embed_batch_size)
            results = runner.run()
        except (SuiteError, RunError) as e:
            print(f"bench score: {e}", file=sys.stderr)
            if isinstance(e, SuiteError) and ("checkpoint" in str(e) or "weights" in str(e)):
                print("bench score: give local weight files with --embedder-param NAME.KEY=PATH (e.g. "
                      "vggish.weights=PATH), or score with --embedders offline", file=sys.stderr)
            return 1
        _print_summary(results, ns, run_dir, suite_file)
        render_report(runner, planned)
        return 0
    finally:  # a failed run's traceback would otherwise keep the run directory locked in this process
        if runner is not None:
            runner.store.unlock()


def _print_summary(results: dict, ns: argparse.Namespace, run_dir: Path, suite_file: Path) -> None:
    print(_shared_protocol(results, ns.reference))
    print(f"{'system':<20} {'metric':<24} {'value':>10} {'interval':>22} {'n':>6}  embedder")
    for r in results["records"]:
        ci = f"[{r['ci_low']:.4g}, {r['ci_high']:.4g}]" if r["ci_low"] is not None else ""
        print(f"{r['generator']:<20} {r['metric']:<24} {r['value']:>10.5g} {ci:>22} {r['n']:>6}  "
              f"{_protocol_line(r)}")
    cache = results["metadata"]["cache"]
    print(f"clips: {cache['clips']['hits']} cached, {cache['clips']['generated']} read; embeddings: "
          f"{cache['embeddings']['hits']} cached, {cache['embeddings']['computed']} computed")
    from bench.throughput import summary_lines

    for line in summary_lines(results["metadata"]["throughput"], generated="read"):
        print(line)
    print(f"results: {run_dir / 'results.json'} (per clip: {run_dir / 'samples.csv'}); "
          f"suite: {suite_file}")
