"""Runnable extras around the node: the demo (``rhas_demo``), its offline-built assets, and the
clip player that feeds a clip to the node over DDS (also the DDS tests' client base)."""
