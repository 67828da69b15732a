"""The genome-wide workflow: region-set model -> per-chromosome parts -> one model -> bigWigs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyBigWig
import pytest
import torch
from click.testing import CliRunner

from avocado_core import Avocado, RegionSet
from avocado_core.errors import AvocadoKeyError, AvocadoValueError
from avocado_core.genome_wide import (
    GenomeModel,
    assemble,
    fit_chromosome,
    fit_chromosomes,
    frozen_fingerprint,
)
from avocado_core.synthetic import synthetic_compendium
from cpu_cli import on_cpu

# chrB's length is not a multiple of 25 bp: its last bin is clipped in the bigWig.
SIZES = {"chrA": 1600 * 25, "chrB": 1150 * 25 + 13, "chrC": 700 * 25}
FIT = dict(n_epochs=2, epoch_size=3, seed=5, progress=False)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("genome")
    regions = RegionSet.from_chrom_sizes(SIZES)
    comp = synthetic_compendium(n_biosamples=4, n_assays=3, n_positions=regions.n_bins,
                                n_groups=2, observed_fraction=0.6, seed=2)
    store = comp.write_store(root / "genome", regions=regions, progress=False)
    exps = store.experiments()
    biosamples = list(dict.fromkeys(b for b, _ in exps))
    assays = list(dict.fromkeys(a for _, a in exps))
    # "region set" phase: the first 1,000 bins stand in for the pilot regions
    model = Avocado.small(biosamples, assays, 1000, n_nodes=16, batch_size=300, seed=1,
                          device="cpu")
    model.fit({k: v[:1000] for k, v in store.tracks().items()}, n_epochs=2, epoch_size=4,
              progress=False, choose_settings=False)
    model.save(root / "model")
    parts = root / "parts"
    fit_chromosome(model, store, "chrA", parts, **FIT)
    fit_chromosomes(root / "model", root / "genome", parts, ["chrB"], device="cpu", **FIT)
    # chrC as another "machine" would: the CLI command, into a second directory
    from avocado_core.cli import main

    result = CliRunner().invoke(main, on_cpu([
        "fit-genome", str(root / "model"), str(root / "genome"), str(root / "parts2"), "--chrom",
        "chrC", "--epochs", "2", "--epoch-size", "3", "--seed", "5", "-q"]))
    assert result.exit_code == 0, result.output
    out = assemble(root / "model", store, [parts, root / "parts2"], root / "genome-model",
                   progress=False)
    return {"root": root, "store": store, "model": model, "parts": parts, "out": out,
            "experiments": exps}


def test_a_part_is_fit_positions_of_its_chromosome(setup: dict) -> None:
    store, model = setup["store"], setup["model"]
    start, end = store.regions.chrom_bins("chrA")
    direct = model.fit_positions({k: v[start:end] for k, v in store.tracks().items()},
                                 end - start, **FIT)
    part = Avocado.load(setup["parts"] / "chrA", device="cpu")
    b, a = setup["experiments"][0]
    np.testing.assert_array_equal(part.predict(b, a), direct.predict(b, a))
    assert frozen_fingerprint(part) == frozen_fingerprint(model)
    # no temporary directories are left behind
    assert sorted(p.name for p in setup["parts"].iterdir()) == ["chrA", "chrB"]


def test_rerun_skips_a_finished_part(setup: dict) -> None:
    target = setup["parts"] / "chrA"
    before = sorted(p.name for p in target.iterdir())
    mtime = (target / "config.json").stat().st_mtime_ns
    again = fit_chromosome(setup["model"], setup["store"], "chrA", setup["parts"], **FIT)
    assert again == target and (target / "config.json").stat().st_mtime_ns == mtime
    assert sorted(p.name for p in target.iterdir()) == before


def test_assembled_model_predicts_like_its_parts(setup: dict) -> None:
    genome = GenomeModel.load(setup["out"], device="cpu")
    assert genome.chroms == ["chrA", "chrB", "chrC"]
    assert genome.regions == setup["store"].regions
    b, a = setup["experiments"][1]
    for chrom, parts in (("chrA", setup["parts"]), ("chrC", setup["root"] / "parts2")):
        part = Avocado.load(parts / chrom, device="cpu")
        np.testing.assert_array_equal(genome.predict(b, a, chrom), part.predict(b, a))
    # a locus: bins 100..200 of chrC
    part = Avocado.load(setup["root"] / "parts2" / "chrC", device="cpu")
    np.testing.assert_array_equal(genome.predict(b, a, "chrC:2500-5000"),
                                  part.predict(b, a, 100, 200))
    # the shared network is the region-set model's
    net = genome.chromosome("chrB").network.state_dict()
    for name, value in setup["model"].network.state_dict().items():
        if not name.startswith("genome_"):
            assert torch.equal(net[name], value), name


def test_export_bigwigs_chunked(setup: dict, tmp_path: Path) -> None:
    genome = GenomeModel.load(setup["out"], device="cpu")
    exps = setup["experiments"][:2]
    paths = genome.export_bigwigs(exps, tmp_path / "bw", chunk_bins=333, progress=False)
    whole = genome.export_bigwigs(exps[:1], tmp_path / "bw-whole", chunk_bins=10**6,
                                  progress=False)
    assert [p.name for p in paths] == [f"{b}.{a}.bigWig" for b, a in exps]
    assert not [p for p in (tmp_path / "bw").iterdir() if p.name.startswith(".")]
    (b, a), path = exps[0], paths[0]
    with pyBigWig.open(str(path)) as bw, pyBigWig.open(str(whole[0])) as bw_whole:
        assert bw.chroms() == SIZES
        for chrom in SIZES:
            expected = genome.predict(b, a, chrom)
            got = np.array(bw.values(chrom, 0, SIZES[chrom]), dtype=np.float32)[::25]
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(  # chunking changes only the float rounding
                bw.values(chrom, 0, SIZES[chrom]), bw_whole.values(chrom, 0, SIZES[chrom]),
                rtol=1e-6, atol=1e-6)
        # chrB's last, clipped bin ends at the chromosome end
        assert bw.intervals("chrB")[-1][1] == SIZES["chrB"]
    with pyBigWig.open(str(tmp_path / "bw" / f"{exps[1][0]}.{exps[1][1]}.bigWig")) as bw:
        got = np.array(bw.values("chrA", 0, 2500), dtype=np.float32)[::25]
        np.testing.assert_allclose(got, genome.predict(*exps[1], "chrA")[:100], rtol=1e-6,
                                   atol=1e-6)


def test_every_file_written_follows_the_umask(setup: dict, tmp_path: Path) -> None:
    """Parts, the assembled model and the exported bigWigs are readable as ``open()`` makes
    files (safetensors alone would write 0600), with no temporary file left behind."""
    import os
    import stat

    umask = os.umask(0o022)
    os.umask(umask)
    GenomeModel.load(setup["out"], device="cpu").export_bigwigs(
        setup["experiments"][:1], tmp_path / "bw", progress=False)
    for folder in (setup["parts"], setup["root"] / "parts2", setup["out"], tmp_path / "bw"):
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert files and not [p for p in files if ".avocado-tmp-" in p.name]
        modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
        assert modes == {p.name: oct(0o666 & ~umask) for p in files}, folder


def test_export_inverts_the_transform(setup: dict, tmp_path: Path) -> None:
    genome = GenomeModel.load(setup["out"], device="cpu")
    b, a = setup["experiments"][0]
    [path] = genome.export_bigwigs([(b, a)], tmp_path, invert_transform="arcsinh",
                                   progress=False)
    with pyBigWig.open(str(path)) as bw:
        got = np.array(bw.values("chrC", 0, 2500), dtype=np.float32)[::25]
    np.testing.assert_allclose(got, np.sinh(genome.predict(b, a, "chrC")[:100]), rtol=1e-5)


def test_assemble_refuses_missing_or_foreign_parts(setup: dict, tmp_path: Path) -> None:
    with pytest.raises(AvocadoValueError, match="chrC"):
        assemble(setup["model"], setup["store"], setup["parts"], tmp_path / "x", progress=False)
    other = Avocado.load(setup["root"] / "model", device="cpu")
    with torch.no_grad():
        other.network.output.bias.add_(1.0)
    with pytest.raises(AvocadoValueError, match="not fitted from this model"):
        assemble(other, setup["store"], [setup["parts"], setup["root"] / "parts2"],
                 tmp_path / "y", progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary directory left


def test_clear_errors(setup: dict, tmp_path: Path) -> None:
    genome = GenomeModel.load(setup["out"], device="cpu")
    with pytest.raises(AvocadoKeyError, match="chrZ"):
        genome.chromosome("chrZ")
    with pytest.raises(AvocadoKeyError, match="nobody"):
        genome.export_bigwigs([("nobody", setup["experiments"][0][1])], tmp_path, progress=False)
    with pytest.raises(AvocadoKeyError, match="chrZ"):
        fit_chromosome(setup["model"], setup["store"], "chrZ", tmp_path, **FIT)
    with pytest.raises(AvocadoValueError, match="genome model"):
        GenomeModel.load(tmp_path, device="cpu")


def test_damaged_factors_are_refused_by_file_and_entry(setup: dict, tmp_path: Path) -> None:
    # The shared network and each chromosome's factors are checked as they are read (a
    # window's rows): a NaN was predicted as NaN, and its bigWig written without those bins.
    import shutil

    from avocado_core import model_format

    b, a = setup["experiments"][0]
    for name, entry, cell in (("chroms/chrB.safetensors", "250bp", 5),
                              ("shared.safetensors", "hidden.0.weight", 0)):
        damaged = tmp_path / name.split(".")[0].replace("/", "-")
        shutil.copytree(setup["out"], damaged)
        tensors = model_format.read_safetensors(damaged / name)
        tensors[entry].view(-1)[cell] = float("nan")
        model_format.write_safetensors(damaged / name, tensors)
        genome = GenomeModel.load(damaged, device="cpu")
        if name.startswith("chroms"):  # the other chromosomes predict as before
            np.testing.assert_array_equal(
                genome.predict(b, a, "chrA"),
                GenomeModel.load(setup["out"], device="cpu").predict(b, a, "chrA"))
        with pytest.raises(AvocadoValueError, match=f"{name}: entry '{entry}' holds 1 value"):
            genome.export_bigwigs([(b, a)], tmp_path / "bw", progress=False)
        assert not list((tmp_path / "bw").glob("*.bigWig"))


def test_cli_assemble_and_export(setup: dict, tmp_path: Path) -> None:
    from avocado_core.cli import main

    root = setup["root"]
    runner = CliRunner()
    result = runner.invoke(main, ["assemble-genome", str(root / "model"), str(root / "genome"),
                                  str(tmp_path / "gm"), "-p", str(setup["parts"]),
                                  "-p", str(root / "parts2"), "-q"])
    assert result.exit_code == 0, result.output
    assert "3 chromosomes" in result.output
    (b, a) = setup["experiments"][0]
    result = runner.invoke(main, on_cpu(["export-genome", str(tmp_path / "gm"),
                                         str(tmp_path / "bw"), "-e", f"{b}:{a}", "-q"]))
    assert result.exit_code == 0, result.output
    with pyBigWig.open(str(tmp_path / "bw" / f"{b}.{a}.bigWig")) as bw:
        got = np.array(bw.values("chrB", 0, 2500), dtype=np.float32)[::25]
    genome = GenomeModel.load(tmp_path / "gm", device="cpu")
    np.testing.assert_allclose(got, genome.predict(b, a, "chrB")[:100], rtol=1e-6, atol=1e-6)
    # a missing part is a one-line error, not a traceback
    result = runner.invoke(main, ["assemble-genome", str(root / "model"), str(root / "genome"),
                                  str(tmp_path / "gm2"), "-p", str(setup["parts"])])
    assert result.exit_code == 1 and "chrC" in result.output and "Traceback" not in result.output


def test_average_activity_model_goes_genome_wide(setup: dict, tmp_path: Path) -> None:
    store = setup["store"]
    exps = setup["experiments"]
    model = Avocado.small(list(dict.fromkeys(b for b, _ in exps)),
                          list(dict.fromkeys(a for _, a in exps)), 1000, n_nodes=16,
                          batch_size=300, seed=1, device="cpu", average_activity="input")
    model.fit({k: v[:1000] for k, v in store.tracks().items()}, n_epochs=2, epoch_size=4,
              progress=False, choose_settings=False)
    for chrom in ("chrA", "chrB", "chrC"):
        fit_chromosome(model, store, chrom, tmp_path / "parts", **FIT)
    genome = GenomeModel.load(assemble(model, store, [tmp_path / "parts"], tmp_path / "gm",
                                       progress=False), device="cpu")
    b, a = exps[0]
    start, end = store.regions.chrom_bins("chrB")
    part = Avocado.load(tmp_path / "parts" / "chrB", device="cpu")
    # each chromosome keeps the average activity of its own tracks
    same = [t[start:end] for (_, a2), t in store.tracks().items() if a2 == a]
    np.testing.assert_allclose(part.activity.mean[part.assays.index(a)], np.mean(same, axis=0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(genome.predict(b, a, "chrB"), part.predict(b, a))


def test_smoothing_reads_past_each_window(setup: dict, monkeypatch) -> None:
    from avocado_core import genome_wide

    monkeypatch.setattr(genome_wide, "_WINDOW_BINS", 400)  # chrA in four windows
    genome = GenomeModel.load(setup["out"], device="cpu")
    genome.config["smoothing"] = 9
    part = Avocado.load(setup["parts"] / "chrA", device="cpu")
    part.smoothing = 9
    b, a = setup["experiments"][1]
    np.testing.assert_allclose(genome.predict(b, a, "chrA"), part.predict(b, a),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(genome.predict_many([(b, a)], "chrA", 395, 805)[0],
                               part.predict(b, a, 395, 805), rtol=1e-5, atol=1e-6)


def test_parallel_jobs_spread_over_the_gpus(setup: dict, monkeypatch, tmp_path: Path) -> None:
    # Three chromosomes, two jobs at a time, on a machine with two GPUs: "cuda" puts job i on
    # cuda:{i % 2} (all on cuda:0 before); a device with an index is every job's. The pool
    # that would spawn the jobs records what each would get.
    from avocado_core import genome_wide

    seen: list[list[str]] = []

    class Pool:
        def __init__(self, n_jobs: int, mp_context: object) -> None:
            pass

        def __enter__(self) -> Pool:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def map(self, func, jobs):
            jobs = list(jobs)
            seen.append([job["device"] for job in jobs])
            return [str(tmp_path / job["chrom"]) for job in jobs]

    monkeypatch.setattr(genome_wide, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    root = setup["root"]
    for device in ("cuda", "cuda:1"):
        fit_chromosomes(root / "model", root / "genome", tmp_path, n_jobs=2, device=device)
    # (largest chromosome first)
    assert seen == [["cuda:0", "cuda:1", "cuda:0"], ["cuda:1"] * 3]
