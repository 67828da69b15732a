"""The ENCODE 2018 layout: fetched (mirror, checksums), parsed, planted, built into a workspace."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from avocado_core import datasets
from avocado_core.encode_layout import (
    BIOSAMPLE_TYPES,
    assay_classes,
    biosample_type,
    encode2018_layout,
    read_layout,
)
from avocado_core.errors import AvocadoValueError
from avocado_core.synthetic import ASSAY_FAMILIES, layout_compendium
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
