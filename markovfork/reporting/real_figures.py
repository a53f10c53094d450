"""The figure of ``markovfork real-fit``: base and tuned measured pass@k against log k, each
method's predicted tuned curve, and the Markov map's bootstrap band (same conventions as
:mod:`markovfork.reporting.figures`: a table in, a Figure out, no pyplot state)."""

from __future__ import annotations

__all__ = ["real_fit_figure"]

STYLES = {"markov": ("tab:blue", "-"), "logit": ("tab:green", "--"), "beta_binomial": ("tab:orange", ":"),
          "plug_in": ("tab:gray", "-.")}


def real_fit_figure(table, summary):
    """``table``: one row per k (``base_measured``, ``tuned_measured``, ``<method>_tuned``, and the
    Markov band ``markov_tuned_lo``/``_hi``); ``summary``: the labels, methods and fit settings."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    k = table["k"].to_numpy()
    ax.plot(k, table["base_measured"], color="k", lw=1.6, label=f"{summary['base_label']} measured")
    ax.plot(k, table["tuned_measured"], color="tab:red", lw=1.6, label=f"{summary['tuned_label']} measured")
    for name in summary["methods"]:
        colour, ls = STYLES[name]
        ax.plot(k, table[f"{name}_tuned"], color=colour, ls=ls, lw=1.2, label=f"{name} predicted")
        if name == "markov" and summary["n_boot"]:
            ax.fill_between(k, table["markov_tuned_lo"], table["markov_tuned_hi"], color=colour, alpha=0.2, lw=0)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k")
    fitted = f"fitted on {summary['fitted_on_n']} samples/problem" if summary["subsample"] else "fitted on all samples"
    ax.set_title(f"{summary['tuned_label']} vs {summary['base_label']}: {fitted}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
