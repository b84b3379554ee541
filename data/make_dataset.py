"""Generate the course's own GSM8K-style reasoning dataset.

Every row is a short math word problem with a worked solution, one step per
line, written the way GSM8K writes them::

    Liam buys 4*6 = <<4*6=24>>24 stickers.
    Now he has 24+9 = <<24+9=33>>33 stickers.
    #### 33

Problems come from hand-written templates ("shapes"), filled in with names,
items and numbers drawn from a seeded ``random.Random``. Nothing else is
random, so the output is byte-for-byte reproducible.

Usage::

    python data/make_dataset.py           # (re)write data/train.jsonl and data/test.jsonl
    python data/make_dataset.py --check   # exit 1 if the files on disk are stale

Standard library only. The data and this script are released under CC0-1.0.
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
DEFAULT_SEED = 1234
DEFAULT_N_TRAIN = 1200
DEFAULT_N_TEST = 200
DISTRACTOR_RATE = 0.25  # share of questions that get one irrelevant number
MAX_VALUE = 999  # every intermediate and final result stays in 1..MAX_VALUE


# --------------------------------------------------------------------------
# Word lists
# --------------------------------------------------------------------------

FEMALE_NAMES = [
    "Amara", "Sofia", "Mei", "Priya", "Fatima", "Olivia", "Yuki", "Ana",
    "Chloe", "Zainab", "Ingrid", "Lucia", "Aisha", "Hannah", "Leila", "Nadia",
    "Rosa", "Keiko", "Emma", "Grace", "Ama", "Isabel", "Maya", "Noor",
    "Sakura", "Elena", "Tara", "Wanjiru", "Camila", "Julia", "Freya", "Ngozi",
]
MALE_NAMES = [
    "Liam", "Omar", "Kenji", "Mateo", "Ravi", "Kwame", "Lucas", "Ethan",
    "Hiro", "Diego", "Ahmed", "Noah", "Arjun", "Tomas", "Chen", "Jamal",
    "Felix", "Ibrahim", "Marco", "Samuel", "Kofi", "Daniel", "Yusuf", "Oscar",
    "Andre", "Sven", "Rahul", "Malik", "Leo", "Pedro", "Dmitri", "Tane",
]

# (singular, plural, lowest price, highest price) in whole dollars
SHOP_ITEMS = [
    ("notebook", "notebooks", 2, 6),
    ("sandwich", "sandwiches", 4, 9),
    ("movie ticket", "movie tickets", 7, 15),
    ("potted plant", "potted plants", 5, 20),
    ("toy car", "toy cars", 3, 12),
    ("paperback book", "paperback books", 5, 15),
    ("scarf", "scarves", 8, 25),
    ("pizza", "pizzas", 8, 16),
    ("T-shirt", "T-shirts", 6, 20),
    ("bag of apples", "bags of apples", 3, 8),
    ("candle", "candles", 2, 9),
    ("puzzle", "puzzles", 6, 18),
    ("water bottle", "water bottles", 4, 12),
    ("pair of socks", "pairs of socks", 2, 7),
    ("cupcake", "cupcakes", 2, 5),
    ("comic book", "comic books", 3, 9),
    ("basketball", "basketballs", 10, 25),
    ("flower pot", "flower pots", 3, 10),
]

# small things people count, share and collect
COUNT_ITEMS = [
    "stickers", "marbles", "cookies", "pencils", "baseball cards",
    "strawberries", "seashells", "crayons", "balloons", "beads", "candies",
    "markers", "batteries", "tennis balls", "hair clips", "buttons",
]

STORES = ["store", "market", "mall", "supermarket", "craft fair", "school fair", "corner shop"]
CONTAINERS = ["pack", "box", "bag", "jar"]
RESTAURANTS = ["noodle bar", "pizza place", "diner", "taco stand", "cafe", "curry house"]
GADGETS = ["bike", "video game", "skateboard", "guitar", "tablet", "telescope", "pair of roller skates"]
JOBS = ["cafe", "bookstore", "pet shop", "library", "garden center", "bakery"]

FRACTION_WORDS = {2: "half", 3: "a third", 4: "a quarter", 5: "a fifth"}
PERCENT_DIVISOR = {10: 10, 20: 5, 25: 4, 50: 2}  # p% of x is x/divisor

# Irrelevant details: a number the solver must ignore.
DISTRACTORS = [
    "{name}'s grandmother lives {k} miles away.",
    "{name} has been learning the guitar for {k} months.",
    "{name}'s house number is {k}.",
    "{name}'s dog weighs {k} pounds.",
    "{name}'s favorite number is {k}.",
    "{name}'s school has {k} classrooms.",
    "{name} has {k} cousins.",
    "{name}'s street has {k} trees on it.",
    "{name} can hold {his} breath for {k} seconds.",
    "{name}'s bike has {k} gears.",
]


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------


class Reject(Exception):
    """Raised when drawn numbers break a rule; the template is drawn again."""


@dataclass(frozen=True)
class Person:
    """A named character; ``he``/``his``/... give the matching pronoun."""

    name: str
    female: bool

    @property
    def he(self) -> str:
        return "she" if self.female else "he"

    @property
    def He(self) -> str:  # capitalised: reads naturally at a sentence start
        return "She" if self.female else "He"

    @property
    def him(self) -> str:
        return "her" if self.female else "him"

    @property
    def his(self) -> str:
        return "her" if self.female else "his"

    @property
    def His(self) -> str:
        return "Her" if self.female else "His"


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def evaluate(expr: str) -> Fraction:
    """Exactly evaluate an arithmetic expression of integers, + - * / and parentheses."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return Fraction(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(f"unsupported expression: {expr!r}")

    return walk(ast.parse(expr, mode="eval"))


@dataclass
class Solution:
    """The worked solution, built one calculation line at a time."""

    lines: list[str] = field(default_factory=list)
    last: int = 0

    def step(self, prefix: str, expr: str, suffix: str = "", money: bool = False) -> int:
        """Add the line ``{prefix} {expr} = <<{expr}={value}>>{value} {suffix}.``

        Rejects the draw unless the value is a whole number in 1..MAX_VALUE.
        """
        value = evaluate(expr)
        if value.denominator != 1 or not 0 < value <= MAX_VALUE:
            raise Reject(f"{expr} = {value}")
        result = int(value)
        dollar = "$" if money else ""
        line = f"{prefix} {expr} = {dollar}<<{expr}={result}>>{result} {suffix}".rstrip()
        self.lines.append(line + ".")
        self.last = result
        return result


