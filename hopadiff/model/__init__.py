"""The HopaDIFF network and its diffusion machinery (shape letters: B batch, D feature dim,
C classes, W frames; tensors are (B, channels, W)).

    layers.py     grouped pointwise maps, dilated conv + local attention layer, time embedding
    encoder.py    ASFormer/DiffAct encoder (one per branch)
    xlstm.py      HP-xLSTM: mLSTM with the cross-input gate attention between branches
    fourier.py    Fourier condition: our low-pass, the authors' unnormalised DCT
    decoder.py    DiffAct denoising decoder (one per branch)
    schedules.py  beta schedules;  ddim.py  the DDIM sampler (a plain object)
    losses.py     classification, boundary and smoothness losses
    conditions.py the random training conditions (DiffAct's masks and ours)
    fusion.py     how the branches' probabilities become one prediction
    hopadiff.py   HopaDIFF: the two branches wired together, training losses and sampling
"""

from .hopadiff import HopaDIFF

__all__ = ["HopaDIFF"]
