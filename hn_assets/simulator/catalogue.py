"""Laptops and accessories with specs, prices and costs."""

from __future__ import annotations

import random
from dataclasses import dataclass

BRANDS = ("Lenovo", "Dell", "HP", "Apple", "ASUS", "Acer", "MSI", "Microsoft", "Razer", "Samsung")
# category -> (share of catalogue, base price EUR, price spread, is_laptop)
CATEGORIES = {
    "ultrabook": (0.16, 1200, 0.35, True),
    "gaming": (0.14, 1600, 0.40, True),
    "business": (0.14, 1100, 0.30, True),
    "2_in_1": (0.08, 900, 0.30, True),
    "workstation": (0.05, 2600, 0.30, True),
    "chromebook": (0.06, 380, 0.25, True),
    "mouse": (0.08, 45, 0.50, False),
    "keyboard": (0.07, 80, 0.50, False),
    "dock": (0.06, 180, 0.40, False),
    "monitor": (0.07, 320, 0.45, False),
    "bag": (0.05, 60, 0.40, False),
    "headset": (0.04, 120, 0.50, False),
}
CPUS = (
    "Intel Core Ultra 5",
    "Intel Core Ultra 7",
    "Intel Core Ultra 9",
    "AMD Ryzen 5",
    "AMD Ryzen 7",
    "AMD Ryzen 9",
    "Apple M4",
    "Apple M4 Pro",
    "Snapdragon X Elite",
)
GPUS = ("integrated", "RTX 4050", "RTX 4060", "RTX 4070", "RTX 4080", "RTX 5090")


@dataclass
class Product:
    product_id: str
    name: str
    category: str
    brand: str
    list_price: float
    unit_cost: float
    price_tier: str
    is_laptop: bool
    cpu: str | None
    ram_gb: int | None
    storage_gb: int | None
    gpu: str | None
    screen_inches: float | None
    popularity: float
    stock: int


def _tier(price: float, base: float) -> str:
    ratio = price / base
    return "budget" if ratio < 0.8 else "mid" if ratio < 1.1 else "premium" if ratio < 1.4 else "flagship"


def build_catalogue(n_products: int, rng: random.Random) -> list[Product]:
    names = list(CATEGORIES)
    weights = [CATEGORIES[c][0] for c in names]
    products = []
    for i in range(n_products):
        category = rng.choices(names, weights)[0]
        _, base, spread, is_laptop = CATEGORIES[category]
        brand = "Apple" if category == "ultrabook" and rng.random() < 0.25 else rng.choice(BRANDS)
        price = round(base * rng.lognormvariate(0, spread), 2) - 0.01 + 0.01
        price = round(max(9.99, price), 0) - 0.01
        cpu = gpu = None
        ram = storage = None
        screen = None
        if is_laptop:
            cpu = rng.choice(CPUS[6:8]) if brand == "Apple" else rng.choice(CPUS[:6] + CPUS[8:])
            ram = rng.choice((8, 16, 16, 32, 32, 64) if category in ("gaming", "workstation") else (8, 8, 16, 16, 32))
            storage = rng.choice((256, 512, 512, 1024, 2048))
            gpu = rng.choice(GPUS[1:]) if category in ("gaming", "workstation") else "integrated"
            screen = rng.choice((13.3, 14.0, 15.6, 16.0, 17.3))
        line = rng.choice(("Pro", "Air", "Book", "Edge", "Nitro", "Zen", "Aero", "Flex"))
        model = f"{line} {rng.randint(3, 9)}{rng.randint(0, 9)}"
        products.append(
            Product(
                product_id=f"P{i + 1:05d}",
                name=f"{brand} {model} {category.replace('_', '-')}",
                category=category,
                brand=brand,
                list_price=price,
                unit_cost=round(price * rng.uniform(0.62, 0.82), 2),
                price_tier=_tier(price, base),
                is_laptop=is_laptop,
                cpu=cpu,
                ram_gb=ram,
                storage_gb=storage,
                gpu=gpu,
                screen_inches=screen,
                popularity=rng.paretovariate(1.6),
                stock=rng.randint(5, 60),
            )
        )
    return products
