"""download: data/raw in ScanNet v2's layout, synthetic (demo) or linked from a ScanNet copy; or, with
data.source: processed, data/raw linked from a folder already in Pointcept's processed layout.

data/raw is built in a temporary sibling and replaces the old one only when complete, so a failed
run keeps the previous data/raw (dvc.yaml marks it persist: DVC must not delete it beforehand).
"""

from pathlib import Path

from common import run

from lgseg.errors import LgsegError
from lgseg.fileio import atomic_dir, remove_stale_temporaries
from lgseg.scannet.link import link_scannet
from lgseg.scene_io import link_processed
from lgseg.synthetic import generate, params_options

OUT = "data/raw"
PROCESSED = "data/processed"  # the preprocess stage's output, never a source of data/raw


def main(params: dict, tracker) -> None:
    data = params["data"]
    remove_stale_temporaries(OUT)  # a killed download's temporary data/raw
    if data["source"] == "synthetic":
        syn = data["synthetic"]
        with atomic_dir(OUT) as tmp:
            generate(tmp, workers=data["workers"], **params_options(syn))
    elif data["source"] == "scannet":
        if not data.get("scannet_root"):
            raise LgsegError("data.source is 'scannet' but data.scannet_root is empty: set it in "
                             "params.yaml to the folder holding scans/ (or -S data.scannet_root=...)")
        n = link_scannet(data["scannet_root"], OUT)
        print(f"linked {n} files of ScanNet v2 from {data['scannet_root']} into {OUT}")
    elif data["source"] == "processed":
        if not data.get("processed_root"):
            raise LgsegError("data.source is 'processed' but data.processed_root is empty: set it in params.yaml "
                             "to a folder in Pointcept's ScanNet200 layout (or -S data.processed_root=...)")
        root = Path(data["processed_root"]).expanduser().resolve()
        for own in (OUT, PROCESSED):  # replaced by this stage, or deleted by DVC before preprocess runs
            if root == Path(own).resolve() or Path(own).resolve() in root.parents:
                raise LgsegError(f"data.processed_root ({root}) is in {own}, a pipeline output: point it at "
                                 f"a folder outside {OUT} and {PROCESSED}")
        scenes = link_processed(root, OUT)
        counts = ", ".join(f"{split} {n}" for split, n in scenes.items())
        print(f"linked the scenes of {data['processed_root']} ({counts}) into {OUT}")
    else:
        raise LgsegError("params.yaml: data.source must be 'synthetic', 'scannet' or 'processed', "
                         f"not {data['source']!r}")


if __name__ == "__main__":
    run(main)
