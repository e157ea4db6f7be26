"""What the target shows, the notebook shows.

A notebook executed with nbclient in a real kernel (this interpreter) ships its cells to a real
``local`` target; each cell's stored outputs are checked as a notebook would keep them: figures as
``image/png``, tables and ``_repr_html_`` as ``text/html``, displays updated in place, cleared
outputs, streams in order with displays. A real terminal IPython (a subprocess) shows the
``text/plain`` part of the same displays.
"""
import base64
import re
import textwrap

import nbclient
import nbformat
import pytest

from cloudpickle_ipy import demo
from tests.ship.terminal import terminal_ipython

PNG = b"\x89PNG\r\n\x1a\n"
PROMPTS = re.compile(r"^(In \[\d+\]: |\s*\.\.\.: )+")

# name -> cell source; run in this order, in one notebook.
CELLS = {
    "setup": """
        %load_ext cloudpickle_ipy
        from IPython.display import HTML, display
    """,
    "figure_shown": """
        %%cloudpickle_ship local
        import matplotlib.pyplot as plt
        plt.plot([1, 4, 9, 16])
        plt.title("squares")
        plt.show()
        print("after the figure")
    """,
    "figure_inline": """
        %%cloudpickle_ship local
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([3, 1, 2]);
        n_lines = len(ax.lines)
    """,
    "dataframe": """
        %%cloudpickle_ship local
        import pandas as pd
        df = pd.DataFrame({"x": [1, 2, 3], "y": [0.5, 0.25, 0.125]})
        display(df)
        df.describe()
    """,
    "html_value": """
        %%cloudpickle_ship local
        class Badge:
            def __init__(self, text):
                self.text = text

            def _repr_html_(self):
                return f"<span class='badge'>{self.text}</span>"

        Badge("made there")
    """,
    "bundle": """
        %%cloudpickle_ship local
        class Everything:
            def _repr_mimebundle_(self, include=None, exclude=None):
                return {"text/plain": "everything", "text/markdown": "**bold**",
                        "application/json": {"a": [1, 2]}, "text/latex": "$x^2$",
                        "image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg' width='4'/>"}

        display(Everything())
        display({"text/plain": "a widget", "application/vnd.jupyter.widget-view+json": {
            "model_id": "0123", "version_major": 2, "version_minor": 0}}, raw=True)
    """,
    "updated": """
        %%cloudpickle_ship local
        handle = display(HTML("<b>step 0</b>"), display_id=True)
        for i in range(1, 4):
            handle.update(HTML(f"<b>step {i}</b>"))
        status = display("first", display_id="status")
    """,
    "local_same_id": """
        display("shown here, not on the target", display_id="status")
    """,
    "updated_later": """
        %%cloudpickle_ship local
        status.update("second")
    """,
    "live_plot": """
        %%cloudpickle_ship local
        fig, ax = plt.subplots(figsize=(3, 2))
        plot = display(fig, display_id=True)
        for n in range(2, 6):
            ax.plot(range(n))
            plot.update(fig)
        plt.close(fig)
    """,
    "cleared": """
        %%cloudpickle_ship local
        from IPython.display import clear_output
        print("gone")
        display(HTML("<i>gone too</i>"))
        clear_output()
        print("kept")
    """,
    "cleared_wait": """
        %%cloudpickle_ship local
        import time
        for i in range(4):
            clear_output(wait=True)
            print(f"step {i}")
            time.sleep(0.05)
    """,
    "interleaved": """
        %%cloudpickle_ship local
        import sys
        print("one")
        display(HTML("<i>two</i>"))
        print("three")
        print("four", file=sys.stderr)
        display(HTML("<i>five</i>"))
        print("six")
    """,
    "text_bar": """
        %%cloudpickle_ship local
        from tqdm import tqdm
        for _ in tqdm(range(5), mininterval=0, ncols=60):
            time.sleep(0.02)
    """,
    "python_api": """
        import cloudpickle_ipy
        with cloudpickle_ipy.connect("local") as kernel:
            kernel.run("from IPython.display import HTML, display\\n"
                       "display(HTML('<b>from the Python API</b>'))")
    """,
}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Every cell's outputs, as the executed notebook stores them (pieces of a stream joined):
    name -> list of outputs."""
    folder = tmp_path_factory.mktemp("notebook")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(source).strip())
                                         for source in CELLS.values()])
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
    client.kernel_manager_class = demo._this_interpreter()
    client.execute()
    nbformat.write(nb, str(folder / "executed.ipynb"))  # to look at when a check fails
    return {name: joined(cell.outputs) for name, cell in zip(CELLS, nb.cells)}


def joined(cell_outputs):
    """The outputs with consecutive pieces of one stream joined, as a frontend shows them (a
    kernel sends a stream in pieces as it flushes it: ``print("one")`` may arrive as ``"one"``
    and ``"\\n"``, on the target as here)."""
    out = []
    for output in cell_outputs:
        if output.output_type == "stream" and out and out[-1].get("name") == output.name:
            out[-1].text += output.text
        else:
            out.append(output)
    return out


def kinds(cell_outputs):
    """``output_type`` (with the stream's name) of each output, in order."""
    return [o.output_type + (f":{o.name}" if o.output_type == "stream" else "")
            for o in cell_outputs]


def test_a_figure_shown_on_the_target_arrives_as_png_in_its_place(outputs):
    out = outputs["figure_shown"]
    assert kinds(out) == ["display_data", "stream:stdout"]
    assert base64.b64decode(out[0].data["image/png"]).startswith(PNG)
    assert out[0].data["text/plain"] == "<Figure size 640x480 with 1 Axes>"
    assert out[1].text == "after the figure\n"


def test_an_inline_figure_drawn_by_the_target_after_its_run_arrives(outputs):
    out = outputs["figure_inline"]
    assert kinds(out) == ["display_data"]
    assert base64.b64decode(out[0].data["image/png"]).startswith(PNG)
    assert out[0].data["text/plain"] == "<Figure size 300x200 with 1 Axes>"


def test_a_dataframe_displayed_and_returned_shows_as_html(outputs):
    displayed, result = outputs["dataframe"]
    assert displayed.output_type == "display_data" and result.output_type == "execute_result"
    assert "<table" in displayed.data["text/html"] and "0.125" in displayed.data["text/html"]
    assert "<table" in result.data["text/html"] and "mean" in result.data["text/html"]
    assert "mean" in result.data["text/plain"]


def test_the_html_repr_of_the_last_value_is_the_cell_result(outputs):
    (result,) = outputs["html_value"]
    assert result.output_type == "execute_result"
    assert result.data["text/html"] == "<span class='badge'>made there</span>"


def test_the_whole_bundle_arrives_but_widget_views_the_target_owns(outputs):
    everything, widget = outputs["bundle"]
    assert everything.data == {
        "text/plain": "everything", "text/markdown": "**bold**", "application/json": {"a": [1, 2]},
        "text/latex": "$x^2$", "image/svg+xml": "<svg xmlns='http://www.w3.org/2000/svg' width='4'/>"}
    assert widget.data == {"text/plain": "a widget"}


def test_a_display_is_updated_in_place_also_from_a_later_cell(outputs):
    assert kinds(outputs["updated"]) == ["display_data", "display_data"]
    handle, status = outputs["updated"]
    assert handle.data["text/html"] == "<b>step 3</b>"
    assert status.data["text/plain"] == "'second'"  # updated by the cell updated_later
    assert outputs["updated_later"] == []
    # The target's display id "status" is its own: a display of this notebook with the same id
    # is left alone.
    assert outputs["local_same_id"][0].data["text/plain"] == "'shown here, not on the target'"


def test_a_live_plot_is_one_figure_updated_in_place(outputs):
    out = outputs["live_plot"]
    assert kinds(out) == ["display_data"]
    assert base64.b64decode(out[0].data["image/png"]).startswith(PNG)


def test_clear_output_clears_the_local_cell(outputs):
    assert kinds(outputs["cleared"]) == ["stream:stdout"]
    assert outputs["cleared"][0].text == "kept\n"
    assert [o.text for o in outputs["cleared_wait"]] == ["step 3\n"]


def test_streams_stay_streams_in_order_with_displays(outputs):
    out = outputs["interleaved"]
    assert kinds(out) == ["stream:stdout", "display_data", "stream:stdout", "stream:stderr",
                          "display_data", "stream:stdout"], out
    assert [o.get("text") or o.data["text/html"] for o in out] == [
        "one\n", "<i>two</i>", "three\n", "four\n", "<i>five</i>", "six\n"]


def test_a_text_progress_bar_stays_on_one_line(outputs):
    text = "".join(o.text for o in outputs["text_bar"] if o.get("name") == "stderr")
    assert "\r" in text and text.rstrip("\n").count("\n") == 0, text
    assert "5/5" in text.rsplit("\r", 1)[-1]


def test_the_python_api_in_a_notebook_shows_rich_output_too(outputs):
    (shown,) = outputs["python_api"]
    assert shown.data["text/html"] == "<b>from the Python API</b>"


def test_a_terminal_ipython_prints_the_text_of_displays(tmp_path):
    """A real terminal IPython: displays show their text/plain, as any display there does."""
    cells = ["%load_ext cloudpickle_ipy", """%%cloudpickle_ship local
import matplotlib.pyplot as plt
from IPython.display import HTML, display
print("before")
plt.plot([1, 2])
plt.show()
display(HTML("<b>bold</b>"))
h = display("first", display_id=True)
h.update("updated")
print("after")""", """%%cloudpickle_ship local
class Badge:
    def _repr_html_(self):
        return "<b>badge</b>"
    def __repr__(self):
        return "Badge()"
Badge()"""]
    out, _ = terminal_ipython(cells, tmp_path)
    # What was printed, without the prompts echoed before it.
    shown = [PROMPTS.sub("", line) for line in out.splitlines()]
    shown = [line for line in shown if line.strip()]
    start = shown.index("before")
    assert shown[start:start + 6] == ["before", "<Figure size 640x480 with 1 Axes>",
                                      "<IPython.core.display.HTML object>", "'first'",
                                      "'updated'", "after"], out
    assert any(line.endswith("Badge()") and "Out[" in line for line in out.splitlines()), out
    assert "<b>" not in out and "iVBOR" not in out  # no HTML, no base64 image
