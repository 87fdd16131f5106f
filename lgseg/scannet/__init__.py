"""ScanNet200 facts (classes, splits), the raw ScanNet reader and its preprocessing."""
