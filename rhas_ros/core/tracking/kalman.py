"""The tracker's motion model: a constant-velocity Kalman filter on a person's box.

The SORT/DeepSORT formulation: measurement z = (centre x, centre y, aspect w/h, height), state
(z, dz/dt) per sampled frame, position and velocity noise proportional to the box height (a
person near the camera moves more pixels per frame). Boxes are (x, y, w, h) pixels.
"""

from __future__ import annotations

import numpy as np

POS_STD, VEL_STD = 1.0 / 20, 1.0 / 160  # position / velocity noise, in box heights per frame
ASPECT_STD, ASPECT_VEL_STD = 1e-2, 1e-5  # the aspect's process noise (it barely drifts) ...
ASPECT_MEASURE_STD = 1e-1  # ... and its measurement noise (a walking person's box swings)
INIT_POS_SCALE, INIT_VEL_SCALE = 2.0, 10.0  # a new track's uncertainty, in multiples of the noise above
GATE_DIMS = [0, 1, 3]  # the gate looks at centre x, centre y and height ...
GATE_CHI2 = 11.345  # ... at the chi-square 0.99 quantile for 3 degrees of freedom


def xywh_to_z(b) -> np.ndarray:
    x, y, w, h = (float(v) for v in b)
    return np.array([x + w / 2, y + h / 2, w / max(h, 1e-6), h])


def z_to_xywh(z) -> tuple[float, float, float, float]:
    cx, cy, a, h = (float(v) for v in z[:4])
    h = max(h, 1e-3)
    w = max(a, 1e-3) * h
    return (cx - w / 2, cy - h / 2, w, h)


class BoxKalman:
    """predict / update / gate_distance on (mean (8,), covariance (8, 8)); stateless."""

    F = np.eye(8) + np.eye(8, k=4)  # x' = x + v
    H = np.eye(4, 8)  # the box is measured, its velocity is not

    @staticmethod
    def _measure_std(h: float) -> list[float]:
        return [POS_STD * h, POS_STD * h, ASPECT_MEASURE_STD, POS_STD * h]

    @classmethod
    def initiate(cls, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = z[3]
        p, v = INIT_POS_SCALE * POS_STD * h, INIT_VEL_SCALE * VEL_STD * h
        std = [p, p, ASPECT_STD, p, v, v, ASPECT_VEL_STD, v]
        return np.r_[z, np.zeros(4)], np.diag(np.square(std))

    @classmethod
    def predict(cls, mean, cov):
        h = mean[3]
        p, v = POS_STD * h, VEL_STD * h
        q = np.square([p, p, ASPECT_STD, p, v, v, ASPECT_VEL_STD, v])
        return cls.F @ mean, cls.F @ cov @ cls.F.T + np.diag(q)

    @classmethod
    def gate_distance(cls, mean, cov, zs: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of measurements zs (M, 4) from the predicted measurement, on
        centre and height (the aspect of a walking person's box swings too much to gate on)."""
        r = np.square(cls._measure_std(mean[3]))
        s = (cls.H @ cov @ cls.H.T + np.diag(r))[np.ix_(GATE_DIMS, GATE_DIMS)]
        d = zs[:, GATE_DIMS] - mean[GATE_DIMS]
        return np.einsum("mi,ij,mj->m", d, np.linalg.inv(s), d)

    @classmethod
    def update(cls, mean, cov, z):
        r = np.diag(np.square(cls._measure_std(mean[3])))
        s = cls.H @ cov @ cls.H.T + r
        gain = np.linalg.solve(s, cls.H @ cov).T  # cov H^T S^-1 (S and cov symmetric)
        return mean + gain @ (z - cls.H @ mean), cov - gain @ s @ gain.T
