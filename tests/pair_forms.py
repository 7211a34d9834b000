"""A user-written pair form for the CustomPair tests: φ = A exp(−r/ρ) − C/r⁶ (Buckingham)."""

import torch


def buckingham(r, p):
    return p["A"] * torch.exp(-r / p["rho"]) - p["C"] / r**6
