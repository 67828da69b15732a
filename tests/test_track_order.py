"""Moving the locus page's tracks and setting their heights (dashboard.track_order,
dashboard.track_heights, dashboard.pages.locus_order): the pure moves and heights, a track's
look wherever it is drawn, then the callbacks on the reduced ENCODE-layout workspace through
Dash's HTTP endpoint."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

from app_client import (
    PICKER_OUTPUTS,
    draw_locus,
    outputs_of,
    picker_inputs,
    post_callback,
    prop_id,
    text_of,
)
from app_workspaces import encode_layout_workspace  # noqa: F401  (fixture)
from dashboard.app import create_app
from dashboard.figures.tracks import ROW_GAP, Track, locus_figure
from dashboard.pages import locus
from dashboard.pages.locus_order import BUTTON, HEIGHT_BUTTON
from dashboard.track_heights import (
    ROW_UNIT,
    TRACK_HEIGHTS,
    cycle_height,
    format_heights,
    next_height,
    parse_heights,
    row_heights,
)
from dashboard.track_order import MOVES, arrange, move_track


# ---------------------------------------------------------------------- the moves
def test_move_track_moves_one_track_and_keeps_the_others_in_order():
    tracks = ["a", "b", "c", "d"]
    assert move_track(tracks, 2, "top") == ["c", "a", "b", "d"]
    assert move_track(tracks, 2, "up") == ["a", "c", "b", "d"]
    assert move_track(tracks, 1, "down") == ["a", "c", "b", "d"]
    assert move_track(move_track(tracks, 1, "down"), 2, "up") == tracks
    # past an end: the order as it is
    for index, where in ((0, "top"), (0, "up"), (3, "down")):
        assert move_track(tracks, index, where) == tracks
    assert tracks == ["a", "b", "c", "d"]  # a new list each time
    assert move_track([("B1", "A1")], 0, "top") == [("B1", "A1")]


@pytest.mark.parametrize("tracks, index, where, message", [
    (["a", "b"], 2, "up", r"no track at index 2: there are 2 tracks \(0 to 1\)"),
    (["a", "b"], -1, "top", "no track at index -1: there are 2 tracks"),
    ([], 0, "down", "no track at index 0: there are 0 tracks$"),
    (["a", "b"], "1", "up", "a track's index must be an integer, got '1'"),
    (["a", "b"], True, "up", "a track's index must be an integer, got True"),
    (["a", "b"], 0, "left", r"unknown move 'left'; expected one of \['top', 'up', 'down'\]"),
])
def test_move_track_names_the_bad_input(tracks, index, where, message):
    with pytest.raises(ValueError, match=message):
        move_track(tracks, index, where)


# ---------------------------------------------------------------------- the heights
def test_a_height_button_cycles_one_tracks_height_and_comes_back_to_the_pages():
    assert TRACK_HEIGHTS == {"collapsed": 15, "compact": 36, "normal": 78, "tall": 120}
    # each pitch a whole number of the hover's cell, at most six of them
    assert all((h + ROW_GAP) % ROW_UNIT == 0 and (h + ROW_GAP) // ROW_UNIT <= 6
               for h in TRACK_HEIGHTS.values())
    assert [next_height(h) for h in TRACK_HEIGHTS] == ["compact", "normal", "tall", "collapsed"]
    own = {"B2|A": "collapsed"}
    taller = cycle_height(own, "B1|A", "normal")
    assert taller == {"B2|A": "collapsed", "B1|A": "tall"} and own == {"B2|A": "collapsed"}
    # round the cycle: back at the page's height, no height of its own
    steps = [taller]
    for _ in range(3):
        steps.append(cycle_height(steps[-1], "B1|A", "normal"))
    assert [s.get("B1|A") for s in steps] == ["tall", "collapsed", "compact", None]
    assert row_heights(["B1|A", "B2|A", "B3|A"], "compact", taller) == [120, 15, 36]
    with pytest.raises(ValueError, match=r"unknown track height 'huge'; expected one of "
                                         r"\['collapsed', 'compact', 'normal', 'tall'\]"):
        cycle_height({}, "B1|A", "huge")


def test_own_heights_travel_in_the_address_by_track():
    tracks = ["B1|A", "B2|A", "B3|A"]
    items = ["B3|A:tall", "B1|A:collapsed", "B9|A:tall", "B2|A:huge", "B2|A", "tall"]
    own = parse_heights(items, tracks)
    assert own == {"B3|A": "tall", "B1|A": "collapsed"}  # others' and damaged items dropped
    assert format_heights(own, tracks) == ["B1|A:collapsed", "B3|A:tall"]  # tracks' order
    assert format_heights(own, ["B3|A"]) == ["B3|A:tall"]  # a removed track's is not written
    assert format_heights(None, tracks) == []


# ---------------------------------------------------------------------- the figure's rows
ASSAYS = ("assayX", "assayY", "assayZ")  # none has a fixed colour: the palette's, by index


def _track(biosample: str, assay: str, band: bool) -> Track:
    rng = np.random.default_rng(abs(hash((biosample, assay))) % 2**32)
    obs = rng.gamma(1.0, 1.0 + ASSAYS.index(assay), 400).astype(np.float32)
    if not band:
        return Track(biosample, assay, observed=obs, name=f"{biosample} cells")
    imp = obs * 0.8 + 0.1
    return Track(biosample, assay, observed=obs, imputed=imp, low=imp * 0.5, high=imp * 1.5,
                 metrics={"mse": 0.5, "pearson": 0.7}, trained=False, name=f"{biosample} cells")


def _rows(fig: dict) -> dict:
    """Each track row as the eye sees it, by its label: its place (the top of its row), its
    y-range and its colour."""
    meta = fig["layout"]["meta"]
    labels = [a for a in fig["layout"]["annotations"] if a.get("name") == "track-label"]
    return {a["text"].split("</b>")[0]: (row[1], tuple(span), a["font"]["color"])
            for a, row, span in zip(labels, meta["rows"], meta["ranges"])}


def _legend(fig: dict) -> list[str]:
    """The legend's entries in the order plotly lists them (by rank, then by trace)."""
    shown = [t for t in fig["data"] if t.get("showlegend")]
    return [t["name"] for t in sorted(shown, key=lambda t: t.get("legendrank", 1000))]


