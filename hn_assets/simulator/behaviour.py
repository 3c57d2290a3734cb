"""One shopping session: latent intent -> a clickstream, maybe an order, and the ground truth.

Purchase depends on the visitor's propensity and history, price sensitivity, promotions, holidays,
device, channel and local hour; the clickstream shows that intent only noisily (engagement, dwell,
revisits, cart adds), so a model that reads the whole picture beats a one-signal rule.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from hn_assets.simulator.population import CHANNEL_EFFECT

DEVICE_EFFECT = {"desktop": 0.3, "mobile": -0.35, "tablet": 0.0}
# Relative session starts by local hour (evening peak, quiet nights).
HOUR_PROFILE = (
    0.6,
    0.35,
    0.2,
    0.15,
    0.15,
    0.25,
    0.6,
    1.2,
    1.8,
    2.2,
    2.4,
    2.5,
    2.6,
    2.5,
    2.4,
    2.4,
    2.6,
    2.9,
    3.2,
    3.6,
    3.8,
    3.4,
    2.4,
    1.3,
)
HOUR_EFFECT = tuple(-0.4 if h < 6 else 0.25 if 18 <= h <= 22 else 0.0 for h in range(24))


@dataclass
class Visitor:
    visitor_id: str
    country: str
    timezone: str
    currency: str
    device_preference: str
    propensity: float
    price_sensitivity: float
    consent_analytics: bool
    customer: object | None = None  # the Customer when the visitor is one
    sessions: int = 0
    browse_heavy: bool = False  # of the browse_heavy_audience scenario's new audience


@dataclass
class DayContext:
    """What the store looks like on one day (shared by all its sessions)."""

    day_index: int
    catalogue: list
    cum_popularity: list[float]
    by_category: dict[str, list]
    promo_categories: dict[str, float]  # category -> discount pct
    storewide_discount: float
    holiday_countries: set[str]
    shopping_event: bool
    price_shock: bool
    rates: dict[str, float]  # currency -> rate_to_eur
    cfg: object


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def purchase_logit(
    ctx: DayContext, v: Visitor, device: str, channel: str, local_hour: int, offered: bool, noise: float
) -> float:
    """The session's purchase log-odds at the store's usual prices (the intent its behaviour shows).
    The price shock is not in it: it acts at checkout (`plan_session`)."""
    cfg = ctx.cfg
    c = v.customer
    history = 0.0
    if c is not None:
        history = 0.5 + 0.8 * min(c.purchases, 3) / 3
    fav = c.favourite_category if c is not None else None
    promo = 0.6 if (fav and fav in ctx.promo_categories) or ctx.storewide_discount else 0.0
    holiday = (0.35 if v.country in ctx.holiday_countries else 0.0) + (0.8 if ctx.shopping_event else 0.0)
    offer = cfg.offer_uplift_logit * (0.5 + 1.5 * v.price_sensitivity) if offered else 0.0
    return (
        cfg.base_logit
        + v.propensity
        + history
        + min(v.sessions, 5) * 0.08
        + promo
        + holiday
        + DEVICE_EFFECT[device]
        + CHANNEL_EFFECT[channel]
        + HOUR_EFFECT[local_hour]
        + offer
        + noise
    )


@dataclass
class SessionPlan:
    buy: bool  # the session ends in a purchase
    bot: bool
    offered: bool
    p0: float  # P(purchase) without an offer: the ground truth
    p1: float  # P(purchase) with an offer
    # price_shock: the intent at the usual prices, which the session's behaviour follows (None: as
    # `buy` and `p0`). A session that intended to buy browses like one and begins the checkout; at
    # the new prices it completes the purchase with the ratio of the shocked to the usual P(purchase).
    intent: bool | None = None
    intent_p0: float | None = None


def plan_session(
    ctx: DayContext, v: Visitor, device: str, channel: str, local_hour: int, rng: random.Random
) -> SessionPlan:
    cfg = ctx.cfg
    if rng.random() < cfg.bot_share:
        return SessionPlan(False, True, False, 0.0, 0.0)
    noise = rng.gauss(0, 0.5)
    offered = rng.random() < cfg.offer_share
    logit0 = purchase_logit(ctx, v, device, channel, local_hour, False, noise)
    logit1 = purchase_logit(ctx, v, device, channel, local_hour, True, noise)
    p0, p1 = sigmoid(logit0), sigmoid(logit1)
    intent = rng.random() < (p1 if offered else p0)
    if not ctx.price_shock:
        return SessionPlan(intent, False, offered, p0, p1)
    # Base-rate shift: the behaviour is drawn from the intent as before (engagement does not see
    # the price), and the purchase log-odds fall by price_shock_logit x price sensitivity at
    # checkout. The second draw only thins the intending sessions, so P(purchase) is exactly
    # sigmoid(logit - shock): the truth file stays exact.
    shock = cfg.price_shock_logit * v.price_sensitivity
    q0, q1 = sigmoid(logit0 - shock), sigmoid(logit1 - shock)
    buy = intent and rng.random() < (q1 / p1 if offered else q0 / p0)
    return SessionPlan(buy, False, offered, q0, q1, intent=intent, intent_p0=p0)


def _search_query(product, rng: random.Random) -> str:
    words = [product.category.replace("_", " ")]
    if rng.random() < 0.6:
        words.insert(0, product.brand.lower())
    if product.gpu and product.gpu != "integrated" and rng.random() < 0.4:
        words.append(product.gpu.lower())
    if product.ram_gb and rng.random() < 0.2:
        words.append(f"{product.ram_gb}gb")
    return " ".join(words)


def pick_product(ctx: DayContext, v: Visitor, rng: random.Random):
    fav = v.customer.favourite_category if v.customer is not None else None
    if fav and rng.random() < 0.5 and ctx.by_category.get(fav):
        return rng.choice(ctx.by_category[fav])
    return rng.choices(ctx.catalogue, cum_weights=ctx.cum_popularity)[0]


def session_events(ctx: DayContext, v: Visitor, plan: SessionPlan, start_ms: int, rng: random.Random):
    """The (event_type, ms, product, extra) steps of a session, in time order."""
    if plan.bot:
        steps, t = [], start_ms
        for _ in range(rng.randint(25, 120)):
            t += rng.randint(80, 900)
            steps.append(("product_view", t, rng.choice(ctx.catalogue), None))
        return steps
    if v.browse_heavy:
        return browse_heavy_events(ctx, v, plan, start_ms, rng)
    intends = plan.buy if plan.intent is None else plan.intent
    p_usual = plan.p0 if plan.intent_p0 is None else plan.intent_p0
    logit_gap = math.log(p_usual / (1 - p_usual)) - ctx.cfg.base_logit
    eng = sigmoid(logit_gap - 1.5 + rng.gauss(0, 0.3)) + (0.6 if intends else 0.0)
    eng = min(1.0, eng)
    n_steps = 1 + min(60, int(rng.expovariate(1.0 / (1.5 + 9 * eng))))
    t = start_ms
    if rng.random() < 0.7 * eng and not plan.offered:
        # Decided visitors often arrive on a product page (a link from search, an ad or an email).
        first = pick_product(ctx, v, rng)
        steps = [("product_view", t, first, None)]
    else:
        first = None
        steps = [("page_view", t, None, "offer" if plan.offered else rng.choice(("home", "home", "category", "deals")))]
    cart: list = []
    last = first
    p_view, p_search = 0.40 + 0.12 * eng, 0.14
    p_cart = 0.015 + 0.10 * eng + (0.04 if intends else 0.0)
    dwell_mu = math.log(10 + 30 * eng)
    for _ in range(n_steps):
        t += int(1000 * rng.lognormvariate(dwell_mu if last else 1.8, 0.8))
        r = rng.random()
        if last is not None and r < p_cart:
            cart.append(last)
            steps.append(("add_to_cart", t, last, None))
        elif cart and r < p_cart + 0.04:
            steps.append(("remove_from_cart", t, cart.pop(rng.randrange(len(cart))), None))
        elif r < p_cart + 0.04 + p_view:
            revisit = last is not None and rng.random() < 0.25 * eng
            product = last if revisit else pick_product(ctx, v, rng)
            last = product
            steps.append(("product_view", t, product, None))
        elif r < p_cart + 0.04 + p_view + p_search:
            last = pick_product(ctx, v, rng)
            steps.append(("search", t, None, _search_query(last, rng)))
        else:
            steps.append(("page_view", t, None, rng.choice(("category", "deals", "support", "home"))))
    if intends:
        if not cart:
            product = last or pick_product(ctx, v, rng)
            t += int(1000 * rng.lognormvariate(3.0, 0.6))
            cart.append(product)
            steps.append(("add_to_cart", t, product, None))
        t += int(1000 * rng.lognormvariate(3.5, 0.6))
        steps.append(("begin_checkout", t, None, None))
        if plan.buy:  # else: the price shock's abandoned checkout
            t += int(1000 * rng.uniform(60, 420))
            steps.append(("purchase", t, None, tuple(cart)))
    elif cart and rng.random() < 0.3:
        t += int(1000 * rng.lognormvariate(3.5, 0.6))
        steps.append(("begin_checkout", t, None, None))
    return steps


def browse_heavy_events(ctx: DayContext, v: Visitor, plan: SessionPlan, start_ms: int, rng: random.Random):
    """A session of the browse_heavy_audience scenario's new audience: the link between behaviour
    and purchase is turned around (concept drift). Its non-buyers browse long and use the cart as a
    wish list (many product views, cart adds, rarely a checkout); its buyers know what they want,
    arrive from a search and check out within a few steps. Whether the session buys is decided
    before (`plan`, from the same purchase model as everyone's), so the ground truth stays exact."""
    t = start_ms
    if plan.buy:
        last = pick_product(ctx, v, rng)
        steps = [("search", t, None, _search_query(last, rng))]
        for _ in range(int(rng.expovariate(1.0 / 1.2))):
            t += int(1000 * rng.lognormvariate(2.8, 0.6))
            steps.append(("product_view", t, last, None))
        t += int(1000 * rng.lognormvariate(2.5, 0.6))
        steps.append(("product_view", t, last, None))
        t += int(1000 * rng.lognormvariate(2.5, 0.6))
        steps.append(("add_to_cart", t, last, None))
        t += int(1000 * rng.lognormvariate(2.5, 0.5))
        steps.append(("begin_checkout", t, None, None))
        t += int(1000 * rng.uniform(60, 300))
        steps.append(("purchase", t, None, (last,)))
        return steps
    steps = [("page_view", t, None, "offer" if plan.offered else rng.choice(("home", "category", "deals")))]
    cart: list = []
    last = None
    for _ in range(6 + min(54, int(rng.expovariate(1.0 / 14)))):
        t += int(1000 * rng.lognormvariate(2.6 if last else 1.8, 0.7))
        r = rng.random()
        if last is not None and r < 0.16:
            cart.append(last)
            steps.append(("add_to_cart", t, last, None))
        elif cart and r < 0.20:
            steps.append(("remove_from_cart", t, cart.pop(rng.randrange(len(cart))), None))
        elif r < 0.82:
            last = last if last is not None and rng.random() < 0.2 else pick_product(ctx, v, rng)
            steps.append(("product_view", t, last, None))
        elif r < 0.92:
            last = pick_product(ctx, v, rng)
            steps.append(("search", t, None, _search_query(last, rng)))
        else:
            steps.append(("page_view", t, None, rng.choice(("category", "deals", "support", "home"))))
    if cart and rng.random() < 0.05:
        t += int(1000 * rng.lognormvariate(3.5, 0.6))
        steps.append(("begin_checkout", t, None, None))
    return steps
