"""Imputing a placed upload on the design page, without a browser: the files over the
workspace's positions, the locus view and the download, on known answers."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from app_client import outputs_of, post_callback, text_of
from app_workspaces import pilot_workspace  # noqa: F401  (fixture)
from avocado_core.bigwig import bin_bigwig
from dashboard.app import create_app
from dashboard.pages import design_impute, design_upload

KNOWN = "E017"
#: The bedGraphs' four significant digits: a relative rounding of at most 5e-4.
BEDGRAPH_RTOL = 5e-4


@pytest.fixture(scope="module")
def pilot_app(pilot_workspace, tmp_path_factory):  # noqa: F811
    return create_app(pilot_workspace, background_dir=str(tmp_path_factory.mktemp("bgi")),
                      temp_dir=str(tmp_path_factory.mktemp("tmpi")))


@pytest.fixture(scope="module")
def known_placement(pilot_app, pilot_workspace):  # noqa: F811
    """A placement whose fitted row is E017's own (as if the fit had landed exactly on it),
    with E017's observed H3K27me3 as the upload; its folder in the app's temporary folder."""
    ws = pilot_workspace
    row = np.asarray(ws.model.biosample_embedding())[list(ws.model.biosamples).index(KNOWN)]
    nearest = pd.DataFrame({"biosample": [KNOWN], "distance": [0.0]})
    nearest.attrs.update(name="IMR90 again", assay="H3K27me3", embedding=row.tolist())
    token, folder = design_impute.placement_folder(pilot_app.server.config["AVOCADO_TEMP_DIR"])
    folder.mkdir()
    np.save(folder / design_upload.UPLOAD_FILE, ws.store.fetch(KNOWN, "H3K27me3"))
    return design_impute.fitted_record(ws, nearest, token, "imr90.bw"), folder


def _expected(ws, assays):
    """E017's imputations by the workspace's model, clipped at 0 as the app clips them."""
    return np.maximum(ws.model.predict_many([(KNOWN, a) for a in assays]), 0.0)


def test_a_known_row_writes_that_biosamples_imputations(pilot_workspace, known_placement):  # noqa: F811
    """Known answer: the bigWigs of a placement whose row is E017's hold E017's imputations
    (the nearest biosample's settings are E017's own), over every bin of the workspace."""
    ws = pilot_workspace
    fitted, folder = known_placement
    assert fitted["nearest"] == KNOWN and fitted["settings"] == ws.model.biosample_settings[KNOWN]
    done = []
    path = design_impute.write_imputed(ws, fitted, list(ws.assays), folder, "bigwig", "arcsinh",
                                       done.append)
    assert done == [len(ws.assays)]  # one batch of 5 assays
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert names == ["README.txt"] + [f"IMR90_again.{a}.imputed.bw" for a in ws.assays]
        readme = z.read("README.txt").decode()
        z.extractall(folder / "unzipped")
    assert "Imputed for the new biosample IMR90 again, placed from the upload imr90.bw" in readme
    assert "Not observed signal" in readme and "arcsinh(-log10 p)" in readme
    expected = _expected(ws, ws.assays)
    for a, want in zip(ws.assays, expected):
        got = bin_bigwig(folder / "unzipped" / f"IMR90_again.{a}.imputed.bw", ws.store.regions,
                         progress=False)
        # float32 values written and read back as they are; the rows share E017's products
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * float(want.max()))


def test_bedgraphs_in_log10p_over_every_bin(pilot_workspace, known_placement):  # noqa: F811
    ws = pilot_workspace
    fitted, folder = known_placement
    path = design_impute.write_imputed(ws, fitted, ["H3K4me3"], folder, "bedgraph", "log10p")
    with zipfile.ZipFile(path) as z:
        text = z.read("IMR90_again.H3K4me3.imputed.bedGraph").decode()
    header, *lines = text.splitlines()
    assert header == ('track type=bedGraph name="IMR90 again H3K4me3 imputed" description='
                      '"Avocado imputed signal of H3K4me3 in IMR90 again (fitted upload), '
                      '-log10 p"')
    assert len(lines) == ws.store.n_bins
    table = pd.read_csv(io.StringIO("\n".join(lines)), sep="\t", header=None)
    chrom, start = ws.store.regions.bin_coordinates([0, ws.store.n_bins - 1])
    assert (table[0].iloc[0], table[1].iloc[0]) == (chrom[0], start[0])
    assert table[1].iloc[-1] == start[1] and (table[2] - table[1] == 25).all()
    want = np.sinh(_expected(ws, ["H3K4me3"])[0].astype(np.float64))
    np.testing.assert_allclose(table[3].to_numpy(), want, rtol=BEDGRAPH_RTOL, atol=1e-30)


def test_the_page_offers_impute_then_shows_and_sends_the_files(pilot_app, pilot_workspace,  # noqa: F811
                                                                 known_placement):
    ws = pilot_workspace
    fitted, folder = known_placement
    client = pilot_app.server.test_client()
    offer = post_callback(client, outputs_of(pilot_app, "design-impute.hidden"),
                          [("design-fitted", "data", fitted)])
    assert offer["design-impute"]["hidden"] is False
    assert "Predict IMR90 again's assays" in offer["design-impute-hint"]["children"]

    path = design_impute.write_imputed(ws, fitted, list(ws.assays), folder, "bigwig", "arcsinh")
    result = {"token": fitted["token"], "assays": list(ws.assays), "format": "bigwig",
              "units": "arcsinh", "file": path.name, "bytes": path.stat().st_size,
              "seconds": 1.0}
    outputs = outputs_of(pilot_app, "design-impute-results.hidden")
    out = post_callback(client, outputs,
                        [("design-imputed", "data", result), ("design-impute-show", "value", []),
                         ("design-impute-locus", "value", "")],
                        [("design-fitted", "data", fitted)], changed=["design-imputed.data"])
    assert out["design-impute-results"]["hidden"] is False
    summary = text_of(out["design-impute-summary"]["children"])
    assert summary.startswith("IMR90 again: 5 assays imputed")
    assert "the prediction settings of its nearest biosample, E017" in summary
    shown = out["design-impute-show"]["value"]
    assert shown == [a for a in ws.assays if a != "H3K27me3"][:design_impute.VIEW_TRACKS]
    locus = out["design-impute-locus"]["value"]
    assert locus == "chr1:151,200,000-151,300,000"  # the upload has data there
    labels = [a["text"] for a in out["design-impute-graph"]["figure"]["layout"]["annotations"]
              if a.get("name") == "track-label"]
    # each row's label, then what it shows over the window
    names = [text.split("</b>")[0] + "</b>" for text in labels]
    assert names == [f"<b>IMR90 again · fitted upload · {a}</b>" for a in ["H3K27me3", *shown]]
    metrics = [text.split("</b>", 1)[1] for text in labels]
    assert ">training fit · MSE" in metrics[0] and ">imputed only<" in metrics[1]

    # the view's imputations are the files' (one function, one range or the whole)
    drawn = pilot_app.server.config["AVOCADO_WORKSPACE"]
    chrom, start, end, b0, b1 = design_impute.snap_window(drawn, "chr1", 151_200_000,
                                                          151_300_000)
    view = design_impute.predict(ws, fitted, ["H3K4me3"], b0, b1)[0]
    np.testing.assert_allclose(view, _expected(ws, ["H3K4me3"])[0, b0:b1], rtol=0,
                               atol=1e-5 * float(view.max()))

    href = out["design-impute-download"]["href"]
    assert href == f"/_avocado/imputed/{fitted['token']}/{path.name}"
    sent = client.get(href)
    assert sent.status_code == 200 and sent.data == path.read_bytes()
    assert client.get(f"/_avocado/imputed/{'0' * 32}/{path.name}").status_code == 404
    assert client.get(f"/_avocado/imputed/{fitted['token']}/upload.npy").status_code == 404
    # a name with a slash is no file name of the route: the app's page answers, no file
    for name in ("..%2F..%2Fbackground%2Fcache.db", "..%2Fx.zip"):
        answer = client.get(f"/_avocado/imputed/{fitted['token']}/{name}")
        assert "Content-Disposition" not in answer.headers and b"<!DOCTYPE html>" in answer.data

    # another locus, typed; a bad one is an alert and the view stays
    def typed(text):
        return post_callback(client, outputs,
                             [("design-imputed", "data", result),
                              ("design-impute-show", "value", ["H3K4me3"]),
                              ("design-impute-locus", "value", text)],
                             [("design-fitted", "data", fitted)],
                             changed=["design-impute-locus.value"])

    moved = typed("chr1:151,250,000-151,260,000")
    assert moved["design-impute-locus"]["value"] == "chr1:151,250,000-151,260,000"
    assert moved["design-impute-graph"]["figure"]["layout"]["meta"]["n_tracks"] == 2
    bad = typed("chrZ:1-2")
    assert "chrZ" in text_of(bad["design-impute-view-alert"]["children"])
    assert "design-impute-graph" not in bad


def test_a_placement_whose_files_are_gone_says_so(pilot_app, known_placement):
    fitted, _ = known_placement
    gone = dict(fitted, token="f" * 32)
    with pytest.raises(ValueError, match="files are gone .* fit and place it again"):
        design_impute.placement_folder(pilot_app.server.config["AVOCADO_TEMP_DIR"],
                                       gone["token"])
    with pytest.raises(ValueError, match="files are gone"):
        design_impute.placement_folder(pilot_app.server.config["AVOCADO_TEMP_DIR"], "../..")


def test_chosen_assays_and_their_order(pilot_workspace):  # noqa: F811
    ws = pilot_workspace
    assert design_impute.chosen_assays(ws, None) == list(ws.assays)
    assert design_impute.chosen_assays(ws, ["H3K9me3", "H3K27me3"]) == ["H3K27me3", "H3K9me3"]
    with pytest.raises(KeyError, match="unknown assay 'H3K9'"):
        design_impute.chosen_assays(ws, ["H3K9"])
    labels = [o["label"] for o in design_impute.assay_options(ws)]
    counts = [int(label.split("(")[1].split()[0]) for label in labels]
    assert counts == sorted(counts, reverse=True) and len(labels) == len(ws.assays)
