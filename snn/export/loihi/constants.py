"""Loihi 2 / Lava fixed-point constants and value ranges, shared by the quantizer, the emulation and QAT.

Sources: lava/proc/lif/models.py (AbstractPyLifModelFixed, PyLifModelBitAcc), lava/proc/dense/models.py
(AbstractPyDenseModelBitAcc), lava/utils/weightutils.py.
"""
DECAY_SHIFT = 12            # decays are d / 2**12
DECAY_UNITY = 1 << DECAY_SHIFT
VTH_SHIFT = 6               # effective threshold vth << 6
ACT_SHIFT = 6               # synaptic input a << 6 before it enters u
MAX_UV = 1 << 23            # u, v are 24-bit signed
RANGES = {
    "weight_mantissa": (-128, 127),   # Lava weight = 2 * mantissa (sign mode MIXED, 8 weight bits)
    "weight_exp": (-8, 7),
    "du": (0, 4095),                   # effective current decay (du + 1) / 4096
    "dv": (0, 4095),                   # effective voltage decay dv / 4096
    "vth": (0, (1 << 17) - 1),
    "bias_mant": (-4096, 4095),
    "bias_exp": (0, 7),
}
