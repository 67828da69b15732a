"""The ENCODE 2018 layout: fetched (mirror, checksums), parsed, planted, built into a workspace."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from app_workspaces import ENCODE_LAYOUT_TEST_BUILD, encode_layout_workspace  # noqa: F401
from avocado_core import datasets
from avocado_core.encode_layout import (
    BIOSAMPLE_TYPES,
    assay_classes,
    biosample_type,
    encode2018_layout,
    read_layout,
)
from avocado_core.errors import AvocadoValueError
from avocado_core.model import Avocado
from avocado_core.synthetic import ASSAY_FAMILIES, layout_compendium
from avocado_core.workspace import Workspace
from test_cli import assert_one_line_error, run

CORE = "encode2018/ENCODE2018Core.tsv"


@pytest.fixture(scope="module")
def core():
    return encode2018_layout("core")


# ---------------------------------------------------------------------- fetch
def test_registry_matches_the_mirror_checksums(data_mirror):
    sums = dict(line.split()[::-1] for line in
                (data_mirror / "encode2018" / "SHA256SUMS").read_text().splitlines())
    for name in ("ENCODE2018Core.tsv", "ENCODE2018Sparse.tsv"):
        url, sha = datasets.REGISTRY[f"encode2018/{name}"]
        assert sha == sums[name]
        assert url == f"https://github.com/jmschrei/avocado/raw/master/data/{name}"


def test_fetch_command_copies_the_checked_tables(data_mirror, tmp_path):
    out = run("fetch", "encode2018-layout", tmp_path / "layout").output
    for name in ("ENCODE2018Core.tsv", "ENCODE2018Sparse.tsv"):
        assert ((tmp_path / "layout" / name).read_bytes()
                == (data_mirror / "encode2018" / name).read_bytes())
    assert "400 biosamples x 84 assays, 3,814 experiments (11.4% of the cells)" in out
    assert "694 biosamples x 1,311 assays, 3,056 experiments" in out


def test_damaged_table_is_one_line_naming_file_and_both_checksums(data_mirror, tmp_path,
                                                                   monkeypatch):
    bad = tmp_path / "mirror" / CORE
    bad.parent.mkdir(parents=True)
    bad.write_bytes((data_mirror / CORE).read_bytes().replace(b"K562", b"K563", 1))
    got = hashlib.sha256(bad.read_bytes()).hexdigest()
    monkeypatch.setenv("AVOCADO_DATA_MIRROR", str(tmp_path / "mirror"))
    result = run("fetch", "encode2018-layout", tmp_path / "out", ok=False)
    assert_one_line_error(result, "ENCODE2018Core.tsv", got, datasets.REGISTRY[CORE][1])
    assert not (tmp_path / "out" / "ENCODE2018Core.tsv").exists()


# ---------------------------------------------------------------------- the layout
def test_core_layout_from_the_real_table(core, data_mirror):
    assert (len(core.biosamples), len(core.assays), len(core.experiments)) == (400, 84, 3814)
    mask = core.observed_mask
    assert mask.shape == (400, 84) and mask.sum() == 3814
    assert mask.sum(axis=1).min() >= 1 and mask.sum(axis=0).min() >= 1
    # rows and columns in the order of the original's ENCODE model, whose biosample names are
    # the summaries
    order = pd.read_csv(data_mirror / "encode2018" / "encode2018core-biosamples.tsv", sep="\t")
    assert list(core.biosamples.index) == list(order["Index"])
    assert list(core.biosamples["summary"]) == list(order["Biosample"])
    assays = (data_mirror / "encode2018" / "encode2018core-assays.tsv").read_text().split()
    assert list(core.assays.index) == assays
    assert core.biosamples.loc["J000", ["term", "summary", "type"]].tolist() == [
        "KMS-11", "KMS-11", "cell line"]
    first = core.experiments.iloc[0]
    assert (first["biosample"], first["assay"], first["accession"]) == (
        "J000", "ChIP-seq_H3K79me2_signal_p-value", "ENCFF879WIV")
    assert first["url"] == ("https://www.encodeproject.org/files/ENCFF879WIV/@@download/"
                            "ENCFF879WIV.bigWig")
    assert core.biosamples["type"].value_counts().to_dict() == {
        "tissue": 207, "cell line": 96, "primary cell": 82, "in vitro differentiated cells": 15}
    assert core.assays["kind"].value_counts().to_dict() == {
        "transcription factor": 43, "active mark": 22, "RNA": 14, "repressive mark": 3,
        "accessibility": 2}


def test_sparse_layout_from_the_real_table():
    sparse = encode2018_layout("sparse")
    assert (len(sparse.biosamples), len(sparse.assays), len(sparse.experiments)) == (
        694, 1311, 3056)
    assert set(sparse.assays["kind"]) <= {"transcription factor", "RNA", "active mark",
                                          "repressive mark", "accessibility"}


@pytest.mark.parametrize("term, summary, expected", [
    ("K562", "K562 nuclear fraction", "cell line"),
    ("iPS DF 19.11", "iPS DF 19.11 male newborn", "cell line"),
    ("Daoy", "Daoy", "cell line"),
    ("GM23338", "GM23338 male adult (53 years) originated from GM23248", "cell line"),
    ("hepatocyte", "hepatocyte originated from H9", "in vitro differentiated cells"),
    ("bipolar neuron", "bipolar neuron originated from GM23338 treated with 0.5 μg/mL "
     "doxycycline hyclate for 4 days", "in vitro differentiated cells"),
    ("adipocyte", "adipocyte originated from mesenchymal stem cell",
     "in vitro differentiated cells"),
    ("mesenchymal stem cell", "mesenchymal stem cell originated from adipose tissue",
     "primary cell"),
    ("fibroblast of lung", "fibroblast of lung male adult (45 years)", "primary cell"),
    ("common myeloid progenitor, CD34-positive", "common myeloid progenitor, CD34-positive",
     "primary cell"),
    ("T-cell", "T-cell", "primary cell"),
    ("muscle layer of colon", "muscle layer of colon female adult (56 years)", "tissue"),
    ("Peyer's patch", "Peyer's patch female adult (51 year)", "tissue"),
    ("stomach", "stomach male child (3 years)", "tissue"),
])
def test_biosample_type_rules(term, summary, expected):
    assert biosample_type(term, summary) == expected


def test_assay_classes_from_names():
    table = assay_classes(["ChIP-seq_H3K27me3_signal_p-value", "ChIP-seq_H3K9me2_signal_p-value",
                           "ChIP-seq_H3K4me1_signal_p-value", "ChIP-seq_H2AFZ_signal_p-value",
                           "ChIP-seq_EZH2phosphoT487_signal_p-value",
                           "ChIP-seq_CTCF_signal_p-value", "ChIP-seq_HDAC2_signal_p-value",
                           "DNase-seq_read-depth_normalized_signal",
                           "polyA_RNA-seq_minus_strand_signal_of_all_reads", "WGBS_methylation"])
    assert table["kind"].tolist() == [
        "repressive mark", "repressive mark", "active mark", "active mark",
        "transcription factor", "transcription factor", "transcription factor",
        "accessibility", "RNA", "other"]
    assert table["family"].tolist() == [
        "polycomb", "heterochromatin", "enhancer mark", "promoter mark", "polycomb", "insulator",
        "enhancer mark", "accessibility", "transcription", ""]
    assert table["target"].iloc[0] == "H3K27me3" and table["target"].iloc[7] == ""
    assert table.loc["polyA_RNA-seq_minus_strand_signal_of_all_reads",
                     ["technique", "strand"]].tolist() == ["polyA_RNA-seq", "minus"]


def _table(rows: list[list[str]], header: str = "Accession") -> str:
    head = ["Biosample Index", "Biosample", "Biosample summary", "Assay", header,
            "Download URL"]
    return "\n".join("\t".join(r) for r in [head, *rows]) + "\n"


ROW = ["J000", "K562", "K562", "DNase-seq_read-depth_normalized_signal", "ENCFF1", "/files/1"]


@pytest.mark.parametrize("text, message", [
    (_table([ROW], header="Accesion"), r"'Accesion'.*; expected \['Biosample Index'"),
    (_table([ROW, ROW[:4] + ["ENCFF2", "/files/2"]]), r"\(J000, DNase-seq.*\) is listed twice"),
    (_table([ROW, ["J000", "HepG2", "HepG2", "ATAC-seq_signal_p-value", "ENCFF2", "/f/2"]]),
     "biosample J000 has two term names"),
    (_table([ROW[:4] + ["", "/files/1"]]), "row 2 has an empty cell"),
    (_table([]), "lists no experiments"),
])
def test_bad_tables_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "layout.tsv"
    path.write_text(text)
    with pytest.raises(AvocadoValueError, match=message):
        read_layout(path)


def test_subset_keeps_every_type_and_only_observed_assays(core):
    small = core.subset(40)
    assert len(small.biosamples) == 40 and set(small.biosamples["type"]) == set(BIOSAMPLE_TYPES)
    assert small.observed_mask.sum(axis=0).min() >= 1
    assert set(small.experiments["biosample"]) == set(small.biosamples.index)
    with pytest.raises(AvocadoValueError, match="from 1 to 400, got 401"):
        core.subset(401)
    other = read_layout(core.path)
    other.assays.loc[other.assays.index[0], "family"] = ""
    with pytest.raises(AvocadoValueError, match="ATAC-seq_signal_p-value.* match no rule"):
        other.planted()


# ---------------------------------------------------------------------- generator
def test_generator_has_exactly_the_layout(core):
    comp = layout_compendium(core.planted(), n_positions=300, seed=1)
    assert list(comp.biosamples["name"]) == list(core.biosamples.index)
    for column in ("term", "summary", "type"):
        assert list(comp.biosamples[column]) == list(core.biosamples[column])
    assert list(comp.assays["name"]) == list(core.assays.index)
    assert list(comp.assays["kind"]) == list(core.assays["kind"])
    assert set(comp.assays["family"]) <= set(ASSAY_FAMILIES)
    np.testing.assert_array_equal(comp.observed_mask, core.observed_mask)
    assert len(comp.observed) == 3814
    observed = set(zip(core.experiments["biosample"], core.experiments["assay"]))
    assert set(comp.observed) == observed
    # planted groups are the biosample types, in sorted order
    assert dict(zip(comp.biosamples["type"], comp.biosamples["group"])) == {
        t: i for i, t in enumerate(sorted(BIOSAMPLE_TYPES))}
    assert "synthetic signal" in comp.description and "ENCODE 2018 core" in comp.description


def test_planted_biosample_types_are_recovered_by_the_model(core):
    """The full layout at 4,000 bins (the workspace's training, without its store): k-means
    on the learned biosample factors finds the planted types; on a random embedding it
    does not."""
    comp = layout_compendium(core.planted(), n_positions=4_000, seed=0)
    model = Avocado.small(list(comp.biosamples["name"]), list(comp.assays["name"]), 4_000,
                          seed=0, batch_size=4_000, n_nodes=32, n_biosample_factors=8,
                          n_assay_factors=8, n_25bp_factors=4, n_250bp_factors=4,
                          n_5kbp_factors=4, device="cpu")
    # trained as the workspace trains it (ENCODE_LAYOUT_BUILD: the settings as given)
    model.fit(comp.observed_tracks, n_epochs=80, epoch_size=25, progress=False,
              choose_settings=False)
    types = comp.biosamples["group"].to_numpy()

    def ari(embedding: np.ndarray) -> float:
        return adjusted_rand_score(types, KMeans(4, n_init=10, random_state=0)
                                   .fit_predict(embedding))

    random = np.random.default_rng(0).standard_normal(model.biosample_embedding().shape)
    assert ari(model.biosample_embedding()) > 0.4
    assert ari(random) < 0.1


# ---------------------------------------------------------------------- workspace
def test_demo_builds_the_encode_layout_workspace(tmp_path):
    # The projections recorded before the first build are the ones it computes (PCA: no
    # UMAP compilation in a unit test); everything else is the command's own path.
    Workspace.create(tmp_path / "ws", annotations=None).update_info(
        projections=[list(p) for p in ENCODE_LAYOUT_TEST_BUILD["projections"]])
    out = run("demo", tmp_path / "ws", "--source", "encode-layout", "--no-serve", "-q",
              "--bins", "500", "--biosamples", "20", "--epochs", "1", "--genome-points",
              "500").output
    assert "Ready in" in out and "peak memory" in out and "load average" in out
    assert "build steps: store" in out and "training" in out and "projections" in out
    assert "Signal: synthetic signal" in out and "20 of its 400 biosamples" in out
    ws = Workspace(tmp_path / "ws")
    assert len(ws.biosamples) == 20 and ws.store.n_bins == 500
    assert set(ws.info["build_seconds"]) == {"store", "training", "projections"}
    assert ws.info["training"]["max_memory"] == "1G"
    # a second run builds nothing and says so again
    again = run("demo", tmp_path / "ws", "--source", "encode-layout", "--no-serve", "-q").output
    assert "Signal: synthetic signal" in again
    info = run("info", tmp_path / "ws").output
    assert "Signal:" in info and "SYNTHETIC" in info
    stored = json.loads(run("info", tmp_path / "ws" / "store", "--json").output)
    assert stored["synthetic"]["layout"].startswith("ENCODE 2018 core")


@pytest.mark.parametrize("args, message", [
    (["--source", "roadmap-pilot", "--biosamples", "20"], "--biosamples takes part of"),
    (["--source", "roadmap-pilot", "--bins", "500"], "--bins sets the length"),
])
def test_demo_options_that_do_not_fit_the_source(tmp_path, args, message):
    result = run("demo", tmp_path / "ws", "--no-serve", *args, ok=False)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "ws").exists()


def test_workspace_metadata_is_the_layout(encode_layout_workspace, core):  # noqa: F811
    ws = encode_layout_workspace
    assert ws.title == "ENCODE 2018 layout (synthetic signal)" and ws.genome == "synthetic"
    meta = ws.biosample_metadata()
    expected = core.subset(40).biosamples
    pd.testing.assert_frame_equal(meta[["term", "summary", "type"]],
                                  expected.loc[meta.index, ["term", "summary", "type"]])
    assert ws.assay_metadata().loc["ChIP-seq_H3K4me3_signal_p-value", "kind"] == "active mark"
    assert ws.synthetic.startswith("synthetic signal")
    # no stored imputation: the locus page's imputations come from the model
    assert not ws.store.experiments("imputed")
    b, a = next((b, a) for b in ws.biosamples for a in ws.assays
                if not ws.has_track(b, a))
    observed, imputed = ws.window(b, a, 0, 100)
    assert observed is None and imputed.shape == (100,)