@dataclass
class Problem:
    """One drawn problem: the fact sentences, the question sentence and the solution."""

    setup: list[str]
    ask: str
    solution: Solution
    person: Person  # the main character, used by the irrelevant detail


Template = Callable[[random.Random], Problem]
TEMPLATES: list[tuple[str, Template]] = []


def template(name: str) -> Callable[[Template], Template]:
    """Register a template function under a shape name."""

    def register(fn: Template) -> Template:
        TEMPLATES.append((name, fn))
        return fn

    return register


def people(rng: random.Random, k: int) -> list[Person]:
    """Draw ``k`` different people."""
    pool = [Person(n, True) for n in FEMALE_NAMES] + [Person(n, False) for n in MALE_NAMES]
    return rng.sample(pool, k)


def person(rng: random.Random) -> Person:
    """Draw one person."""
    return people(rng, 1)[0]


def percent(rng: random.Random, choices: tuple[int, ...] = (10, 20, 25, 50)) -> tuple[int, int]:
    """Draw a round percentage and its divisor (25% -> 4)."""
    pct = rng.choice(choices)
    return pct, PERCENT_DIVISOR[pct]


# --------------------------------------------------------------------------
# One-step shapes
# --------------------------------------------------------------------------


@template("unit_price_total")
def unit_price_total(rng: random.Random) -> Problem:
    """n items at a fixed price."""
    p = person(rng)
    item, items, lo, hi = rng.choice(SHOP_ITEMS)
    price, n, store = rng.randint(lo, hi), rng.randint(2, 12), rng.choice(STORES)
    setup, ask = rng.choice([
        ([f"At the {store}, one {item} costs ${price}.", f"{p.name} buys {n} {items}."],
         f"How much does {p.he} spend in total?"),
        ([f"{p.name} buys {n} {items} for ${price} each."],
         f"How much money does {p.name} spend?"),
        ([f"{p.name} needs {n} {items} for a party.", f"Each {item} costs ${price}."],
         f"How many dollars will {p.he} pay for all the {items}?"),
    ])
    sol = Solution()
    sol.step(f"{p.name} spends", f"{n}*{price}", f"on {items}", money=True)
    return Problem(setup, ask, sol, p)


@template("sharing_equally")
def sharing_equally(rng: random.Random) -> Problem:
    """Split a total evenly."""
    p = person(rng)
    things = rng.choice(COUNT_ITEMS)
    k, each = rng.randint(2, 12), rng.randint(2, 25)
    total = k * each
    setup, ask, who = rng.choice([
        ([f"{p.name} has {total} {things}.", f"{p.He} shares them equally among {k} friends."],
         f"How many {things} does each friend get?", "friend"),
        ([f"{p.name} wants to put {total} {things} into {k} bags, with the same number in each bag."],
         f"How many {things} go in each bag?", "bag"),
        ([f"{p.name} splits {total} {things} evenly between {k} children."],
         f"How many {things} does each child receive?", "child"),
    ])
    sol = Solution()
    sol.step(f"Each {who} gets", f"{total}/{k}", things)
    return Problem(setup, ask, sol, p)