@pytest.mark.parametrize("scale", ["assay", "track"])
def test_a_tracks_look_does_not_depend_on_its_place(scale):
    drawn = [("B1", "assayX", False), ("B2", "assayY", True), ("B1", "assayY", True),
             ("B3", "assayZ", False), ("B2", "assayX", True)]
    tracks = {(b, a): _track(b, a, band) for b, a, band in drawn}
    first = [(b, a) for b, a, _ in drawn]
    # the last track to the top: another assay (and a band) comes first
    new = move_track(move_track(first, 4, "top"), 3, "top")

    def figure(order):
        return locus_figure("chr1", 0, 10_000, 25, [tracks[e] for e in order],
                            track_height=36, y_scale=scale)

    before, after = _rows(figure(first)), _rows(figure(new))
    # the rows trade places; each keeps its y-range and colour
    assert {k: v[1:] for k, v in before.items()} == {k: v[1:] for k, v in after.items()}
    labels = {e: f"<b>{tracks[e].label}" for e in first}
    assert sorted(after, key=lambda label: -after[label][0]) == [labels[e] for e in new]
    assert _legend(figure(first)) == _legend(figure(new)) == [
        "members' range", "imputed", "observed"]


# ---------------------------------------------------------------------- the page's callbacks
@pytest.fixture(scope="module")
def encode_app(encode_layout_workspace, tmp_path_factory):  # noqa: F811
    return create_app(encode_layout_workspace,
                      background_dir=str(tmp_path_factory.mktemp("bg-order")))


@pytest.fixture
def chosen(encode_layout_workspace):  # noqa: F811
    """Six tracks: two marks of three biosamples, biosample by biosample."""
    ws = encode_layout_workspace
    marks = ["ChIP-seq_H3K4me1_signal_p-value", "ChIP-seq_H3K27ac_signal_p-value"]
    return [[b, a] for b in ws.biosamples[:3] for a in marks]


def _key(track) -> str:
    return f"{track[0]}|{track[1]}"


