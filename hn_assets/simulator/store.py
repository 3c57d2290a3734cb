"""The day loop: the store's visitors shop, buy and change their minds; every feed is exported."""

from __future__ import annotations

import csv
import itertools
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tqdm import tqdm

from hn_assets.simulator.behaviour import HOUR_PROFILE, DayContext, Visitor, plan_session, session_events
from hn_assets.simulator.catalogue import build_catalogue
from hn_assets.simulator.config import SimulationConfig
from hn_assets.simulator.external import (
    COMPETITORS,
    RateWalk,
    calendar_rows,
    holidays_on,
    plan_promotions,
    shopping_event,
)
from hn_assets.simulator.population import CHANNEL_WEIGHTS, COUNTRIES, Customer, customer_record, new_customer
from hn_assets.simulator.writer import LandingWriter

SCHEMA_VERSION = 1  # the version of the landing format this exporter writes
SOURCE = "hn_store"
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_HOURS = list(range(24))
_CHANNELS, _CHANNEL_W = list(CHANNEL_WEIGHTS), list(CHANNEL_WEIGHTS.values())
_STORES = ("S-BER", "S-MUC", "S-PAR")
PRODUCT_COLUMNS = [
    "schema_version",
    "product_id",
    "snapshot_date",
    "name",
    "category",
    "brand",
    "cpu",
    "ram_gb",
    "storage_gb",
    "gpu",
    "screen_inches",
    "price_tier",
    "list_price",
    "unit_cost",
    "is_active",
]


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def utc_day(ms: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + ms // 86_400_000)


@dataclass
class SimulationSummary:
    days: int = 0
    sessions: int = 0
    purchases: int = 0
    events: int = 0
    bots: int = 0
    records: dict = field(default_factory=dict)
    dirt: dict = field(default_factory=dict)
    files: int = 0

    @property
    def conversion_rate(self) -> float:
        return self.purchases / max(1, self.sessions - self.bots)


class StoreSimulation:
    def __init__(self, cfg: SimulationConfig, out_dir: Path):
        self.cfg = cfg
        self.out_dir = out_dir
        self.rng = random.Random(f"hn-{cfg.seed}")
        self.catalogue = build_catalogue(cfg.products, random.Random(f"hn-{cfg.seed}-catalogue"))
        self.categories = sorted({p.category for p in self.catalogue})
        self.by_category = {c: [p for p in self.catalogue if p.category == c] for c in self.categories}
        self.cum_popularity = list(itertools.accumulate(p.popularity for p in self.catalogue))
        self.writer = LandingWriter(out_dir / "landing", cfg.dirty_rate, random.Random(f"hn-{cfg.seed}-dirt"))
        self.customers: list[Customer] = []
        self.visitors: list[Visitor] = []
        self.anonymous: list[Visitor] = []
        self.browse_heavy: list[Visitor] = []  # the browse_heavy_audience scenario's new audience
        self.rates = RateWalk(random.Random(f"hn-{cfg.seed}-rates"))
        self.promotions = plan_promotions(
            cfg.start_date, cfg.days, self.categories, random.Random(f"hn-{cfg.seed}-promos"), SCHEMA_VERSION
        )
        self.event_seq = itertools.count(1)
        self.order_seq = itertools.count(1)
        self.summary = SimulationSummary()
        self.truth_rows: list[tuple] = []
        self._zones: dict[str, ZoneInfo] = {}

    # ---- people ---------------------------------------------------------------------------
    def _add_customer(self, signup: date, rng: random.Random, young_mobile: bool = False) -> Customer:
        c = new_customer(len(self.customers), signup, rng, young_mobile=young_mobile, categories=tuple(self.categories))
        if young_mobile:
            c.visit_rate *= 2.5
        self.customers.append(c)
        self.visitors.append(
            Visitor(
                c.visitor_id,
                c.country,
                c.timezone,
                c.currency,
                c.device_preference,
                c.propensity,
                c.price_sensitivity,
                c.consent_analytics,
                customer=c,
            )
        )
        return c

    def _anonymous_visitor(self, rng: random.Random) -> Visitor:
        if self.anonymous and rng.random() < 0.3:
            return rng.choice(self.anonymous)
        country = rng.choices(list(COUNTRIES), [c[2] for c in COUNTRIES.values()])[0]
        tz, currency, _, _ = COUNTRIES[country]
        v = Visitor(
            f"v-{rng.getrandbits(48):012x}",
            country.split("-")[0],
            tz,
            currency,
            rng.choice(("desktop", "mobile", "mobile", "tablet")),
            rng.gauss(-0.9, 0.9),
            rng.betavariate(2, 3),
            rng.random() < 0.7,
        )
        self.anonymous.append(v)
        return v

    def _browse_heavy_visitor(self, rng: random.Random) -> Visitor:
        """A visitor of the browse_heavy_audience scenario: new to the store (not a customer), mostly
        on mobile, from social campaigns; about as likely to buy as the store's usual visitor, but
        browsing in another way (behaviour.browse_heavy_events)."""
        if self.browse_heavy and rng.random() < 0.3:
            return rng.choice(self.browse_heavy)
        country = rng.choices(list(COUNTRIES), [c[2] for c in COUNTRIES.values()])[0]
        tz, currency, _, _ = COUNTRIES[country]
        v = Visitor(
            f"v-{rng.getrandbits(48):012x}",
            country.split("-")[0],
            tz,
            currency,
            rng.choice(("mobile", "mobile", "mobile", "desktop", "tablet")),
            rng.gauss(1.0, 0.9),
            rng.betavariate(2, 3),
            rng.random() < 0.7,
            browse_heavy=True,
        )
        self.browse_heavy.append(v)
        return v

    def _zone(self, name: str) -> ZoneInfo:
        if name not in self._zones:
            self._zones[name] = ZoneInfo(name)
        return self._zones[name]

    # ---- one day ---------------------------------------------------------------------------
    def _context(self, d: int, day: date, rates: dict) -> DayContext:
        active = [p for p in self.promotions if p["start_date"] <= day.isoformat() <= p["end_date"]]
        promo_categories = {p["category"]: p["discount_pct"] for p in active if p["category"]}
        storewide = max([p["discount_pct"] for p in active if not p["category"]], default=0.0)
        return DayContext(
            day_index=d,
            catalogue=self.catalogue,
            cum_popularity=self.cum_popularity,
            by_category=self.by_category,
            promo_categories=promo_categories,
            storewide_discount=storewide,
            holiday_countries=set(holidays_on(day)),
            shopping_event=shopping_event(day) is not None,
            price_shock=self.cfg.scenario == "price_shock" and d >= self.cfg.drift_start_day,
            rates=rates,
            cfg=self.cfg,
        )

    def _sale_price(self, ctx: DayContext, product) -> float:
        pct = max(ctx.promo_categories.get(product.category, 0.0), ctx.storewide_discount)
        shock = 1.2 if ctx.price_shock else 1.0
        return round(product.list_price * shock * (1 - pct / 100), 2)

    def run_day(self, d: int) -> None:
        cfg, writer = self.cfg, self.writer
        day = cfg.start_date + timedelta(days=d)
        rng = random.Random(f"hn-{cfg.seed}-day-{d}")
        rates = self.rates.step()
        writer.write_csv(
            "exchange_rates",
            day,
            ["schema_version", "date", "currency", "rate_to_eur"],
            [
                {"schema_version": SCHEMA_VERSION, "date": day.isoformat(), "currency": c, "rate_to_eur": r}
                for c, r in sorted(rates.items())
            ],
        )
        ctx = self._context(d, day, rates)
        drifting = cfg.scenario == "young_mobile_influx" and d >= cfg.drift_start_day
        signups = max(0, round(rng.gauss(cfg.users * 0.002, 1.0))) + (round(cfg.users * 0.012) if drifting else 0)
        for i in range(signups):
            c = self._add_customer(day, rng, young_mobile=drifting and i >= signups // 4)
            self._write_customer(c, f"{day.isoformat()}T{rng.randint(6, 22):02d}:{rng.randint(0, 59):02d}:00Z", day)
        self._consent_changes(day, rng)
        cum_visits = list(itertools.accumulate(v.customer.visit_rate for v in self.visitors))
        factor = (1.15 if day.weekday() >= 5 else 1.0) * (1.8 if ctx.shopping_event else 1.0)
        n_sessions = max(1, round(cfg.sessions_per_day * factor * rng.gauss(1.0, 0.05)))
        audience = cfg.scenario == "browse_heavy_audience" and d >= cfg.drift_start_day
        for _ in range(n_sessions):
            if audience and rng.random() < cfg.browse_heavy_share:
                visitor = self._browse_heavy_visitor(rng)
            elif rng.random() < cfg.anonymous_share:
                visitor = self._anonymous_visitor(rng)
            else:
                visitor = rng.choices(self.visitors, cum_weights=cum_visits)[0]
            self._session(ctx, day, visitor, rng)
        self._pos_orders(ctx, day, rng)
        self._catalogue_feeds(ctx, day, rng)
        writer.flush_json(before=day - timedelta(days=1))
        self.summary.days += 1

    def _write_customer(self, c: Customer, updated_at: str, day: date) -> None:
        self.writer.add_json("customers", day, customer_record(c, updated_at, SCHEMA_VERSION))

    def _consent_changes(self, day: date, rng: random.Random) -> None:
        for _ in range(max(0, round(len(self.customers) * 0.001))):
            c = rng.choice(self.customers)
            flag = rng.choice(("consent_analytics", "consent_personalization", "consent_marketing"))
            setattr(c, flag, not getattr(c, flag))
            if flag == "consent_analytics":
                next(v for v in self.visitors if v.customer is c).consent_analytics = c.consent_analytics
            self._write_customer(c, f"{day.isoformat()}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:30Z", day)

    # ---- sessions and orders -------------------------------------------------------------
    def _session(self, ctx: DayContext, day: date, v: Visitor, rng: random.Random) -> None:
        c: Customer | None = v.customer
        device = v.device_preference if rng.random() < 0.75 else rng.choice(("desktop", "mobile", "tablet"))
        channel = (
            c.acquisition_channel if c is not None and rng.random() < 0.35 else rng.choices(_CHANNELS, _CHANNEL_W)[0]
        )
        if channel == "email" and (c is None or not c.consent_marketing):
            channel = "direct"
        if v.browse_heavy:
            channel = rng.choices(("social", "tiktok_ads", "organic_search"), (0.5, 0.2, 0.3))[0]
        hour = rng.choices(_HOURS, HOUR_PROFILE)[0]
        local = datetime(
            day.year, day.month, day.day, hour, rng.randint(0, 59), rng.randint(0, 59), tzinfo=self._zone(v.timezone)
        )
        start_ms = int(local.timestamp() * 1000) + rng.randint(0, 999)
        plan = plan_session(ctx, v, device, channel, hour, rng)
        steps = session_events(ctx, v, plan, start_ms, rng)
        logged_in = c is not None and not plan.bot and rng.random() < 0.7
        base = {
            "schema_version": SCHEMA_VERSION,
            "visitor_id": v.visitor_id,
            "client_session_id": f"cs-{rng.getrandbits(40):010x}",
            "user_id": c.customer_id if logged_in else None,
            "analytics_consent": v.consent_analytics,
            "device": device,
            "channel": channel,
            "country": v.country,
            "timezone": v.timezone,
            "source": SOURCE,
        }
        for event_type, ms, product, extra in steps:
            order_id = None
            if event_type == "purchase":
                order_id = self._order(ctx, ms, c if logged_in else None, v, extra, rng)
            record = {
                "schema_version": SCHEMA_VERSION,
                "event_id": f"e{next(self.event_seq):011d}",
                "event_type": event_type,
                "event_timestamp": iso_ms(ms),
                **base,
                "product_id": product.product_id if product else None,
                "category": product.category if product else None,
                "brand": product.brand if product else None,
                "price": self._sale_price(ctx, product) if product else None,
                "search_query": extra if event_type == "search" else None,
                "page_type": extra if event_type == "page_view" else None,
                "order_id": order_id,
            }
            self.writer.add_json("clickstream_events", utc_day(ms), record, dirty=True)
        s = self.summary
        s.sessions += 1
        s.events += len(steps)
        s.bots += plan.bot
        s.purchases += steps[-1][0] == "purchase"
        v.sessions += 1
        self.truth_rows.append(
            (
                base["client_session_id"],
                v.visitor_id,
                iso_ms(start_ms),
                int(plan.bot),
                int(plan.offered),
                round(plan.p0, 6),
                round(plan.p1, 6),
                int(steps[-1][0] == "purchase"),
            )
        )

    def _order(
        self,
        ctx: DayContext,
        ms: int,
        c: Customer | None,
        v: Visitor,
        cart: tuple,
        rng,
        channel: str = "web",
        store_id: str | None = None,
    ) -> str:
        order_id = f"O{next(self.order_seq):08d}"
        currency = v.currency if channel == "web" else "EUR"
        rate = ctx.rates[currency]
        ts = iso_ms(ms)
        total = discount_total = 0.0
        for line, product in enumerate(cart, start=1):
            qty = 1 if product.is_laptop else rng.choice((1, 1, 1, 2))
            unit_eur = product.list_price * (1.2 if ctx.price_shock else 1.0)
            sale_eur = self._sale_price(ctx, product)
            unit, discount = round(unit_eur / rate, 2), round((unit_eur - sale_eur) * qty / rate, 2)
            total += unit * qty - discount
            discount_total += discount
            product.stock = max(0, product.stock - qty)
            self.writer.add_json(
                "order_items",
                utc_day(ms),
                {
                    "schema_version": SCHEMA_VERSION,
                    "order_id": order_id,
                    "line_number": line,
                    "order_timestamp": ts,
                    "product_id": product.product_id,
                    "quantity": qty,
                    "unit_price": unit,
                    "discount_amount": discount,
                    "currency": currency,
                },
            )
        if c is not None:
            c.purchases += 1
        self.writer.add_json(
            "orders",
            utc_day(ms),
            {
                "schema_version": SCHEMA_VERSION,
                "order_id": order_id,
                "customer_id": c.customer_id if c is not None else None,
                "order_timestamp": ts,
                "order_channel": channel,
                "store_id": store_id,
                "payment_type": rng.choice(
                    ("card", "paypal", "klarna", "bank_transfer") if channel == "web" else ("card", "cash")
                ),
                "currency": currency,
                "discount_amount": round(discount_total, 2),
                "total_amount": round(total, 2),
                "shipping_email": c.email if c is not None and channel == "web" else None,
                "shipping_address": f"{rng.randint(1, 200)} Example Street" if channel == "web" else None,
                "source": SOURCE,
            },
            dirty=True,
        )
        return order_id

    def _pos_orders(self, ctx: DayContext, day: date, rng: random.Random) -> None:
        eu = [v for v in self.visitors if v.currency == "EUR"]
        for _ in range(max(0, round(rng.gauss(self.cfg.sessions_per_day * 0.004, 1)))):
            v = rng.choice(eu) if eu else self._anonymous_visitor(rng)
            local = datetime(
                day.year, day.month, day.day, rng.randint(9, 19), rng.randint(0, 59), tzinfo=self._zone("Europe/Berlin")
            )
            cart = tuple(rng.choices(self.catalogue, cum_weights=self.cum_popularity, k=rng.randint(1, 2)))
            known = v.customer if rng.random() < 0.5 else None
            self._order(ctx, int(local.timestamp() * 1000), known, v, cart, rng, "pos", rng.choice(_STORES))

    # ---- catalogue, stock, competitors -------------------------------------------------------
    def _catalogue_feeds(self, ctx: DayContext, day: date, rng: random.Random) -> None:
        iso = day.isoformat()
        shock = 1.2 if ctx.price_shock else 1.0
        self.writer.write_csv(
            "products",
            day,
            PRODUCT_COLUMNS,
            [
                {
                    "schema_version": SCHEMA_VERSION,
                    "product_id": p.product_id,
                    "snapshot_date": iso,
                    "name": p.name,
                    "category": p.category,
                    "brand": p.brand,
                    "cpu": p.cpu,
                    "ram_gb": p.ram_gb,
                    "storage_gb": p.storage_gb,
                    "gpu": p.gpu,
                    "screen_inches": p.screen_inches,
                    "price_tier": p.price_tier,
                    "list_price": round(p.list_price * shock, 2),
                    "unit_cost": p.unit_cost,
                    "is_active": True,
                }
                for p in self.catalogue
            ],
        )
        inventory = []
        for p in self.catalogue:
            received = rng.randint(20, 60) if p.stock < 5 else 0
            p.stock += received
            inventory.append(
                {
                    "schema_version": SCHEMA_VERSION,
                    "product_id": p.product_id,
                    "snapshot_date": iso,
                    "stock_level": p.stock,
                    "units_received": received,
                }
            )
        self.writer.write_csv("inventory", day, list(inventory[0]), inventory)
        prices = [
            {
                "schema_version": SCHEMA_VERSION,
                "product_id": p.product_id,
                "competitor": comp,
                "price_date": iso,
                "price": round(p.list_price * rng.uniform(0.88, 1.08), 2),
                "currency": "EUR",
            }
            for p in self.catalogue
            for comp in COMPETITORS
            if rng.random() < 0.7
        ]
        self.writer.write_csv("competitor_prices", day, list(prices[0]), prices)

    # ---- the whole run ---------------------------------------------------------------------------
    def run(self, progress: bool = False) -> SimulationSummary:
        cfg = self.cfg
        setup_rng = random.Random(f"hn-{cfg.seed}-customers")
        for _ in range(cfg.users):
            self._add_customer(cfg.start_date - timedelta(days=setup_rng.randint(1, 900)), setup_rng)
        opening = f"{cfg.start_date.isoformat()}T00:00:00Z"
        for c in self.customers:
            self._write_customer(c, opening, cfg.start_date)
        for promo in self.promotions:
            announced = max(cfg.start_date, date.fromisoformat(promo["start_date"]) - timedelta(days=3))
            self.writer.add_json("promotions", announced, promo)
        self.writer.write_csv(
            "calendar",
            cfg.start_date,
            ["schema_version", "date", "country", "is_holiday", "holiday_name", "is_shopping_event"],
            calendar_rows(cfg.start_date, cfg.days, SCHEMA_VERSION),
        )
        for d in tqdm(range(cfg.days), desc="simulating days", unit="day", disable=not progress):
            self.run_day(d)
        self.writer.flush_json()
        self._write_truth()
        self.summary.records = dict(self.writer.records)
        self.summary.dirt = dict(self.writer.dirt_counts)
        self.summary.files = len(self.writer.files)
        return self.summary

    def _write_truth(self) -> None:
        """Ground truth the platform never reads: each session's purchase probability with/without an offer."""
        path = self.out_dir / "simulator_truth" / "sessions.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            out = csv.writer(handle, lineterminator="\n")
            out.writerow(
                (
                    "client_session_id",
                    "visitor_id",
                    "session_start",
                    "is_bot",
                    "offered",
                    "p_no_offer",
                    "p_offer",
                    "purchased",
                )
            )
            out.writerows(self.truth_rows)


def simulate(cfg: SimulationConfig, out_dir: Path, progress: bool = False) -> SimulationSummary:
    """Run the store for `cfg.days` days and write landing files under `out_dir/landing/<feed>/`."""
    return StoreSimulation(cfg, Path(out_dir)).run(progress=progress)
