"""download: data/raw in ScanNet v2's layout, synthetic (demo) or linked from a ScanNet copy.

data/raw is built in a temporary sibling and replaces the old one only when complete, so a failed
run keeps the previous data/raw (dvc.yaml marks it persist: DVC must not delete it beforehand).
"""

from common import run

from lgseg.errors import LgsegError
from lgseg.fileio import atomic_dir, remove_stale_temporaries
from lgseg.scannet.link import link_scannet
from lgseg.synthetic import generate

OUT = "data/raw"


def main(params: dict, tracker) -> None:
    data = params["data"]
    remove_stale_temporaries(OUT)  # a killed download's temporary data/raw
    if data["source"] == "synthetic":
        syn = data["synthetic"]
        with atomic_dir(OUT) as tmp:
            generate(tmp, num_scenes=syn["scenes"], seed=syn["seed"], workers=data["workers"])
    elif data["source"] == "scannet":
        if not data.get("scannet_root"):
            raise LgsegError("data.source is 'scannet' but data.scannet_root is empty: set it in "
                             "params.yaml to the folder holding scans/ (or -S data.scannet_root=...)")
        n = link_scannet(data["scannet_root"], OUT)
        print(f"linked {n} files of ScanNet v2 from {data['scannet_root']} into {OUT}")
    else:
        raise LgsegError(f"params.yaml: data.source must be 'synthetic' or 'scannet', not {data['source']!r}")


if __name__ == "__main__":
    run(main)