def _press(app, chosen, order, track, where, clicks=1):
    """The track list's buttons as the page sends them, ``where`` of ``track`` pressed."""
    key = next(k for k in app.callback_map if "locus-order-focus.data" in k
               and "locus-tracks.data" in k)
    buttons = [({"type": BUTTON, "track": _key(e), "where": w},
                "n_clicks", clicks if (_key(e), w) == (_key(track), where) else None)
               for e in arrange([tuple(e) for e in chosen], order) for w in (*MOVES, "remove")]
    pressed = {"type": BUTTON, "track": _key(track), "where": where}
    return post_callback(app.server.test_client(), outputs_of(app, key), [buttons],
                         [("locus-tracks", "data", chosen), ("locus-order", "value", order)],
                         [prop_id(pressed, "n_clicks")])


def test_a_move_rewrites_the_chosen_order_and_sets_the_order_as_chosen(encode_app, chosen):
    out = _press(encode_app, chosen, "chosen", chosen[3], "top")
    moved = [chosen[3], *chosen[:3], *chosen[4:]]
    assert out["locus-tracks"]["data"] == moved
    assert out["locus-chosen"]["value"] == [_key(e) for e in moved]  # the picker's list too
    assert out["locus-order"]["value"] == "chosen"
    assert out["locus-order-focus"]["data"] == {"track": _key(chosen[3]), "where": "top"}
    # grouped by assay, a move is a move in what is drawn (the H3K27ac of the first biosample
    # goes up under the last H3K4me1), which becomes the chosen order
    drawn = arrange([tuple(e) for e in chosen], "assay")
    out = _press(encode_app, chosen, "assay", chosen[1], "up")
    assert [tuple(e) for e in out["locus-tracks"]["data"]] == move_track(drawn, 3, "up")
    assert out["locus-order"]["value"] == "chosen"
    out = _press(encode_app, chosen, "chosen", chosen[4], "down")
    assert out["locus-tracks"]["data"] == [*chosen[:4], chosen[5], chosen[4]]


def test_a_removal_goes_through_the_chosen_list_and_keeps_the_chosen_order(encode_app, chosen):
    out = _press(encode_app, chosen, "assay", chosen[2], "remove")
    # only the picker's list: its callback updates tracks, matrix and count as for a chip
    assert set(out) == {"locus-chosen", "locus-order-focus"}
    assert out["locus-chosen"]["value"] == [_key(e) for e in chosen if e != chosen[2]]
    # the focus goes to the removal of the track drawn next (by assay: the third biosample's)
    assert out["locus-order-focus"]["data"] == {"track": _key(chosen[4]), "where": "remove"}
    last = _press(encode_app, chosen[:1], "chosen", chosen[0], "remove")
    assert last["locus-chosen"]["value"] == [] and last["locus-order-focus"]["data"] is None


def test_nothing_moves_for_an_idle_button_an_end_or_an_old_list(encode_app, chosen):
    assert _press(encode_app, chosen, "chosen", chosen[0], "up", clicks=None) == {}
    assert _press(encode_app, chosen, "chosen", chosen[0], "top") == {}
    assert _press(encode_app, chosen, "chosen", chosen[-1], "down") == {}
    # a button of a track that is no longer chosen (the list was out of date)
    gone = {"type": BUTTON, "track": "J999|gone", "where": "up"}
    key = next(k for k in encode_app.callback_map if "locus-order-focus.data" in k
               and "locus-tracks.data" in k)
    out = post_callback(encode_app.server.test_client(), outputs_of(encode_app, key),
                        [[(gone, "n_clicks", 1)]],
                        [("locus-tracks", "data", chosen), ("locus-order", "value", "chosen")],
                        [prop_id(gone, "n_clicks")])
    assert out == {}


def test_the_picker_leaves_a_reorder_to_the_track_list(encode_app, chosen):
    """The list sets the tracks and the picker's list together: the picker has nothing to do
    (no matrix drawn again)."""
    listed = [_key(e) for e in chosen[::-1]]
    out = post_callback(encode_app.server.test_client(), PICKER_OUTPUTS,
                        picker_inputs(listed=listed),
                        [("locus-tracks", "data", chosen[::-1])], ["locus-chosen.value"])
    assert out == {}


