"""Calling the app's callbacks the way the browser does, without a browser."""

from __future__ import annotations

import json


def _item(spec):
    """A request's input: ``(id, prop, value)``, or a list of them for a wildcard (ALL)."""
    if isinstance(spec, list):
        return [_item(s) for s in spec]
    i, p, v = spec
    return {"id": i, "property": p, "value": v}


def prop_id(component_id, prop: str) -> str:
    """How the browser names a changed property (a dict id as sorted, compact JSON)."""
    if isinstance(component_id, dict):
        component_id = json.dumps(component_id, sort_keys=True, separators=(",", ":"))
    return f"{component_id}.{prop}"


def post_callback(client, outputs, inputs, state=(), changed=()):
    """Call a callback the way the browser does; returns {id: {prop: value}} or raises.

    An input is ``(id, prop, value)``, or a list of them for a pattern-matching (ALL) input."""
    outs = [{"id": i, "property": p} for i, p in outputs]
    key = (f"{outputs[0][0]}.{outputs[0][1]}" if len(outputs) == 1
           else ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..")
    payload = {
        "output": key,
        "outputs": outs[0] if len(outs) == 1 else outs,
        "inputs": [_item(spec) for spec in inputs],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
        "changedPropIds": list(changed),
    }
    r = client.post("/_dash-update-component", json=payload)
    if r.status_code == 204:
        return {}
    assert r.status_code == 200, r.data[:500]
    return json.loads(r.data)["response"]


def outputs_of(app, first: str) -> list[tuple[str, str]]:
    """The outputs of the callback whose first output is ``first`` ("id.prop"), as the browser
    names them: an ``allow_duplicate`` output's property carries its "@hash" suffix."""
    key = next(k for k in app.callback_map if k == first or k.startswith(f"..{first}..."))
    return [tuple(part.rsplit(".", 1)) for part in key.strip(".").split("...")]


def text_of(component) -> str:
    """All text inside a serialized Dash component tree."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, list):
        return " ".join(text_of(c) for c in component)
    if isinstance(component, dict):
        return text_of(component.get("props", {}).get("children"))
    if hasattr(component, "to_plotly_json"):  # a component object
        return text_of(component.to_plotly_json())
    return ""


#: The track picker's callback (``dashboard.pages.locus_picker``): its outputs and inputs.
PICKER_OUTPUTS = [("locus-tracks", "data"), ("locus-picker", "figure"),
                  ("picker-grid-lines", "style"),
                  ("locus-picked-count", "children"), ("locus-chosen", "value"),
                  ("locus-chosen", "options"),
                  ("picker-summary", "children"), ("picker-count", "children"),
                  ("picker-row-values", "options"), ("picker-col-values", "options"),
                  ("picker-status", "options")]


def picker_inputs(click=None, listed=None, color="status", bio_text=None, assay_text=None,
                  biosamples=None, row_values=None, col_values=None, statuses=None,
                  grouping=("rows", "cols"), order="name") -> list:
    """The picker callback's inputs, as the page sends them."""
    return [("locus-picker", "clickData", click), ("locus-clear", "n_clicks", None),
            ("locus-chosen", "value", listed), ("locus-picker-color", "value", color),
            ("picker-bio-text", "value", bio_text), ("picker-assay-text", "value", assay_text),
            ("picker-biosamples", "value", biosamples),
            ("picker-row-values", "value", row_values),
            ("picker-col-values", "value", col_values), ("picker-status", "value", statuses),
            ("picker-group", "value", list(grouping)), ("picker-order", "value", order)]


def draw_locus(client, text, tracks, changed="locus-go.n_clicks", current=None,
               selection=None, region=None, dragged=None, scale="assay", order="chosen",
               height="normal", heights=None):
    """The locus page's draw callback, as the browser calls it; ``changed``: the input (or
    the list of inputs) that fired it."""
    outputs = [("locus-graph", "figure"), ("locus-current", "data"), ("locus-input", "value"),
               ("locus-span", "children"), ("locus-metrics", "children"),
               ("locus-url", "data"), ("locus-alert", "children")]
    inputs = [("locus-go", "n_clicks", 1), ("locus-input", "n_submit", None),
              ("locus-in", "n_clicks", None), ("locus-out", "n_clicks", None),
              ("locus-left", "n_clicks", None), ("locus-right", "n_clicks", None),
              ("locus-gene-click", "data", None), ("locus-drag", "data", dragged),
              ("locus-tracks", "data", tracks), ("locus-sel-region", "value", region),
              ("locus-height", "value", height), ("locus-order", "value", order),
              ("locus-scale", "value", scale), ("locus-heights", "data", heights)]
    if changed == "locus-in.n_clicks":
        inputs[2] = ("locus-in", "n_clicks", 1)
    state = [("locus-input", "value", text), ("locus-current", "data", current),
             ("locus-selection", "data", selection)]
    return post_callback(client, outputs, inputs, state,
                         [changed] if isinstance(changed, str) else changed)
