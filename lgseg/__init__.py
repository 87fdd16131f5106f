"""lgseg: language-grounded 3D semantic segmentation on ScanNet200."""

__version__ = "0.1.0"