def test_a_move_redraws_the_plot_in_the_new_order(encode_app, chosen):
    client = encode_app.server.test_client()
    window = "chr1:0-50,000"
    moved = move_track(chosen, 5, "top")
    out = draw_locus(client, window, moved, ["locus-tracks.data", "locus-order.value"],
                     height="compact")
    rows = _rows(out["locus-graph"]["figure"])
    assert len(rows) == len(moved)

    def table_rows(html_table: str) -> list[list[str]]:
        return [re.findall(r"<td[^>]*>(.*?)</td>", row)[:2]
                for row in html_table.split("<tbody>")[1].split("</tr>")[:-1]]

    first = draw_locus(client, window, chosen, height="compact")["locus-metrics"]["children"]
    table = table_rows(out["locus-metrics"]["children"])
    assert table == [table_rows(first)[i] for i in (5, 0, 1, 2, 3, 4)]
    # the plot's rows, top to bottom, in the table's order
    top_down = sorted(rows, key=lambda label: -rows[label][0])
    assert len(table) == len(top_down) == 6
    assert all(html.unescape(bio) in label and assay in label
               for label, (bio, assay) in zip(top_down, table))
    assert out["locus-url"]["data"]["query"] == (
        "?locus=chr1:0-50,000&tracks=" + ",".join(_key(e) for e in moved) + "&height=compact")


def test_the_list_shows_the_drawn_order_and_takes_the_focus_once(
        encode_app, chosen, encode_layout_workspace):  # noqa: F811
    ws = encode_layout_workspace
    key = next(k for k in encode_app.callback_map if k.startswith("..locus-order-list.children"))
    focus = {"track": _key(chosen[2]), "where": "down"}
    out = post_callback(encode_app.server.test_client(), outputs_of(encode_app, key),
                        [("locus-tracks", "data", chosen), ("locus-order", "value", "assay"),
                         ("locus-heights", "data", {}), ("locus-height", "value", "normal")],
                        [("locus-order-focus", "data", focus)], ["locus-order.value"])
    assert out["locus-order-focus"]["data"] is None  # used once
    rows = out["locus-order-list"]["children"]
    drawn = arrange([tuple(e) for e in chosen], "assay")
    name = ws.store.biosamples["summary"]
    # each row: its place, the short assay, the biosample's id and name
    assert [" ".join(text_of(r).split()).split(" ⤒")[0] for r in rows] == [
        f"{i + 1} {a.split('_')[1]} {b} · {name[b]}" for i, (b, a) in enumerate(drawn)]
    buttons = [c["props"] for r in rows for c in r["props"]["children"][-1]["props"]["children"]]
    focused = [b["id"] for b in buttons if b.get("autoFocus")]
    assert focused == [{"type": BUTTON, "where": "down", "track": _key(chosen[2])}]
    first = {b["id"].get("where", b["id"]["type"]): b.get("aria-disabled") for b in buttons[:5]}
    assert first == {"top": "true", "up": "true", "down": "false",
                     HEIGHT_BUTTON: None, "remove": "false"}
    # the buttons name their track shortly; the row's hover in full
    b, a = drawn[0]
    assert buttons[0]["title"] == buttons[0]["aria-label"] == (
        f"move {a.split('_')[1]} of {b} · {name[b]} to the top")
    assert rows[0]["props"]["children"][2]["props"]["title"] == f"{b} · {name[b]} · {a}"


def test_the_page_lists_the_tracks_of_its_address_as_drawn(encode_app, chosen):
    tracks = ",".join(_key(e) for e in chosen)
    with encode_app.server.test_request_context():
        page = locus.layout(tracks=tracks, order="biosample")
    listed = next(c for c in page._traverse() if getattr(c, "id", None) == "locus-order-list")
    assert [r.id["track"] for r in listed.children] == [_key(e) for e in chosen]
    with encode_app.server.test_request_context():
        page = locus.layout(tracks=tracks, order="assay")
    listed = next(c for c in page._traverse() if getattr(c, "id", None) == "locus-order-list")
    assert [r.id["track"] for r in listed.children] == [
        _key(e) for e in arrange([tuple(e) for e in chosen], "assay")]


