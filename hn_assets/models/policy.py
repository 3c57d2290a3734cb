"""The store's discount policy: offer a discount only where it pays.

With p0 the calibrated purchase probability without an offer and p1 the probability with it, an
offer changes expected profit by (p1 - p0) * margin - p1 * discount: the extra buyers bring their
margin, and every buyer with the offer (including those who would have bought anyway) gets the
discount. Offer when that exceeds a cutoff: 0 is the textbook rule; the uplift model learns its
own cutoff on held-out randomised sessions because its estimates are noisy (uplift.choose_cutoff).
"""

from __future__ import annotations


def expected_gain(p0: float, p1: float, margin: float, discount: float) -> float:
    """Expected profit change from offering (currency units of margin and discount)."""
    for name, p in (("p0", p0), ("p1", p1)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability, got {p}")
    if margin < 0 or discount < 0:
        raise ValueError("margin and discount must be non-negative")
    return (p1 - p0) * margin - p1 * discount


def should_offer(p0: float, p1: float, margin: float, discount: float, cutoff: float = 0.0) -> bool:
    return expected_gain(p0, p1, margin, discount) > cutoff
