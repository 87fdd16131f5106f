"""ScanNet's RGB-D frames: the ``.sens`` stream (``sens``), the exported frame folder (``layout``) and
the exporter from one to the other (``export``). Light on purpose: numpy, Pillow and tqdm, no torch.
"""
