"""The demo world's size: objects per room of each split, guaranteed instances per class and RGB-D
frames recorded per scene.

params.yaml's ``data.synthetic`` section holds the same values. Kept apart from ``write`` and
without imports: ``lgseg``'s command line shows them as ``synth``'s defaults when it builds its
parser, and every command (``lgseg preprocess`` on one scene included) would otherwise pay for
importing the generator.
"""

OBJECTS = {"train": 62, "val": 32, "test": 24}
TRAIN_MIN = {"head": 10, "common": 10, "tail": 5}
VAL_MIN = 1
FRAMES = 12