@template("percent_of_group")
def percent_of_group(rng: random.Random) -> Problem:
    """A round percentage of a group."""
    p = person(rng)
    pct, d = percent(rng)
    total = d * rng.randint(3, min(30, 200 // d))
    setup, ask, suffix = rng.choice([
        ([f"There are {total} students in {p.name}'s chess club.", f"{pct}% of them are in grade five."],
         "How many students in the club are in grade five?", "students are in grade five"),
        ([f"{p.name} planted {total} seeds in {p.his} garden.", f"Only {pct}% of the seeds sprouted."],
         "How many seeds sprouted?", "seeds sprouted"),
        ([f"{p.name}'s bakery made {total} muffins this morning, and {pct}% of them were blueberry muffins."],
         "How many blueberry muffins did the bakery make?", "muffins were blueberry muffins"),
        ([f"{p.name} has {total} songs on {p.his} playlist.", f"{pct}% of the songs are jazz songs."],
         "How many jazz songs are on the playlist?", "songs are jazz songs"),
    ])
    sol = Solution()
    sol.step(f"Since {pct}% is 1/{d},", f"{total}/{d}", suffix)
    return Problem(setup, ask, sol, p)


@template("rectangle_area")
def rectangle_area(rng: random.Random) -> Problem:
    """Area of a rectangle."""
    p = person(rng)
    length, width = rng.randint(4, 25), rng.randint(2, 15)
    setup, ask, unit = rng.choice([
        ([f"{p.name}'s vegetable garden is a rectangle {length} meters long and {width} meters wide."],
         "What is the area of the garden in square meters?", "meters"),
        ([f"{p.name} is painting a rectangular wall that measures {length} feet by {width} feet."],
         f"How many square feet of wall does {p.he} paint?", "feet"),
        ([f"{p.name} puts a rectangular rug on the floor.",
          f"The rug is {length} feet long and {width} feet wide."],
         "How many square feet of floor does the rug cover?", "feet"),
    ])
    sol = Solution()
    sol.step("The area is", f"{length}*{width}", f"square {unit}")
    return Problem(setup, ask, sol, p)


# --------------------------------------------------------------------------
# Two-step shapes
# --------------------------------------------------------------------------


@template("shopping_change")
def shopping_change(rng: random.Random) -> Problem:
    """Buy n items, pay with a bill, get change."""
    p = person(rng)
    _, items, lo, hi = rng.choice(SHOP_ITEMS)
    price, n, store = rng.randint(lo, hi), rng.randint(2, 6), rng.choice(STORES)
    bills = [b for b in (10, 20, 50, 100) if b > n * price][:2]
    if not bills:
        raise Reject("no bill is large enough")
    bill = rng.choice(bills)
    setup, ask = rng.choice([
        ([f"{p.name} buys {n} {items} that cost ${price} each.", f"{p.He} pays with a ${bill} bill."],
         f"How much change does {p.he} get?"),
        ([f"At the {store}, {p.name} picks up {n} {items} at ${price} apiece and hands the cashier ${bill}."],
         f"How much change should {p.name} receive?"),
        ([f"{p.name} has a ${bill} bill.", f"{p.He} uses it to pay for {n} {items} priced at ${price} each."],
         f"How many dollars does {p.he} get back?"),
    ])
    sol = Solution()
    cost = sol.step(f"The {items} cost", f"{n}*{price}", money=True)
    sol.step(f"{p.name} gets", f"{bill}-{cost}", "in change", money=True)
    return Problem(setup, ask, sol, p)


@template("buying_packs")
def buying_packs(rng: random.Random) -> Problem:
    """Buy k packs of m, add what you already had."""
    p = person(rng)
    things, box = rng.choice(COUNT_ITEMS), rng.choice(CONTAINERS)
    k, m, had = rng.randint(2, 9), rng.randint(3, 12), rng.randint(2, 30)
    boxes = "boxes" if box == "box" else box + "s"
    setup, ask = rng.choice([
        ([f"{p.name} buys {k} {boxes} of {things}.", f"Each {box} has {m} {things}.",
          f"{p.He} already had {had} {things}."],
         f"How many {things} does {p.he} have now?"),
        ([f"{p.name} already owns {had} {things}.",
          f"{p.He} gets {k} more {boxes} with {m} {things} in each {box}."],
         f"How many {things} does {p.name} have altogether?"),
        ([f"{p.name} has {had} {things} and then buys {k} {boxes} with {m} {things} per {box}."],
         f"How many {things} does {p.he} have in all?"),
    ])
    sol = Solution()
    bought = sol.step(f"{p.name} buys", f"{k}*{m}", things)
    sol.step(f"Now {p.he} has", f"{bought}+{had}", things)
    return Problem(setup, ask, sol, p)


@template("savings_over_weeks")
def savings_over_weeks(rng: random.Random) -> Problem:
    """Start amount plus weekly savings."""
    p = person(rng)
    start, per_week, weeks = rng.randint(5, 60), rng.randint(3, 25), rng.randint(2, 12)
    setup, ask = rng.choice([
        ([f"{p.name} has ${start} in a piggy bank.", f"{p.He} saves ${per_week} every week."],
         f"How much money will {p.he} have after {weeks} weeks?"),
        ([f"{p.name} starts with ${start} and puts aside ${per_week} each week from {p.his} allowance."],
         f"How many dollars will {p.he} have after {weeks} weeks?"),
        ([f"Every week {p.name} adds ${per_week} to {p.his} savings.", f"Right now {p.he} has ${start}."],
         f"How much will {p.he} have saved {weeks} weeks from now?"),
    ])
    sol = Solution()
    saved = sol.step(f"In {weeks} weeks {p.he} saves", f"{per_week}*{weeks}", money=True)
    sol.step(f"{p.He} will have", f"{start}+{saved}", money=True)
    return Problem(setup, ask, sol, p)


@template("ages")
def ages(rng: random.Random) -> Problem:
    """Someone's age now, then some years later or earlier."""
    a, b = people(rng, 2)
    years = rng.randint(2, 15)
    sol = Solution()
    variant = rng.randrange(3)
    if variant == 0:
        age, diff = rng.randint(5, 40), rng.randint(2, 30)
        setup = [f"{a.name} is {age} years old.", f"{a.His} cousin {b.name} is {diff} years older than {a.him}."]
        ask = f"How old will {b.name} be in {years} years?"
        now = sol.step(f"{b.name} is", f"{age}+{diff}", "years old")
        sol.step(f"In {years} years {b.he} will be", f"{now}+{years}", "years old")
    elif variant == 1:
        age, times = rng.randint(3, 15), rng.randint(2, 4)
        relative = "aunt" if b.female else "uncle"
        how = "twice" if times == 2 else f"{times} times"
        setup = [f"{a.name} is {age} years old.", f"{a.His} {relative} {b.name} is {how} as old as {a.him}."]
        ask = f"How old will {b.name} be in {years} years?"
        now = sol.step(f"{b.name} is", f"{age}*{times}", "years old")
        sol.step(f"In {years} years {b.he} will be", f"{now}+{years}", "years old")
    else:
        age, diff = rng.randint(20, 50), rng.randint(2, 15)
        setup = [f"{b.name} is {diff} years younger than {b.his} friend {a.name}.",
                 f"{a.name} is {age} years old."]
        ask = f"How old was {b.name} {years} years ago?"
        now = sol.step(f"{b.name} is", f"{age}-{diff}", "years old")
        sol.step(f"{years} years ago {b.he} was", f"{now}-{years}", "years old")
    return Problem(setup, ask, sol, a)


@template("tip_on_bill")
def tip_on_bill(rng: random.Random) -> Problem:
    """Bill plus a round-percent tip."""
    p = person(rng)
    pct, d = percent(rng, (10, 20, 25))
    bill = d * rng.randint(3, 120 // d)
    place = rng.choice(RESTAURANTS)
    setup, ask, payer = rng.choice([
        ([f"{p.name} and {p.his} friends eat lunch at a {place}.",
          f"The bill is ${bill}, and they leave a {pct}% tip."],
         "How much do they pay in total, including the tip?", "they pay"),
        ([f"Dinner for {p.name}'s family at the {place} costs ${bill}.", f"{p.He} adds a {pct}% tip."],
         f"What is the total amount {p.he} pays?", f"{p.he} pays"),
        ([f"{p.name} gets a haircut that costs ${bill} and tips the barber {pct}%."],
         f"How much does {p.name} pay altogether?", f"{p.name} pays"),
    ])
    sol = Solution()
    tip = sol.step(f"Since {pct}% is 1/{d}, the tip is", f"{bill}/{d}", money=True)
    sol.step(f"In total {payer}", f"{bill}+{tip}", money=True)
    return Problem(setup, ask, sol, p)


@template("spend_fraction")
def spend_fraction(rng: random.Random) -> Problem:
    """What remains after a simple fraction is used."""
    p = person(rng)
    k, part = rng.randint(2, 5), rng.randint(2, 40)
    total, frac = k * part, FRACTION_WORDS[k]
    thing = rng.choice(["a new jacket", "groceries", "a birthday present", "books", "a concert ticket"])
    sol = Solution()
    variant = rng.randrange(3)
    if variant == 0:
        setup = [f"{p.name} had ${total}.", f"{p.He} spent {frac} of it on {thing}."]
        ask = f"How much money does {p.he} have left?"
        spent = sol.step(f"{p.He} spent", f"{total}/{k}", money=True)
        sol.step(f"{p.He} has", f"{total}-{spent}", "left", money=True)
    elif variant == 1:
        setup = [f"{p.name} baked {total} cookies and gave {frac} of them to {p.his} neighbors."]
        ask = f"How many cookies does {p.he} have left?"
        given = sol.step(f"{p.He} gave away", f"{total}/{k}", "cookies")
        sol.step(f"{p.He} has", f"{total}-{given}", "cookies left")
    else:
        setup = [f"{p.name}'s school library got {total} new books.",
                 f"On Monday, students borrowed {frac} of them."]
        ask = "How many of the new books are still in the library?"
        borrowed = sol.step("Students borrowed", f"{total}/{k}", "books")
        sol.step("There are", f"{total}-{borrowed}", "new books still in the library")
    return Problem(setup, ask, sol, p)


@template("unit_price_from_total")
def unit_price_from_total(rng: random.Random) -> Problem:
    """Price of a bundle -> price of one -> price of n."""
    p = person(rng)
    item, items, lo, hi = rng.choice(SHOP_ITEMS)
    k, price, n = rng.randint(2, 8), rng.randint(lo, hi), rng.randint(2, 12)
    if n == k:
        raise Reject("same count twice")
    total, store = k * price, rng.choice(STORES)
    setup, ask = rng.choice([
        ([f"At the {store}, {k} {items} cost ${total} in total."],
         f"How much will {p.name} pay for {n} {items}?"),
        ([f"{p.name} paid ${total} for {k} {items}."],
         f"At the same price, how much would {n} {items} cost?"),
    ])
    sol = Solution()
    one = sol.step(f"One {item} costs", f"{total}/{k}", money=True)
    sol.step(f"So {n} {items} cost", f"{n}*{one}", money=True)
    return Problem(setup, ask, sol, p)


@template("combined_rate")
def combined_rate(rng: random.Random) -> Problem:
    """Two rates added, then times a duration."""
    a, b = people(rng, 2)
    r1, r2, time = rng.randint(3, 30), rng.randint(3, 30), rng.randint(2, 10)
    widgets = rng.choice(["toys", "bottles", "buttons", "bricks"])
    setup, ask, verb, unit, per, span = rng.choice([
        ([f"{a.name} can pick {r1} apples per hour, and {b.name} can pick {r2} apples per hour."],
         f"If they work together for {time} hours, how many apples do they pick?",
         "pick", "apples", "hour", "hours"),
        ([f"{a.name} runs two machines in a factory.",
          f"One makes {r1} {widgets} per hour and the other makes {r2} {widgets} per hour."],
         f"How many {widgets} do both machines make in {time} hours?", "make", widgets, "hour", "hours"),
        ([f"{a.name} reads {r1} pages a day and {b.name} reads {r2} pages a day."],
         f"How many pages do they read altogether in {time} days?", "read", "pages", "day", "days"),
    ])
    sol = Solution()
    rate = sol.step(f"Together they {verb}", f"{r1}+{r2}", f"{unit} per {per}")
    sol.step(f"In {time} {span} they {verb}", f"{rate}*{time}", unit)
    return Problem(setup, ask, sol, a)


@template("teams_equipment")
def teams_equipment(rng: random.Random) -> Problem:
    """Split people into groups, then supplies per group."""
    p = person(rng)
    groups, size, each = rng.randint(2, 10), rng.randint(2, 8), rng.randint(2, 6)
    total = groups * size
    setup, ask, group_word, need, things = rng.choice([
        ([f"Coach {p.name} has {total} players and splits them into teams of {size}.",
          f"Each team needs {each} soccer balls."],
         "How many soccer balls does the coach need?", "teams", "The coach needs", "soccer balls"),
        ([f"{p.name} takes {total} students on a field trip, and they sit in groups of {size}.",
          f"Each group gets {each} bags of pretzels."],
         f"How many bags of pretzels does {p.name} hand out?",
         "groups", f"{p.name} hands out", "bags of pretzels"),
        ([f"{p.name} is setting up a party for {total} guests, with {size} guests at each table.",
          f"Every table gets {each} balloons."],
         f"How many balloons does {p.he} need?", "tables", f"{p.He} needs", "balloons"),
    ])
    sol = Solution()
    count = sol.step("There are", f"{total}/{size}", group_word)
    sol.step(need, f"{count}*{each}", things)
    return Problem(setup, ask, sol, p)


@template("weeks_to_goal")
def weeks_to_goal(rng: random.Random) -> Problem:
    """How many weeks of saving to reach a price."""
    p = person(rng)
    per_week, weeks, have = rng.randint(3, 25), rng.randint(2, 12), rng.randint(5, 60)
    price, gadget = have + per_week * weeks, rng.choice(GADGETS)
    setup, ask = rng.choice([
        ([f"{p.name} wants to buy a {gadget} that costs ${price}.",
          f"{p.He} has ${have} and saves ${per_week} each week."],
         f"How many weeks will it take {p.him} to have enough money?"),
        ([f"A {gadget} costs ${price}.", f"{p.name} already saved ${have} and can put away ${per_week} per week."],
         f"How many more weeks does {p.he} need to save?"),
    ])
    sol = Solution()
    missing = sol.step(f"{p.He} still needs", f"{price}-{have}", money=True)
    sol.step("It will take", f"{missing}/{per_week}", "weeks")
    return Problem(setup, ask, sol, p)


@template("recipe_scaling")
def recipe_scaling(rng: random.Random) -> Problem:
    """Scale a recipe by a whole number of batches."""
    p = person(rng)
    per_batch, makes, batches = rng.randint(2, 6), rng.randint(4, 24), rng.randint(2, 6)
    want = makes * batches
    setup, ask, product, amount = rng.choice([
        ([f"{p.name}'s recipe uses {per_batch} cups of flour to make {makes} cookies."],
         f"How many cups of flour does {p.he} need to make {want} cookies?", "cookies", "cups of flour"),
        ([f"{p.name} needs {per_batch} eggs to bake {makes} muffins.",
          f"{p.He} wants to bake {want} muffins for a party."],
         f"How many eggs does {p.he} need?", "muffins", "eggs"),
        ([f"It takes {per_batch} scoops of lemonade powder to make {makes} cups of lemonade."],
         f"How many scoops does {p.name} need to make {want} cups of lemonade?", "cups of lemonade", "scoops"),
    ])
    sol = Solution()
    count = sol.step(f"To make {want} {product}, {p.he} needs", f"{want}/{makes}", "batches")
    sol.step(f"{p.He} needs", f"{count}*{per_batch}", amount)
    return Problem(setup, ask, sol, p)


# --------------------------------------------------------------------------
# Three-step shapes
# --------------------------------------------------------------------------


@template("compare_totals")
def compare_totals(rng: random.Random) -> Problem:
    """Two people's products, then their difference or their sum."""
    a, b = people(rng, 2)
    x1, y1, x2, y2 = rng.randint(2, 12), rng.randint(2, 20), rng.randint(2, 12), rng.randint(2, 20)
    difference = rng.random() < 0.6
    scenario = rng.randrange(3)
    sol = Solution()
    if scenario == 0:
        setup = [f"{a.name} buys {x1} boxes of crayons with {y1} crayons in each box.",
                 f"{b.name} buys {x2} boxes with {y2} crayons in each."]
        ask = (f"How many more crayons does {a.name} have than {b.name}?" if difference
               else "How many crayons do they have in all?")
        verb, unit, money = "has", "crayons", False
    elif scenario == 1:
        setup = [f"{a.name} reads {x1} pages a day for {y1} days.",
                 f"{b.name} reads {x2} pages a day for {y2} days."]
        ask = (f"How many more pages does {a.name} read than {b.name}?" if difference
               else "How many pages do they read altogether?")
        verb, unit, money = "reads", "pages", False
    else:
        setup = [f"{a.name} earns ${x1} an hour and works {y1} hours.",
                 f"{b.name} earns ${x2} an hour and works {y2} hours."]
        ask = (f"How much more money does {a.name} earn than {b.name}?" if difference
               else "How much money do they earn altogether?")
        verb, unit, money = "earns", "", True
    first = sol.step(f"{a.name} {verb}", f"{x1}*{y1}", unit, money)
    second = sol.step(f"{b.name} {verb}", f"{x2}*{y2}", unit, money)
    if difference:
        more = f"more {unit} than {b.name}".replace("  ", " ")
        sol.step(f"{a.name} {verb}", f"{first}-{second}", more, money)
    else:
        together = {"has": "have", "reads": "read", "earns": "earn"}[verb]
        sol.step(f"Together they {together}", f"{first}+{second}", unit, money)
    return Problem(setup, ask, sol, a)


@template("gains_and_losses")
def gains_and_losses(rng: random.Random) -> Problem:
    """A starting amount, then three ups and downs."""
    p = person(rng)
    start = rng.randint(10, 50)
    amounts = [rng.randint(2, 25) for _ in range(3)]
    signs = rng.choice([[1, -1, 1], [-1, 1, -1], [1, 1, -1], [-1, -1, 1], [1, -1, -1], [-1, 1, 1]])
    scenario = rng.randrange(3)
    if scenario == 0:
        gains = rng.sample([("wins {k} more in a game", "winning"), ("finds {k} under the couch", "finding some"),
                            ("gets {k} from a friend", "getting some from a friend")], 3)
        losses = rng.sample([(f"gives {{k}} to {p.his} brother", "giving some away"),
                             ("loses {k} at the park", "losing some"),
                             ("trades away {k}", "trading some away")], 3)
        events = [(gains if s > 0 else losses)[i] for i, s in enumerate(signs)]
        said = [text.format(k=k) for (text, _), k in zip(events, amounts, strict=True)]
        setup = [f"{p.name} has {start} marbles.", f"{p.He} {said[0]}, then {said[1]}, and then {said[2]}."]
        ask = f"How many marbles does {p.name} have now?"
        prefixes = [f"After {gerund}, {p.he} has" for _, gerund in events]
        unit = "marbles"
    elif scenario == 1:
        said = [f"{k} people get {'on' if s > 0 else 'off'}" for s, k in zip(signs, amounts, strict=True)]
        setup = [f"{p.name} drives a bus that leaves the station with {start} passengers.",
                 f"At the first stop, {said[0]}.",
                 f"At the second stop, {said[1]}.", f"At the third stop, {said[2]}."]
        ask = "How many passengers are on the bus after the third stop?"
        prefixes = [f"After the {nth} stop there are" for nth in ("first", "second", "third")]
        unit = "passengers"
    else:
        losses = rng.sample(["sells {k}", "donates {k} to a shelter"], 2)
        said = [("bakes {k} more" if s > 0 else losses[i % 2]).format(k=k)
                for i, (s, k) in enumerate(zip(signs, amounts, strict=True))]
        setup = [f"{p.name}'s bakery starts the day with {start} loaves of bread.",
                 f"In the morning it {said[0]}, at noon it {said[1]}, and in the afternoon it {said[2]}."]
        ask = "How many loaves does the bakery have at the end of the day?"
        prefixes = ["After the morning it has", "After noon it has", "After the afternoon it has"]
        unit = "loaves"
    sol = Solution()
    value = start
    for prefix, s, k in zip(prefixes, signs, amounts, strict=True):
        value = sol.step(prefix, f"{value}{'+' if s > 0 else '-'}{k}", unit)
    return Problem(setup, ask, sol, p)


@template("trip_distance")
def trip_distance(rng: random.Random) -> Problem:
    """Two legs of a trip at different speeds."""
    p = person(rng)
    if rng.random() < 0.5:
        s1, s2, h1, h2 = rng.randint(20, 60), rng.randint(20, 60), rng.randint(2, 5), rng.randint(2, 5)
        setup, ask = rng.choice([
            ([(f"{p.name} drives at {s1} miles per hour for {h1} hours, "
               f"then at {s2} miles per hour for {h2} hours.")],
             f"How many miles does {p.he} drive in total?"),
            ([f"On a road trip, {p.name} drives for {h1} hours at {s1} miles per hour.",
              f"After lunch {p.he} drives {h2} more hours at {s2} miles per hour."],
             f"How far does {p.name} drive altogether, in miles?"),
        ])
        verb, unit = "drives", "miles"
    else:
        s1, s2, h1, h2 = rng.randint(8, 20), rng.randint(8, 20), rng.randint(2, 4), rng.randint(2, 4)
        setup, ask = rng.choice([
            ([f"{p.name} cycles at {s1} kilometers per hour for {h1} hours in the morning.",
              f"In the afternoon {p.he} cycles at {s2} kilometers per hour for {h2} hours."],
             f"How many kilometers does {p.he} cycle that day?"),
            ([(f"{p.name} rides {p.his} bike for {h1} hours at {s1} kilometers per hour "
               f"and then for {h2} hours at {s2} kilometers per hour.")],
             f"How far does {p.name} ride in kilometers?"),
        ])
        verb, unit = "cycles", "kilometers"
    sol = Solution()
    d1 = sol.step(f"First {p.he} {verb}", f"{s1}*{h1}", unit)
    d2 = sol.step(f"Then {p.he} {verb}", f"{s2}*{h2}", unit)
    sol.step(f"In total {p.he} {verb}", f"{d1}+{d2}", unit)
    return Problem(setup, ask, sol, p)


@template("two_item_shopping")
def two_item_shopping(rng: random.Random) -> Problem:
    """Two kinds of items at two prices."""
    p = person(rng)
    (item1, items1, lo1, hi1), (item2, items2, lo2, hi2) = rng.sample(SHOP_ITEMS, 2)
    n1, n2, p1, p2 = rng.randint(2, 8), rng.randint(2, 8), rng.randint(lo1, hi1), rng.randint(lo2, hi2)
    store = rng.choice(STORES)
    setup, ask = rng.choice([
        ([f"{p.name} buys {n1} {items1} at ${p1} each and {n2} {items2} at ${p2} each."],
         f"How much does {p.he} spend in all?"),
        ([f"At the {store}, {items1} cost ${p1} each and {items2} cost ${p2} each.",
          f"{p.name} buys {n1} {items1} and {n2} {items2}."],
         f"How much money does {p.name} spend?"),
        ([f"{p.name} buys {n1} {items1} and {n2} {items2}.",
          f"Each {item1} costs ${p1} and each {item2} costs ${p2}."],
         "What is the total cost?"),
    ])
    sol = Solution()
    c1 = sol.step(f"The {items1} cost", f"{n1}*{p1}", money=True)
    c2 = sol.step(f"The {items2} cost", f"{n2}*{p2}", money=True)
    sol.step(f"{p.name} spends", f"{c1}+{c2}", "in all", money=True)
    return Problem(setup, ask, sol, p)


@template("discount_multiple")
def discount_multiple(rng: random.Random) -> Problem:
    """Percent off one item, then several items at the sale price."""
    p = person(rng)
    item, items, lo, hi = rng.choice(SHOP_ITEMS)
    pct, d = percent(rng)
    price = d * max(1, rng.randint(lo, hi) // d + rng.randint(0, 1))
    n, store = rng.randint(2, 6), rng.choice(STORES)
    setup, ask = rng.choice([
        ([f"A {item} normally costs ${price}.", f"This week it is {pct}% off, and {p.name} buys {n} of them."],
         f"How much does {p.he} pay?"),
        ([f"{p.name} wants {n} {items}, which usually cost ${price} each.",
          f"The {store} is having a {pct}% off sale."],
         f"How much will {p.name} spend on the {items}?"),
    ])
    sol = Solution()
    off = sol.step(f"Since {pct}% is 1/{d}, the discount is", f"{price}/{d}", money=True)
    sale = sol.step("The sale price is", f"{price}-{off}", money=True)
    sol.step(f"For {n} {items}, {p.he} pays", f"{n}*{sale}", money=True)
    return Problem(setup, ask, sol, p)


@template("fence_cost")
def fence_cost(rng: random.Random) -> Problem:
    """Perimeter of a rectangle, then times a price or a number of laps."""
    p = person(rng)
    length, width, rate = rng.randint(4, 30), rng.randint(2, 20), rng.randint(2, 9)
    variant = rng.randrange(3)
    if variant == 0:
        setup = [f"{p.name}'s rectangular garden is {length} meters long and {width} meters wide.",
                 f"Fencing costs ${rate} per meter."]
        ask = f"How much does it cost {p.him} to fence the whole garden?"
        unit, last, money, last_unit = "meters", "The fence costs", True, ""
    elif variant == 1:
        setup = [(f"{p.name} is putting lights around a rectangular window "
                  f"{length} feet wide and {width} feet tall."),
                 f"Each foot of lights costs ${rate}."]
        ask = f"How much does {p.he} spend on lights?"
        unit, last, money, last_unit = "feet", "The lights cost", True, ""
    else:
        rate = rng.randint(2, 6)
        setup = [f"{p.name} walks around a rectangular park that is {length} meters long and {width} meters wide.",
                 f"{p.He} goes around it {rate} times."]
        ask = f"How many meters does {p.he} walk?"
        unit, last, money, last_unit = "meters", f"{p.He} walks", False, "meters"
    sol = Solution()
    half = sol.step("The length and width add up to", f"{length}+{width}", unit)
    around = sol.step("The perimeter is", f"2*{half}", unit)
    sol.step(last, f"{around}*{rate}", last_unit, money)
    return Problem(setup, ask, sol, p)


@template("ages_sum")
def ages_sum(rng: random.Random) -> Problem:
    """Three ages from relations, then their sum."""
    a, b, c = people(rng, 3)
    age = rng.randint(4, 20)
    sol = Solution()
    variant = rng.randrange(3)
    if variant in (0, 1):
        diff = rng.randint(2, age)
        if variant == 0:
            setup = [f"{a.name} is {age} years old.",
                     f"{b.name} is twice as old as {a.name}, and {c.name} is {diff} years younger than {b.name}."]
            ask = "What is the sum of their three ages?"
        else:
            setup = [f"{b.name} is twice as old as {b.his} cousin {a.name}, who is {age}.",
                     f"{c.name} is {diff} years younger than {b.name}."]
            ask = "How old are the three of them altogether?"
        age_b = sol.step(f"{b.name} is", f"2*{age}", "years old")
        age_c = sol.step(f"{c.name} is", f"{age_b}-{diff}", "years old")
    else:
        diff, times = rng.randint(2, 20), rng.randint(2, 3)
        how = "twice" if times == 2 else "three times"
        setup = [f"{a.name} is {age} years old.", f"{b.name} is {diff} years older than {a.name}.",
                 f"{c.name} is {how} as old as {a.name}."]
        ask = "What is the total of their ages?"
        age_b = sol.step(f"{b.name} is", f"{age}+{diff}", "years old")
        age_c = sol.step(f"{c.name} is", f"{age}*{times}", "years old")
    sol.step("Together they are", f"{age}+{age_b}+{age_c}", "years old")
    return Problem(setup, ask, sol, a)


@template("weekly_pay_spending")
def weekly_pay_spending(rng: random.Random) -> Problem:
    """Hours per week, pay per hour, minus a purchase."""
    p = person(rng)
    hours, days, wage = rng.randint(2, 8), rng.randint(2, 6), rng.randint(5, 20)
    spend, job = rng.randint(5, 60), rng.choice(JOBS)
    thing = rng.choice(["bus fare", "lunches", "a new phone case", "movie tickets", "art supplies"])
    setup, ask = rng.choice([
        ([f"{p.name} works {hours} hours a day, {days} days a week, at the {job}.",
          f"{p.He} is paid ${wage} an hour and spends ${spend} of {p.his} weekly pay on {thing}."],
         f"How much money does {p.he} have left each week?"),
        ([f"{p.name} earns ${wage} per hour at the {job}.",
          f"Last week {p.he} worked {hours} hours on each of {days} days and then spent ${spend} on {thing}."],
         f"How much of last week's pay does {p.he} have left?"),
    ])
    sol = Solution()
    total_hours = sol.step(f"{p.He} works", f"{hours}*{days}", "hours in the week")
    pay = sol.step(f"{p.He} earns", f"{total_hours}*{wage}", money=True)
    sol.step(f"After spending, {p.he} has", f"{pay}-{spend}", "left", money=True)
    return Problem(setup, ask, sol, p)


@template("classroom_leftover")
def classroom_leftover(rng: random.Random) -> Problem:
    """Boxes of things, some handed out per person, how many are left."""
    p = person(rng)
    boxes, per_box = rng.randint(2, 10), rng.randint(6, 24)
    people_count, each = rng.randint(5, 30), rng.randint(2, 4)
    setup, ask, things, has, gives = rng.choice([
        ([f"{p.name} is a teacher with {boxes} boxes of pencils.", f"Each box holds {per_box} pencils.",
          f"{p.He} gives {each} pencils to each of {p.his} {people_count} students."],
         "How many pencils are left over?", "pencils", f"{p.He} has", f"{p.He} gives out"),
        ([f"{p.name} brings {boxes} bags of oranges with {per_box} oranges in each bag to the team's game.",
          f"Each of the {people_count} players eats {each} oranges."],
         "How many oranges are left over?", "oranges", f"{p.He} brings", "The players eat"),
        ([(f"{p.name} buys {boxes} packs of stickers with {per_box} stickers in each pack "
           f"and gives {each} stickers to each of {people_count} classmates.")],
         f"How many stickers does {p.he} have left?", "stickers", f"{p.He} buys", f"{p.He} gives away"),
    ])
    sol = Solution()
    total = sol.step(has, f"{boxes}*{per_box}", things)
    used = sol.step(gives, f"{each}*{people_count}", things)
    sol.step("There are", f"{total}-{used}", f"{things} left")
    return Problem(setup, ask, sol, p)


# --------------------------------------------------------------------------
# Four-step shapes
# --------------------------------------------------------------------------


@template("party_split")
def party_split(rng: random.Random) -> Problem:
    """Two purchases, add them, split the bill equally."""
    p = person(rng)
    group = rng.randint(3, 6)
    n1, p1, n2, p2 = rng.randint(2, 5), rng.randint(6, 15), rng.randint(2, 8), rng.randint(2, 5)
    if (n1 * p1 + n2 * p2) % group:
        raise Reject("bill does not split evenly")
    setup, ask, items1, items2 = rng.choice([
        ([(f"{p.name} and {p.his} friends, {group} people in all, "
           f"order {n1} pizzas at ${p1} each and {n2} drinks at ${p2} each.")],
         "If they split the bill equally, how much does each person pay?", "pizzas", "drinks"),
        ([(f"{p.name} buys lunch for {p.his} team of {group} people: "
           f"{n1} sandwiches at ${p1} each and {n2} salads at ${p2} each."),
          "The team shares the cost equally."],
         "How much does each person pay?", "sandwiches", "salads"),
        ([(f"{group} friends, including {p.name}, rent {n1} kayaks for ${p1} each "
           f"and buy {n2} snack packs for ${p2} each."),
          "They share the total cost equally."],
         f"How much does {p.name} pay?", "kayaks", "snack packs"),
    ])
    sol = Solution()
    c1 = sol.step(f"The {items1} cost", f"{n1}*{p1}", money=True)
    c2 = sol.step(f"The {items2} cost", f"{n2}*{p2}", money=True)
    total = sol.step("The total is", f"{c1}+{c2}", money=True)
    sol.step("Each person pays", f"{total}/{group}", money=True)
    return Problem(setup, ask, sol, p)


@template("fraction_chain")
def fraction_chain(rng: random.Random) -> Problem:
    """Give away a fraction, then a fraction of what is left."""
    p = person(rng)
    first, second = rng.randint(2, 4), rng.randint(2, 4)
    total = first * second * rng.randint(1, 240 // (first * second))
    if total < 12:
        raise Reject("too small")
    f1, f2 = FRACTION_WORDS[first], FRACTION_WORDS[second]
    variant = rng.randrange(3)
    if variant == 0:
        setup = [f"{p.name} has {total} stickers.",
                 (f"{p.He} gives {f1} of them to {p.his} sister "
                  f"and then {f2} of the remaining stickers to a friend.")]
        ask = f"How many stickers does {p.name} have left?"
        first_use, second_use = f"{p.He} gives {p.his} sister", f"{p.He} gives {p.his} friend"
        unit, money = "stickers", False
    elif variant == 1:
        setup = [f"{p.name} had ${total}.",
                 f"{p.He} spent {f1} of it on a jacket and then {f2} of what was left on shoes."]
        ask = f"How much money does {p.he} have now?"
        first_use, second_use, unit, money = f"{p.He} spends", f"Then {p.he} spends", "", True
    else:
        setup = [f"{p.name} picked {total} apples on {p.his} farm.",
                 f"{p.He} sold {f1} of them at the market and used {f2} of the rest to make pies."]
        ask = "How many apples are left?"
        first_use, second_use, unit, money = f"{p.He} sells", f"{p.He} uses", "apples", False
    sol = Solution()
    gone = sol.step(first_use, f"{total}/{first}", unit, money)
    rest = sol.step("That leaves", f"{total}-{gone}", unit, money)
    gone2 = sol.step(second_use, f"{rest}/{second}", unit, money)
    sol.step(f"{p.He} has", f"{rest}-{gone2}", f"{unit} left".strip(), money)
    return Problem(setup, ask, sol, p)


@template("store_inventory")
def store_inventory(rng: random.Random) -> Problem:
    """Stock minus two days of sales plus a delivery."""
    p = person(rng)
    start, first, times, delivery = rng.randint(40, 200), rng.randint(3, 30), rng.randint(2, 3), rng.randint(5, 50)
    how = "twice" if times == 2 else "three times"
    variant = rng.randrange(3)
    if variant == 0:
        things = rng.choice(["teddy bears", "toy trucks", "board games", "kites"])
        setup = [f"{p.name}'s toy store has {start} {things}.",
                 f"On Monday it sells {first} of them, and on Tuesday it sells {how} as many as on Monday.",
                 f"On Wednesday a delivery brings {delivery} more."]
        ask = f"How many {things} does the store have now?"
        verb = "sells"
    elif variant == 1:
        things = "eggs"
        setup = [f"{p.name}'s farm stand has {start} eggs.",
                 f"{p.He} sells {first} eggs on Saturday and {how} as many on Sunday.",
                 f"Then {p.his} hens lay {delivery} more eggs."]
        ask = f"How many eggs does {p.name} have now?"
        verb = "sells"
    else:
        things = "stickers"
        setup = [f"{p.name} has {start} stickers.",
                 f"{p.He} uses {first} of them on Monday and {how} as many on Tuesday, then buys {delivery} more."]
        ask = f"How many stickers does {p.he} have now?"
        verb = "uses"
    sol = Solution()
    second = sol.step(f"On the second day {p.he if variant else 'it'} {verb}", f"{times}*{first}", things)
    gone = sol.step(f"Over the two days {p.he if variant else 'it'} {verb}", f"{first}+{second}", things)
    left = sol.step("That leaves", f"{start}-{gone}", things)
    sol.step("After the new ones arrive there are", f"{left}+{delivery}", things)
    return Problem(setup, ask, sol, p)


@template("two_item_change")
def two_item_change(rng: random.Random) -> Problem:
    """Two kinds of items, pay with a bill, get change."""
    p = person(rng)
    (_, items1, lo1, hi1), (_, items2, lo2, hi2) = rng.sample(SHOP_ITEMS, 2)
    n1, n2, p1, p2 = rng.randint(2, 5), rng.randint(2, 5), rng.randint(lo1, hi1), rng.randint(lo2, hi2)
    bills = [b for b in (20, 50, 100) if b > n1 * p1 + n2 * p2][:2]
    if not bills:
        raise Reject("no bill is large enough")
    bill, store = rng.choice(bills), rng.choice(STORES)
    setup, ask = rng.choice([
        ([f"{p.name} buys {n1} {items1} for ${p1} each and {n2} {items2} for ${p2} each.",
          f"{p.He} pays with a ${bill} bill."],
         f"How much change does {p.he} get?"),
        ([f"{p.name} has ${bill}.",
          f"At the {store} {p.he} buys {n1} {items1} at ${p1} each and {n2} {items2} at ${p2} each."],
         f"How much money does {p.name} have left?"),
    ])
    sol = Solution()
    c1 = sol.step(f"The {items1} cost", f"{n1}*{p1}", money=True)
    c2 = sol.step(f"The {items2} cost", f"{n2}*{p2}", money=True)
    total = sol.step(f"{p.He} spends", f"{c1}+{c2}", money=True)
    sol.step(f"{p.He} has", f"{bill}-{total}", "left", money=True)
    return Problem(setup, ask, sol, p)


# --------------------------------------------------------------------------
# Assembling rows and splits
# --------------------------------------------------------------------------


def draw(rng: random.Random, fn: Template, tries: int = 1000) -> Problem:
    """Call a template until its numbers satisfy every rule."""
    for _ in range(tries):
        try:
            return fn(rng)
        except Reject:
            continue
    raise RuntimeError(f"template {fn.__name__} keeps failing")


def make_row(rng: random.Random, shape: str, fn: Template) -> dict[str, object]:
    """Draw one problem and turn it into a dataset row (without its id)."""
    problem = draw(rng, fn)
    sentences = list(problem.setup)
    distractor = rng.random() < DISTRACTOR_RATE
    if distractor:
        who = problem.person
        detail = rng.choice(DISTRACTORS).format(name=who.name, his=who.his, k=rng.randint(2, 40))
        # first or last, so that no "it"/"them" in the facts gets a new referent
        sentences.insert(rng.choice([0, len(sentences)]), detail)
    sol = problem.solution
    return {
        "question": " ".join(sentences + [problem.ask]),
        "answer": "\n".join(sol.lines + [f"#### {sol.last}"]),
        "shape": shape,
        "steps": len(sol.lines),
        "distractor": distractor,
    }


def generate_split(rng: random.Random, n: int, split: str, exclude: set[str]) -> list[dict[str, object]]:
    """Make ``n`` rows with questions not in ``exclude``.

    Shapes are used in rounds (every shape once per round, shuffled), so all
    shapes appear about equally often.
    """
    rows: list[dict[str, object]] = []
    seen = set(exclude)
    while len(rows) < n:
        order = list(TEMPLATES)
        rng.shuffle(order)
        for shape, fn in order:
            if len(rows) == n:
                break
            row = make_row(rng, shape, fn)
            if row["question"] in seen:
                continue
            seen.add(str(row["question"]))
            rows.append({"id": f"{split}-{len(rows):05d}", **row})
    return rows


def generate(n_train: int = DEFAULT_N_TRAIN, n_test: int = DEFAULT_N_TEST,
             seed: int = DEFAULT_SEED) -> dict[str, list[dict[str, object]]]:
    """Make both splits. Test uses seed+1 and skips any question already in train."""
    train = generate_split(random.Random(seed), n_train, "train", set())
    test = generate_split(random.Random(seed + 1), n_test, "test", {str(r["question"]) for r in train})
    return {"train": train, "test": test}


def render(rows: list[dict[str, object]]) -> str:
    """JSON Lines text: one object per line, UTF-8, ``\\n`` line ends."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=DEFAULT_N_TRAIN)
    parser.add_argument("--n-test", type=int, default=DEFAULT_N_TEST)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--check", action="store_true", help="regenerate in memory; exit 1 if the files differ")
    args = parser.parse_args(argv)

    splits = generate(args.n_train, args.n_test, args.seed)
    stale = []
    for split, rows in splits.items():
        path = args.out_dir / f"{split}.jsonl"
        text = render(rows)
        if args.check:
            on_disk = path.read_bytes() if path.exists() else None
            if on_disk != text.encode("utf-8"):
                stale.append(path)
        else:
            path.write_text(text, encoding="utf-8", newline="\n")
            print(f"wrote {len(rows)} rows to {path}")
    if stale:
        for path in stale:
            print(f"out of date: {path} (run: python data/make_dataset.py)", file=sys.stderr)
        return 1
    if args.check:
        print("data files are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
