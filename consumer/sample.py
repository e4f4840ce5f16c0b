"""A deterministic, realistic corpus of RudderStack events: the demo's, compose's and tests' input.

Same seed, same events, byte for byte: no clock, no global random state, every id drawn from the
seeded generator. The mix follows what the transform has to handle in real traffic: mostly
track calls, identifies with traits (some with a mobile device token, for the token upload),
page and screen calls, Order Completed (CleverTap's Charged), aliases; web and mobile contexts;
some numeric userIds (RudderStack keeps them JSON numbers); anonymous-only events.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

DEFAULT_DESTINATIONS: Final = ("dest-1", "dest-2", "dest-3", "dest-4")

#: Share of each kind of event; "order" is a track call named Order Completed.
MIX: Final[dict[str, float]] = {
    "track": 0.55,
    "page": 0.10,
    "screen": 0.10,
    "identify": 0.15,
    "order": 0.07,
    "alias": 0.03,
}

START: Final = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
USERS: Final = 5000

_TRACK_EVENTS: Final = (
    "Product Viewed",
    "Product Added",
    "Cart Viewed",
    "Checkout Started",
    "Products Searched",
    "Signed Up",
    "Logged In",
    "Video Played",
    "Article Read",
    "Coupon Applied",
)
_CATEGORIES: Final = ("Shoes", "Books", "Electronics", "Garden", "Toys")
_CITIES: Final = (("Mumbai", "IN"), ("Berlin", "DE"), ("Austin", "US"), ("São Paulo", "BR"), ("Tokyo", "JP"))
_FIRST: Final = ("Asha", "Ben", "Chloé", "Dmitri", "Emeka", "Fatima", "Hiro", "Lena", "Mateo", "Priya")
_LAST: Final = ("Kumar", "Schmidt", "Okafor", "Silva", "Tanaka", "Nguyen", "Rossi", "Müller")
_PAGES: Final = (
    ("Home", "/"),
    ("Cart", "/cart"),
    ("Product", "/p/"),
    ("Search", "/search"),
    ("Blog", "/blog/"),
)
_SCREENS: Final = ("Home", "Product Detail", "Cart", "Settings", "Onboarding")


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Generator:
    def __init__(self, seed: int, destinations: Sequence[str]) -> None:
        if not destinations:
            raise ValueError("name at least one destination id")
        self.rng = random.Random(seed)
        self.destinations = tuple(destinations)
        self.now = START
        self.kinds = list(MIX)
        self.weights = [MIX[k] for k in self.kinds]
        # Per user: (userId, anonymousId, platform); a numeric userId for one in twenty.
        self.users = [self._user(i) for i in range(USERS)]

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _user(self, i: int) -> tuple[str | int, str, str]:
        user_id: str | int = 100000 + i if self.rng.random() < 0.05 else f"u_{i:06d}"
        platform = self.rng.choices(("web", "android", "ios"), (0.4, 0.35, 0.25))[0]
        return user_id, self._uuid(), platform

    def _context(self, platform: str, *, token: bool) -> dict[str, Any]:
        rng = self.rng
        city, country = rng.choice(_CITIES)
        context: dict[str, Any] = {
            "locale": rng.choice(("en-US", "en-IN", "de-DE", "pt-BR", "ja-JP")),
            "ip": f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "timezone": rng.choice(("Asia/Kolkata", "Europe/Berlin", "America/Chicago")),
            "location": {"city": city, "country": country},
        }
        if platform == "web":
            path = rng.choice(_PAGES)[1]
            context["library"] = {"name": "RudderLabs JavaScript SDK", "version": "3.11.2"}
            context["userAgent"] = (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15"
            )
            context["page"] = {
                "path": path,
                "url": f"https://shop.example.com{path}",
                "title": "Example Shop",
            }
            if rng.random() < 0.3:
                context["campaign"] = {"source": "newsletter", "medium": "email", "name": "spring-sale"}
            return context
        android = platform == "android"
        context["library"] = {
            "name": "com.rudderstack.android.sdk.core" if android else "rudder-ios-library",
            "version": "1.21.0" if android else "1.26.3",
        }
        context["app"] = {
            "name": "Example Shop",
            "version": "4.2.0",
            "build": "420",
            "namespace": "com.example.shop",
        }
        context["os"] = {"name": "Android" if android else "iOS", "version": "14" if android else "17.4"}
        context["device"] = {
            "id": self._uuid(),
            "manufacturer": "Google" if android else "Apple",
            "model": "Pixel 8" if android else "iPhone15,2",
            "type": "android" if android else "ios",
        }
        if token:
            context["device"]["token"] = (
                f"{rng.getrandbits(64):016x}:APA91b{rng.getrandbits(160):040x}"
                if android
                else f"{rng.getrandbits(256):064x}"
            )
        context["screen"] = {
            "density": 3,
            "width": 1080 if android else 1179,
            "height": 2400 if android else 2556,
        }
        context["network"] = {
            "wifi": rng.random() < 0.6,
            "carrier": rng.choice(("Jio", "Vodafone", "T-Mobile")),
        }
        return context

    def _product(self) -> dict[str, Any]:
        rng = self.rng
        n = rng.randrange(1, 400)
        return {
            "product_id": f"sku-{n:04d}",
            "name": f"Item {n}",
            "category": rng.choice(_CATEGORIES),
            "price": round(rng.uniform(2, 250), 2),
            "quantity": rng.randrange(1, 4),
        }

    def event(self) -> dict[str, Any]:
        rng = self.rng
        self.now += timedelta(milliseconds=rng.randrange(50, 1500))
        user_id, anonymous_id, platform = rng.choice(self.users)
        kind = rng.choices(self.kinds, self.weights)[0]
        known = kind in ("identify", "alias") or rng.random() < 0.8
        sent = self.now + timedelta(milliseconds=rng.randrange(10, 3000))
        message: dict[str, Any] = {
            "messageId": self._uuid(),
            "anonymousId": anonymous_id,
            "channel": "web" if platform == "web" else "mobile",
            "context": self._context(
                platform, token=kind == "identify" and platform != "web" and rng.random() < 0.5
            ),
            "originalTimestamp": _ts(self.now),
            "timestamp": _ts(self.now + timedelta(milliseconds=rng.randrange(-500, 500))),
            "sentAt": _ts(sent),
            "receivedAt": _ts(sent + timedelta(milliseconds=rng.randrange(5, 400))),
            "rudderId": self._uuid(),
            "request_ip": f"198.51.100.{rng.randrange(1, 255)}",
            "integrations": {"All": True},
            "destinationId": rng.choice(self.destinations),
        }
        if known:
            message["userId"] = user_id
        if kind == "track":
            name = rng.choice(_TRACK_EVENTS)
            message.update(type="track", event=name, properties=self._track_properties(name))
        elif kind == "order":
            products = [self._product() for _ in range(rng.randrange(1, 5))]
            revenue = round(sum(p["price"] * p["quantity"] for p in products), 2)
            message.update(
                type="track",
                event="Order Completed",
                properties={
                    "order_id": f"ord-{rng.getrandbits(40):010x}",
                    "revenue": revenue,
                    "shipping": rng.choice((0, 4.99)),
                    "tax": round(revenue * 0.08, 2),
                    "currency": rng.choice(("USD", "EUR", "INR")),
                    "coupon": rng.choice(("", "SPRING10", "WELCOME")),
                    "products": products,
                },
            )
        elif kind == "page":
            title, path = rng.choice(_PAGES)
            message.update(
                type="page",
                name=title,
                properties={
                    "path": path,
                    "url": f"https://shop.example.com{path}",
                    "title": title,
                    "referrer": "",
                },
            )
        elif kind == "screen":
            message.update(
                type="screen", name=rng.choice(_SCREENS), properties={"from_push": rng.random() < 0.1}
            )
        elif kind == "identify":
            message.update(type="identify", traits=self._traits())
            if "token" in message["context"].get("device", {}):
                message["integrations"]["CleverTap"] = {
                    "deviceTokenType": "fcm" if platform == "android" else "apns"
                }
        else:  # alias: the anonymous visitor became a known user
            message.update(type="alias", previousId=anonymous_id)
        return message

    def _track_properties(self, name: str) -> dict[str, Any]:
        rng = self.rng
        if name.startswith("Product") or name == "Cart Viewed":
            return {**self._product(), "currency": "USD", "in_stock": rng.random() < 0.9}
        if name == "Products Searched":
            return {
                "query": rng.choice(("running shoes", "usb-c cable", "garden hose")),
                "results": rng.randrange(60),
            }
        if name == "Video Played":
            return {"video_id": f"v{rng.randrange(900)}", "position": rng.randrange(600), "quality": "1080p"}
        return {"method": rng.choice(("email", "google", "apple")), "plan": rng.choice(("free", "pro"))}

    def _traits(self) -> dict[str, Any]:
        rng = self.rng
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        city, country = rng.choice(_CITIES)
        traits: dict[str, Any] = {
            "firstName": first,
            "lastName": last,
            "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}{rng.randrange(1000)}@example.com",
            "phone": f"+1415555{rng.randrange(10000):04d}",
            "gender": rng.choice(("female", "male", "F", "M")),
            "birthday": f"{rng.randrange(1960, 2006)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            "address": {"city": city, "country": country},
            "plan": rng.choice(("free", "pro", "enterprise")),
            "createdAt": _ts(START - timedelta(days=rng.randrange(1, 900))),
        }
        if rng.random() < 0.2:
            traits["MSG-email"] = False
        return traits


def sample_events(
    n: int, seed: int = 1, destinations: Sequence[str] = DEFAULT_DESTINATIONS
) -> Iterator[dict[str, Any]]:
    """`n` events, the same ones for the same arguments."""
    generator = _Generator(seed, destinations)
    for _ in range(n):
        yield generator.event()


def sample_lines(
    n: int, seed: int = 1, destinations: Sequence[str] = DEFAULT_DESTINATIONS
) -> Iterator[bytes]:
    """The events as JSON lines (compact, newline-terminated)."""
    for event in sample_events(n, seed, destinations):
        yield orjson.dumps(event) + b"\n"


def kind_of(event: dict[str, Any]) -> str:
    """The `MIX` bucket an event belongs to."""
    if event.get("type") == "track" and event.get("event") == "Order Completed":
        return "order"
    return str(event.get("type"))
