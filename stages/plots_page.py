"""Write the page template of `dvc plots show` with Vega, Vega-Lite and Vega-Embed inlined, so that
dvc_plots/index.html draws its charts offline (DVC's own page loads the three from a CDN and stays
blank without internet, as on most clusters).

.dvc/config names the file (``plots.html_template = plots/page.html``, relative to .dvc/); git
ignores it; install.sh runs this script. The scripts are the official minified builds (Vega 5.33.0,
Vega-Lite 5.23.0, Vega-Embed 6.29.0) as the PyPI package django-js-lib-vega-embed ships them (no
dependencies; pinned in requirements.txt); nothing is downloaded here.

    python stages/plots_page.py [--out .dvc/plots/page.html]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

OUT = Path(".dvc/plots/page.html")
PACKAGE = "js_lib_vega_embed"  # the import name of django-js-lib-vega-embed
SCRIPTS = ("vega5.js", "vega-lite5.js", "vega-embed6.js")  # in load order: Vega-Lite and Vega-Embed need Vega
VERSIONS = "Vega 5.33.0, Vega-Lite 5.23.0, Vega-Embed 6.29.0 (django-js-lib-vega-embed 6.29.0.3)"

# DVC fills {plot_divs} (and {refresh_tag} under --refresh); no {scripts}: that is where DVC would
# put its CDN <script src=...> tags.
PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <!-- %(versions)s, inlined by stages/plots_page.py: this page needs no network -->
%(scripts)s
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def script_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"plots_page.py: the Python package django-js-lib-vega-embed is not installed: "
                         f"run ./install.sh (or pip install -r requirements.txt) with {sys.executable}")
    return Path(next(iter(spec.submodule_search_locations))) / "static" / PACKAGE


def page() -> str:
    """The template's text: DVC's page layout with the three scripts inline."""
    folder, tags = script_dir(), []
    for name in SCRIPTS:
        js = (folder / name).read_text(encoding="utf-8")
        if "</script" in js.lower() or "{plot_divs}" in js or "{refresh_tag}" in js:
            raise SystemExit(f"plots_page.py: {folder / name} cannot be inlined: it holds '</script' or "
                             "a DVC placeholder")
        tags.append(f"    <script>/* {name} */\n{js}\n    </script>")
    return PAGE % {"versions": VERSIONS, "scripts": "\n".join(tags)}


def write(out: Path) -> Path:
    """Write the template to ``out`` atomically (a page that DVC reads half-written would be blank)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would keep the page from other users of a shared checkout
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, metavar="PATH",
                        help=f"where to write the template (default: {OUT}, which .dvc/config names)")
    print(f"plots_page.py: wrote {write(parser.parse_args().out)} ({VERSIONS} inline)")


if __name__ == "__main__":
    main()
