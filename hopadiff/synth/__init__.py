"""Synthetic data for tests, demos and benchmarks (``hopadiff-synth``).

    vocab.py     the one vocabulary: shirt colours, sizes, action names, referring texts
    features.py  feature datasets in both layouts (manifest and the authors' release)
    video.py     rendered multi-person stick-figure clips with boxes, labels and an extract manifest
    cli.py       the ``hopadiff-synth`` command

Importing this package imports nothing else: ``vocab`` is plain data, so model builders that
need the words (``hopadiff.features.tiny``) do not pull in the generators.
"""