def _press_height(app, chosen, track, own, page="normal"):
    """The height buttons as the page sends them, ``track``'s pressed."""
    key = next(k for k in app.callback_map if k.startswith("..locus-heights.data"))
    buttons = [({"type": HEIGHT_BUTTON, "track": _key(e)}, "n_clicks",
                1 if e == track else None) for e in chosen]
    return post_callback(app.server.test_client(), outputs_of(app, key), [buttons],
                         [("locus-heights", "data", own), ("locus-height", "value", page)],
                         [prop_id({"type": HEIGHT_BUTTON, "track": _key(track)}, "n_clicks")])


def test_a_height_button_sets_its_tracks_height_alone_in_plot_list_and_address(
        encode_app, chosen):
    out = _press_height(encode_app, chosen, chosen[1], {}, "compact")
    own = out["locus-heights"]["data"]
    assert own == {_key(chosen[1]): "normal"}
    assert out["locus-order-focus"]["data"] == {"track": _key(chosen[1]), "where": "height"}
    own = _press_height(encode_app, chosen, chosen[4], own, "compact")["locus-heights"]["data"]
    own = _press_height(encode_app, chosen, chosen[4], own, "compact")["locus-heights"]["data"]
    assert own == {_key(chosen[1]): "normal", _key(chosen[4]): "tall"}
    # the plot: those two rows their own height, the others the page's
    client = encode_app.server.test_client()
    out = draw_locus(client, "chr1:0-50,000", chosen, ["locus-heights.data"], height="compact",
                     heights=own)
    rows = out["locus-graph"]["figure"]["layout"]["meta"]["rows"]
    assert [top - bottom for bottom, top in rows] == [36, 78, 36, 36, 120, 36]
    assert out["locus-url"]["data"]["query"].endswith(
        f"&height=compact&heights={_key(chosen[1])}:normal,{_key(chosen[4])}:tall")
    # grouped by assay the heights follow their tracks
    out = draw_locus(client, "chr1:0-50,000", chosen, ["locus-order.value"], height="compact",
                     heights=own, order="assay")
    drawn = [_key(e) for e in arrange([tuple(e) for e in chosen], "assay")]
    rows = out["locus-graph"]["figure"]["layout"]["meta"]["rows"]
    assert {t: top - bottom for t, (bottom, top) in zip(drawn, rows)} == {
        _key(e): {1: 78, 4: 120}.get(i, 36) for i, e in enumerate(chosen)}
    # the list names a track's own height and gives its button the focus
    key = next(k for k in encode_app.callback_map if k.startswith("..locus-order-list.children"))
    out = post_callback(client, outputs_of(encode_app, key),
                        [("locus-tracks", "data", chosen), ("locus-order", "value", "chosen"),
                         ("locus-heights", "data", own), ("locus-height", "value", "compact")],
                        [("locus-order-focus", "data", {"track": _key(chosen[4]),
                                                        "where": "height"})],
                        ["locus-heights.data"])
    rows = out["locus-order-list"]["children"]
    tags = [text_of(c) for r in rows for c in r["props"]["children"]
            if c and "order-height" in c["props"].get("className", "")]
    assert tags == ["normal", "tall"]
    buttons = [c["props"] for r in rows for c in r["props"]["children"][-1]["props"]["children"]
               if c["props"]["id"]["type"] == HEIGHT_BUTTON]
    assert [b["id"]["track"] for b in buttons if b.get("autoFocus")] == [_key(chosen[4])]
    assert buttons[4]["aria-label"].endswith(": tall; make it collapsed")
    assert buttons[0]["aria-label"].endswith(": compact; make it normal")


def test_the_page_reads_own_heights_from_its_address(encode_app, chosen):
    tracks = ",".join(_key(e) for e in chosen)
    with encode_app.server.test_request_context():
        page = locus.layout(tracks=tracks, height="tall",
                            heights=f"{_key(chosen[0])}:collapsed,J999|gone:tall")
    store = next(c for c in page._traverse() if getattr(c, "id", None) == "locus-heights")
    assert store.data == {_key(chosen[0]): "collapsed"}
    radio = next(c for c in page._traverse() if getattr(c, "id", None) == "locus-height")
    assert radio.value == "tall" and [o["value"] for o in radio.options] == [
        "compact", "normal", "tall"]
