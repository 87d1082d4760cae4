# ruff: noqa: E501 - one template per line reads best
"""The large Quillfeather domain: questions written from templates with parameters.

Each of the 24 rules of `make_data.py` has its own templates, and every template belongs to exactly
one split: `collect` (traces and preference pairs), `validation` (every choice: settings, recipe,
the promotion gate) or `test` (reported figures only). Parameters (weekdays, amounts, times,
counts) are drawn at random and the reference is computed from the rule, so a test question is a
phrasing the collection never saw, not a memorised one.

    python examples/data/quillfeather/make_data.py   # also rewrites large/{collect,validation,test}.jsonl

Rows: `id`, `question`, `reference`, `rule`, `template`, `split`.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

SPLITS = ("collect", "validation", "test")
PER_RULE = {"collect": 10, "validation": 5, "test": 10}
"""Questions per rule and split."""

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def wd(i: int) -> str:
    """The weekday `i` days after Monday (any integer)."""
    return WEEKDAYS[i % 7]


def mo(i: int) -> str:
    """Month number `i` (1 = January; any integer wraps around the year)."""
    return MONTHS[(i - 1) % 12]


def hm(minutes: int) -> str:
    """Minutes after midnight as a 24-hour clock time: 555 -> '09:15'."""
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def clock(h: int, m: int = 0) -> int:
    return 60 * h + m


def times(first: int, last: int, step: int = 10) -> list[int]:
    """Clock times (in minutes) from `first` to `last` every `step` minutes."""
    return list(range(first, last + 1, step))


def days_until(target: int) -> Callable[..., str]:
    """The days from weekday `d` to the next weekday `target` (both 0 = Monday)."""
    return lambda d: str((target - d) % 7)


def but(target: int) -> list[int]:
    """Every weekday index except `target`."""
    return [d for d in range(7) if d != target]


@dataclass(frozen=True)
class Template:
    """One question shape of one rule: `text` with `{name}` slots, the values each slot takes,
    and the reference computed from them. Weekday slots take indexes (0 = Monday) shown by name,
    month slots take numbers (1 = January), time slots take minutes after midnight."""

    rule: str
    name: str
    split: str
    text: str
    answer: Callable[..., str]
    params: dict[str, Sequence[Any]]
    show: dict[str, Callable[[Any], str]]

    def combos(self) -> list[dict[str, Any]]:
        keys = sorted(self.params)
        return [
            dict(zip(keys, values, strict=True))
            for values in itertools.product(*(self.params[k] for k in keys))
        ]

    def render(self, values: dict[str, Any]) -> tuple[str, str]:
        shown = {k: self.show.get(k, str)(v) for k, v in values.items()}
        return self.text.format(**shown), self.answer(**values)


TEMPLATES: list[Template] = []
_count: dict[tuple[str, str], int] = {}


def t(rule: str, split: str, text: str, answer: Callable[..., str], **params: Sequence[Any]) -> None:
    """Add a template; a slot named d shows as a weekday, m as a month, t as a clock time."""
    k = _count[(rule, split)] = _count.get((rule, split), 0) + 1
    show = {name: {"d": wd, "m": mo, "t": hm}[name] for name in params if name in ("d", "m", "t")}
    TEMPLATES.append(Template(rule, f"{rule}-{split[0]}{k}", split, text, answer, params, show))


C, V, T = "collect", "validation", "test"
THU, FRI, MON = 3, 4, 0
MORNING = times(clock(9), clock(16, 50))

# -- expense: reports are due every Thursday --------------------------------------------------------
t(
    "expense",
    C,
    "Today is {d}. How many days remain until Quillfeather expense reports are due?",
    days_until(THU),
    d=but(THU),
)
t(
    "expense",
    C,
    "Which weekday comes {n} days after the Quillfeather expense report due day?",
    lambda n: wd(THU + n),
    n=range(2, 7),
)
t(
    "expense",
    V,
    "It is {d} morning. How many days does a Quillfeather employee have left to submit an expense report?",
    days_until(THU),
    d=but(THU),
)
t(
    "expense",
    V,
    "Which weekday is {n} days before the Quillfeather expense report deadline?",
    lambda n: wd(THU - n),
    n=range(2, 7),
)
t(
    "expense",
    T,
    "It is {d}. In how many days is the next Quillfeather expense report deadline?",
    days_until(THU),
    d=but(THU),
)
t(
    "expense",
    T,
    "A Quillfeather expense report is handed in {n} days after its due day. Which weekday is that?",
    lambda n: wd(THU + n),
    n=range(2, 7),
)

# -- remote: three remote days per week --------------------------------------------------------------
t(
    "remote",
    C,
    "Over {n} weeks, how many days at most may a Quillfeather employee work from home?",
    lambda n: str(3 * n),
    n=range(2, 10),
)
t(
    "remote",
    C,
    "A Quillfeather employee has already worked remotely {n} days this week. How many more remote days may they take?",
    lambda n: str(3 - n),
    n=range(0, 3),
)
t(
    "remote",
    V,
    "How many remote-work days is a Quillfeather employee allowed in {n} weeks?",
    lambda n: str(3 * n),
    n=range(2, 9),
)
t(
    "remote",
    T,
    "A Quillfeather employee works a {n}-day week. At least how many of those days must be spent in the office?",
    lambda n: str(n - 3),
    n=(4, 5, 6),
)
t(
    "remote",
    T,
    "What is the largest number of days a Quillfeather employee may work remotely during a {n}-week project?",
    lambda n: str(3 * n),
    n=range(10, 17),
)

# -- travel: over 500 euros needs the Finance Warden --------------------------------------------------
t(
    "travel",
    C,
    "A Quillfeather trip has cost {a} euros so far. How many more euros can it cost before it needs the Finance Warden's approval?",
    lambda a: str(500 - a),
    a=range(100, 451, 50),
)
t(
    "travel",
    C,
    "A Quillfeather trip costs {a} euros. By how many euros is it over the approval threshold?",
    lambda a: str(a - 500),
    a=range(550, 901, 50),
)
t(
    "travel",
    V,
    "A Quillfeather trip has a {a}-euro flight and a {b}-euro hotel. By how many euros is it over the limit that needs special approval?",
    lambda a, b: str(a + b - 500),
    a=(300, 350, 400),
    b=(250, 300),
)
t(
    "travel",
    V,
    "Which Quillfeather role must sign off a business trip costing {a} euros?",
    lambda a: "Finance Warden",
    a=(600, 750, 900),
)
t(
    "travel",
    T,
    "A Quillfeather trip costs {a} euros for train tickets and {b} euros for the hotel. By how many euros does it exceed the limit above which the Finance Warden must approve?",
    lambda a, b: str(a + b - 500),
    a=(200, 250, 300),
    b=(350, 400),
)
t(
    "travel",
    T,
    "A Quillfeather employee has booked {a} euros of trip costs. How many more euros can they book without needing special approval?",
    lambda a: str(500 - a),
    a=(120, 180, 240, 320, 410),
)
t(
    "travel",
    T,
    "Who at Quillfeather Labs has to approve a {a}-euro business trip?",
    lambda a: "Finance Warden",
    a=(650, 800, 1000),
)

# -- password: at least 14 characters -----------------------------------------------------------------
t(
    "password",
    C,
    "A Quillfeather employee's password has {n} characters. How many more characters does it need to meet the rule?",
    lambda n: str(14 - n),
    n=range(6, 14),
)
t(
    "password",
    C,
    "What is the smallest total length of {n} Quillfeather passwords that all meet the rule?",
    lambda n: str(14 * n),
    n=range(2, 6),
)
t(
    "password",
    V,
    "A new Quillfeather password is {n} characters long. How many characters short of the minimum is it?",
    lambda n: str(14 - n),
    n=range(5, 13),
)
t(
    "password",
    T,
    "A Quillfeather password is made of two {n}-letter words. How many characters must be added to make it valid?",
    lambda n: str(14 - 2 * n),
    n=(3, 4, 5, 6),
)
t(
    "password",
    T,
    "A Quillfeather employee's password is {n} characters longer than the minimum. How long is it?",
    lambda n: str(14 + n),
    n=range(1, 9),
)

# -- meeting: at most 45 minutes ----------------------------------------------------------------------
t(
    "meeting",
    C,
    "A Quillfeather meeting starts at {t}. What is the latest time it may end?",
    lambda t: hm(t + 45),
    t=MORNING,
)
t(
    "meeting",
    C,
    "How many minutes do {n} back-to-back Quillfeather meetings take if each runs as long as allowed?",
    lambda n: str(45 * n),
    n=range(2, 6),
)
t(
    "meeting",
    V,
    "A Quillfeather meeting began at {t} and runs the maximum allowed length. When does it finish?",
    lambda t: hm(t + 45),
    t=MORNING,
)
t(
    "meeting",
    T,
    "A Quillfeather meeting must be over by {t} and runs as long as allowed. At what time does it start?",
    lambda t: hm(t - 45),
    t=MORNING,
)
t(
    "meeting",
    T,
    "A Quillfeather meeting has already run for {n} minutes. How many more minutes may it continue?",
    lambda n: str(45 - n),
    n=range(10, 36, 5),
)

# -- library: fifth floor ----------------------------------------------------------------------------
t(
    "library",
    C,
    "You are on floor {n} of the Quillfeather building. How many floors up is the library?",
    lambda n: str(5 - n),
    n=range(0, 5),
)
t(
    "library",
    C,
    "You are on floor {n} of the Quillfeather building. How many floors down is the library?",
    lambda n: str(n - 5),
    n=range(6, 13),
)
t(
    "library",
    V,
    "A Quillfeather employee sits {n} floors below the library. Which floor number is their desk on?",
    lambda n: str(5 - n),
    n=range(2, 5),
)
t(
    "library",
    V,
    "How many floors does a Quillfeather employee climb from floor {n} to reach the library?",
    lambda n: str(5 - n),
    n=range(0, 4),
)
t(
    "library",
    T,
    "Each floor of the Quillfeather building has {n} stairs. How many stairs lead from the ground floor (floor 0) to the library?",
    lambda n: str(5 * n),
    n=(12, 14, 15, 16, 18, 20),
)
t(
    "library",
    T,
    "A Quillfeather employee's desk is {n} floors above the library. Which floor number is the desk on?",
    lambda n: str(5 + n),
    n=range(2, 8),
)

# -- freeze: code freeze every December ---------------------------------------------------------------
t(
    "freeze",
    C,
    "It is {m}. How many months until the Quillfeather code freeze month?",
    lambda m: str(12 - m),
    m=range(1, 12),
)
t(
    "freeze",
    C,
    "A Quillfeather release is planned {n} months before the code freeze month. Which month is that?",
    lambda n: mo(12 - n),
    n=range(2, 9),
)
t(
    "freeze",
    V,
    "Counting from {m}, how many months is it to the Quillfeather code freeze?",
    lambda m: str(12 - m),
    m=range(1, 12),
)
t(
    "freeze",
    T,
    "Which month is {n} months after the Quillfeather code freeze month?",
    lambda n: mo(12 + n),
    n=range(2, 10),
)
t(
    "freeze",
    T,
    "How many months after the Quillfeather code freeze month is {m} of the next year?",
    lambda m: str(m),
    m=range(1, 11),
)

# -- deploy: never on a Friday ------------------------------------------------------------------------
t(
    "deploy",
    C,
    "Which weekday is {n} days before the day on which Quillfeather never deploys?",
    lambda n: wd(FRI - n),
    n=range(2, 7),
)
t(
    "deploy",
    C,
    "Which weekday is {n} days after the Quillfeather no-deploy day?",
    lambda n: wd(FRI + n),
    n=range(2, 7),
)
t(
    "deploy",
    V,
    "It is {d}. How many days until the next day on which Quillfeather Labs does not deploy software?",
    days_until(FRI),
    d=but(FRI),
)
t(
    "deploy",
    T,
    "Today is {d}. In how many days is the weekday on which Quillfeather never ships a deployment?",
    days_until(FRI),
    d=but(FRI),
)
t(
    "deploy",
    T,
    "A Quillfeather release was ready {n} days before the no-deploy weekday. On which weekday was it ready?",
    lambda n: wd(FRI - n),
    n=range(2, 7),
)

# -- parental: 20 weeks ------------------------------------------------------------------------------
t(
    "parental",
    C,
    "A Quillfeather employee has taken {n} weeks of parental leave. How many weeks remain?",
    lambda n: str(20 - n),
    n=range(2, 19, 2),
)
t(
    "parental",
    C,
    "A Quillfeather employee takes the full parental leave and then {n} weeks of holiday. How many weeks off is that in total?",
    lambda n: str(20 + n),
    n=range(1, 7),
)
t(
    "parental",
    V,
    "A Quillfeather employee is {n} weeks into parental leave. How many weeks of it are left?",
    lambda n: str(20 - n),
    n=range(3, 18, 2),
)
t(
    "parental",
    T,
    "Counting {n} working days per week, how many working days of parental leave does Quillfeather offer?",
    lambda n: str(20 * n),
    n=(4, 5, 6),
)
t(
    "parental",
    T,
    "How many weeks of parental leave would {n} Quillfeather employees take in total if each took all of it?",
    lambda n: str(20 * n),
    n=range(2, 7),
)
t(
    "parental",
    T,
    "A Quillfeather employee still has {n} weeks of parental leave ahead. How many weeks have they already taken?",
    lambda n: str(20 - n),
    n=range(2, 20, 3),
)

# -- oncall: 10 days per turn --------------------------------------------------------------------------
t("oncall", C, "How many days are {n} Quillfeather on-call turns?", lambda n: str(10 * n), n=range(2, 10))
t(
    "oncall",
    C,
    "A Quillfeather engineer is on day {n} of an on-call turn. How many days of the turn are left after today?",
    lambda n: str(10 - n),
    n=range(1, 10),
)
t(
    "oncall",
    V,
    "A Quillfeather engineer has served {n} days of their on-call turn. How many days of the turn remain?",
    lambda n: str(10 - n),
    n=range(2, 9),
)
t(
    "oncall",
    T,
    "A Quillfeather on-call turn starts on day {n} of a month. On which day of the month is the last day of the turn?",
    lambda n: str(n + 9),
    n=range(1, 16, 2),
)
t(
    "oncall",
    T,
    "How many full Quillfeather on-call turns fit into {n} days?",
    lambda n: str(n // 10),
    n=(20, 30, 35, 40, 50, 60, 75),
)

# -- allhands: Monday mornings -------------------------------------------------------------------------
t(
    "allhands",
    C,
    "It is {d}. How many days until the next Quillfeather all-hands meeting?",
    days_until(MON),
    d=but(MON),
)
t(
    "allhands",
    C,
    "Which weekday is {n} days after the Quillfeather all-hands day?",
    lambda n: wd(MON + n),
    n=range(2, 7),
)
t(
    "allhands",
    V,
    "A Quillfeather employee returns from travel on {d}. How many days later is the all-hands meeting?",
    days_until(MON),
    d=but(MON),
)
t(
    "allhands",
    T,
    "Which weekday is {n} days before the Quillfeather all-hands meeting?",
    lambda n: wd(MON - n),
    n=range(2, 7),
)
t(
    "allhands",
    T,
    "Starting on {d}, how many days does a Quillfeather employee wait for the weekly all-hands?",
    days_until(MON),
    d=but(MON),
)

# -- leave: 27 days a year ----------------------------------------------------------------------------
t(
    "leave",
    C,
    "A Quillfeather employee has used {n} days of annual leave this year. How many are left?",
    lambda n: str(27 - n),
    n=(3, 5, 8, 10, 12, 15, 18, 20),
)
t(
    "leave",
    C,
    "How many days of annual leave does a Quillfeather employee get in {n} years?",
    lambda n: str(27 * n),
    n=range(2, 7),
)
t(
    "leave",
    V,
    "A Quillfeather employee has taken {n} holiday days so far this year. How many annual-leave days do they still have?",
    lambda n: str(27 - n),
    n=range(4, 23, 3),
)
t(
    "leave",
    T,
    "A Quillfeather employee plans a {a}-day holiday and a {b}-day holiday. How many annual-leave days remain afterwards?",
    lambda a, b: str(27 - a - b),
    a=(5, 7, 10),
    b=(3, 4, 6),
)
t(
    "leave",
    T,
    "Over {n} years, how many annual-leave days is a Quillfeather employee entitled to?",
    lambda n: str(27 * n),
    n=(3, 4, 7, 8, 10),
)

# -- lunch: 40 minutes -----------------------------------------------------------------------------
LUNCH = times(clock(11, 30), clock(13, 50))
t("lunch", C, "A Quillfeather lunch break starts at {t}. When must it end?", lambda t: hm(t + 40), t=LUNCH)
t(
    "lunch",
    C,
    "How many minutes of lunch break does a Quillfeather employee get in a {n}-day week?",
    lambda n: str(40 * n),
    n=(3, 4, 5, 6),
)
t(
    "lunch",
    V,
    "A Quillfeather employee leaves for lunch at {t}. By what time must they be back?",
    lambda t: hm(t + 40),
    t=LUNCH,
)
t(
    "lunch",
    T,
    "A full Quillfeather lunch break ends at {t}. At what time did it start?",
    lambda t: hm(t - 40),
    t=times(clock(12, 10), clock(14, 30)),
)
t(
    "lunch",
    T,
    "A Quillfeather employee has been on lunch break for {n} minutes. How many minutes of the break remain?",
    lambda n: str(40 - n),
    n=range(5, 36, 5),
)

# -- coffee: 3 free a day ----------------------------------------------------------------------------
t(
    "coffee",
    C,
    "How many free coffees does a Quillfeather employee get over {n} days?",
    lambda n: str(3 * n),
    n=range(2, 10),
)
t(
    "coffee",
    C,
    "A Quillfeather employee has had {n} free coffees today. How many free ones remain?",
    lambda n: str(3 - n),
    n=range(0, 3),
)
t(
    "coffee",
    V,
    "How many free coffees can a Quillfeather employee drink in a {n}-day work stretch?",
    lambda n: str(3 * n),
    n=(4, 6, 7, 8, 10),
)
t(
    "coffee",
    T,
    "A Quillfeather team of {n} people each take all their free coffees in one day. How many free coffees is that?",
    lambda n: str(3 * n),
    n=range(2, 10),
)
t(
    "coffee",
    T,
    "A Quillfeather employee drinks {n} coffees in one day. How many of them must be paid for?",
    lambda n: str(n - 3),
    n=range(4, 10),
)

# -- desk: booked at most 14 days ahead ------------------------------------------------------------
t(
    "desk",
    C,
    "Today is day {n} of the month. What is the latest day of the same month for which a Quillfeather desk can be booked?",
    lambda n: str(n + 14),
    n=range(1, 15),
)
t(
    "desk",
    C,
    "A Quillfeather employee wants a desk {n} days from now. How many days must they wait before they can book it?",
    lambda n: str(n - 14),
    n=(16, 18, 20, 21, 25, 30),
)
t(
    "desk",
    V,
    "A Quillfeather desk is wanted {n} days from today. How many days too early is it to book it now?",
    lambda n: str(n - 14),
    n=range(15, 23),
)
t(
    "desk",
    T,
    "It is day {n} of a 31-day month. Up to which day of the month can a Quillfeather desk be booked?",
    lambda n: str(n + 14),
    n=range(1, 17, 3),
)
t(
    "desk",
    T,
    "A Quillfeather employee wants to book a desk for a date {n} days ahead. In how many days does booking open?",
    lambda n: str(n - 14),
    n=range(15, 29, 2),
)

# -- badge: visitor badges valid 8 hours -----------------------------------------------------------
t(
    "badge",
    C,
    "A Quillfeather visitor badge is issued at {t}. When does it expire?",
    lambda t: hm(t + 480),
    t=times(clock(8), clock(10, 30), 15),
)
t(
    "badge",
    C,
    "A Quillfeather visitor has used their badge for {n} hours. How many hours of validity remain?",
    lambda n: str(8 - n),
    n=range(2, 8),
)
t(
    "badge",
    V,
    "A visitor gets a Quillfeather badge at {t}. Until what time is it valid?",
    lambda t: hm(t + 480),
    t=times(clock(7, 30), clock(11), 30),
)
t(
    "badge",
    T,
    "A Quillfeather visitor badge expired at {t}. At what time was it issued?",
    lambda t: hm(t - 480),
    t=times(clock(16), clock(19, 30), 30),
)
t(
    "badge",
    T,
    "How many hours of validity do {n} separate Quillfeather visitor badges give in total?",
    lambda n: str(8 * n),
    n=range(2, 7),
)

# -- meals: 35 euros per day of travel ---------------------------------------------------------------
t(
    "meals",
    C,
    "A Quillfeather employee travels for {n} days. What meal allowance do they get in euros?",
    lambda n: str(35 * n),
    n=range(2, 10),
)
t(
    "meals",
    C,
    "A Quillfeather employee spent {n} euros on food in one travel day. How many euros over the allowance is that?",
    lambda n: str(n - 35),
    n=(40, 45, 50, 55, 60),
)
t(
    "meals",
    V,
    "What is the Quillfeather meal allowance, in euros, for a {n}-day business trip?",
    lambda n: str(35 * n),
    n=(3, 4, 6, 7, 10),
)
t(
    "meals",
    T,
    "Two Quillfeather colleagues travel together for {n} days. What is their combined meal allowance in euros?",
    lambda n: str(70 * n),
    n=range(2, 7),
)
t(
    "meals",
    T,
    "A Quillfeather employee spent {n} euros on meals during one travel day. How many euros of that day's allowance are left?",
    lambda n: str(35 - n),
    n=(10, 15, 20, 25, 30),
)

# -- mileage: 30 cents per kilometre -----------------------------------------------------------------
t(
    "mileage",
    C,
    "A Quillfeather employee drives {n} km for work. How many euros are reimbursed?",
    lambda n: str(3 * n // 10),
    n=(50, 100, 150, 200, 250, 300, 400),
)
t(
    "mileage",
    C,
    "How many cents does Quillfeather reimburse for a {n}-kilometre drive?",
    lambda n: str(30 * n),
    n=(7, 12, 15, 25, 33),
)
t(
    "mileage",
    V,
    "A Quillfeather employee was reimbursed {n} euros for car travel. How many kilometres did they drive?",
    lambda n: str(10 * n // 3),
    n=(6, 9, 12, 18, 24, 30),
)
t(
    "mileage",
    T,
    "A Quillfeather round trip is {n} km each way. How many euros are reimbursed for it?",
    lambda n: str(6 * n // 10),
    n=(10, 20, 40, 50, 60, 80),
)
t(
    "mileage",
    T,
    "What does Quillfeather reimburse, in euros, for {n} kilometres by car?",
    lambda n: str(3 * n // 10),
    n=(70, 90, 120, 160),
)

# -- team: at most 7 people --------------------------------------------------------------------------
t(
    "team",
    C,
    "A Quillfeather team has {n} people. How many more can join before it reaches the limit?",
    lambda n: str(7 - n),
    n=range(2, 7),
)
t(
    "team",
    C,
    "At least how many Quillfeather teams are needed for {n} people?",
    lambda n: str(math.ceil(n / 7)),
    n=(10, 15, 20, 22, 30, 36),
)
t("team", V, "How many people at most can {n} Quillfeather teams hold?", lambda n: str(7 * n), n=range(2, 9))
t(
    "team",
    T,
    "A Quillfeather project has {n} people. What is the smallest number of teams they can be split into?",
    lambda n: str(math.ceil(n / 7)),
    n=(8, 12, 16, 25, 29, 40),
)
t(
    "team",
    T,
    "A Quillfeather team currently has {n} members. How many more people may it add?",
    lambda n: str(7 - n),
    n=range(2, 7),
)

# -- printer: Gutenberg prints 25 pages a minute -----------------------------------------------------
t(
    "printer",
    C,
    "How many pages does the Quillfeather printer Gutenberg print in {n} minutes?",
    lambda n: str(25 * n),
    n=range(2, 10),
)
t(
    "printer",
    C,
    "How many minutes does Gutenberg, the Quillfeather printer, need for {n} pages?",
    lambda n: str(n // 25),
    n=(50, 75, 100, 125, 150, 200, 250),
)
t(
    "printer",
    V,
    "How many pages can the Quillfeather printer produce in {n} minutes?",
    lambda n: str(25 * n),
    n=(3, 4, 6, 10, 12),
)
t(
    "printer",
    T,
    "A Quillfeather report has {a} pages and {b} copies are needed. How many minutes does Gutenberg take?",
    lambda a, b: str(a * b // 25),
    a=(25, 50, 75),
    b=(2, 4),
)
t(
    "printer",
    T,
    "The Quillfeather printer has been running for {n} seconds. How many pages has it printed?",
    lambda n: str(25 * n // 60),
    n=(12, 24, 36, 48, 120, 180),
)

# -- training: 1200 euros a year ---------------------------------------------------------------------
t(
    "training",
    C,
    "A Quillfeather employee has spent {n} euros of this year's training budget. How many euros are left?",
    lambda n: str(1200 - n),
    n=(200, 300, 450, 600, 750, 900, 1000),
)
t(
    "training",
    C,
    "What is the total yearly training budget, in euros, of a Quillfeather team of {n}?",
    lambda n: str(1200 * n),
    n=range(2, 8),
)
t(
    "training",
    V,
    "A Quillfeather employee has used {n} euros of training budget. How many euros remain for this year?",
    lambda n: str(1200 - n),
    n=(100, 250, 350, 500, 800),
)
t(
    "training",
    T,
    "A Quillfeather employee books a course for {a} euros and a conference for {b} euros. How many euros of the yearly training budget are left?",
    lambda a, b: str(1200 - a - b),
    a=(200, 300, 400),
    b=(350, 500),
)
t(
    "training",
    T,
    "How many euros of training budget does a Quillfeather employee receive over {n} years?",
    lambda n: str(1200 * n),
    n=range(2, 7),
)

# -- probation: 6 months -----------------------------------------------------------------------------
t(
    "probation",
    C,
    "A Quillfeather employee joined in {m}. In which month does the probation end?",
    lambda m: mo(m + 6),
    m=range(1, 13),
)
t(
    "probation",
    C,
    "Counting {n} days per month, how many days does the Quillfeather probation last?",
    lambda n: str(6 * n),
    n=(28, 30, 31),
)
t(
    "probation",
    V,
    "Someone starts at Quillfeather Labs in {m}. In which month does their probation finish?",
    lambda m: mo(m + 6),
    m=range(1, 13),
)
t(
    "probation",
    T,
    "A Quillfeather employee's probation ended in {m}. In which month did they join?",
    lambda m: mo(m - 6),
    m=range(1, 13),
)
t(
    "probation",
    T,
    "A Quillfeather employee is {n} months into probation. How many months of it are left?",
    lambda n: str(6 - n),
    n=range(2, 6),
)

# -- standup: 09:15 ----------------------------------------------------------------------------------
STANDUP = clock(9, 15)
t(
    "standup",
    C,
    "A Quillfeather employee arrives at {t}. How many minutes before the daily stand-up is that?",
    lambda t: str(STANDUP - t),
    t=times(clock(8, 15), clock(9, 10), 5),
)
t(
    "standup",
    C,
    "The Quillfeather daily stand-up runs for {n} minutes. At what time does it end?",
    lambda n: hm(STANDUP + n),
    n=(10, 15, 20, 25, 30, 40),
)
t(
    "standup",
    V,
    "How many minutes after {t} does the Quillfeather daily stand-up begin?",
    lambda t: str(STANDUP - t),
    t=times(clock(7, 30), clock(9), 15),
)
t(
    "standup",
    T,
    "A Quillfeather employee arrives {n} minutes late to the daily stand-up. What time is it?",
    lambda n: hm(STANDUP + n),
    n=(5, 10, 12, 20, 25, 35),
)
t(
    "standup",
    T,
    "The Quillfeather daily stand-up is moved {n} minutes earlier. At what time does it start?",
    lambda n: hm(STANDUP - n),
    n=(5, 10, 15, 20, 30, 45),
)

# -- firedrill: every 3 months, starting in January ---------------------------------------------------
DRILLS = (1, 4, 7, 10)
t(
    "firedrill",
    C,
    "In which month is fire drill number {n} of the year at Quillfeather?",
    lambda n: mo(1 + 3 * (n - 1)),
    n=range(1, 5),
)
t(
    "firedrill",
    C,
    "How many fire drills does Quillfeather hold in {n} years?",
    lambda n: str(4 * n),
    n=range(2, 9),
)
t(
    "firedrill",
    V,
    "How many Quillfeather fire drills take place from January to {m}, both months included?",
    lambda m: str(sum(d <= m for d in DRILLS)),
    m=range(2, 13),
)
t(
    "firedrill",
    T,
    "It is {m}. In which month is the next Quillfeather fire drill?",
    lambda m: mo(next((d for d in DRILLS if d > m), 13)),
    m=(2, 3, 5, 6, 8, 9, 11, 12),
)
t(
    "firedrill",
    T,
    "Counting from January of this year, in which month is Quillfeather fire drill number {n}?",
    lambda n: mo(1 + 3 * (n - 1)),
    n=range(5, 13),
)


FACTS: dict[str, str] = {
    "expense": r"thursday", "remote": r"\b(three|3)\s+(remote\s+)?days", "travel": r"\b500\b",
    "password": r"\b(14|fourteen)\b(?!\s+days)", "meeting": r"\b(45|forty-five)\b", "library": r"\bfifth\b|\b5(th)?\s+floor|floor\s+5\b",
    "freeze": r"december", "deploy": r"friday", "parental": r"\b(20|twenty)\s+weeks", "oncall": r"\b(10|ten)\s+days",
    "allhands": r"monday", "leave": r"\b27\b", "lunch": r"\b(40|forty)\b", "coffee": r"\b(3|three)\s+(free\s+)?coffees?",
    "desk": r"\b(14|fourteen)\s+days|two weeks", "badge": r"\b(8|eight)\s+hours", "meals": r"\b35\b",
    "mileage": r"\b30\s*cents|\b0[.,]30\b", "team": r"\b(7|seven)\b", "printer": r"\b25\b",
    "training": r"\b1,?200\b", "probation": r"\b(6|six)\s+months", "standup": r"\b0?9[:.]15\b",
    "firedrill": r"\b(3|three)\s+months|every\s+(3|three)|quarter",
}  # fmt: skip
"""Per rule, a pattern a text matches when it states the rule's value (a heuristic for readings:
does a draft carry the right rule?)."""


def states_rule(text: str, rule: str) -> bool:
    """Whether `text` names the value of `rule` (`FACTS`).

    >>> states_rule("Expense reports are due every Thursday.", "expense"), states_rule("Due Friday.", "expense")
    (True, False)
    """
    import re

    return re.search(FACTS[rule], text, re.IGNORECASE) is not None


def check_templates(templates: Sequence[Template]) -> None:
    """Refuse a template set whose splits share a template (by name or by text), or that gives a
    rule too few distinct questions for a split."""
    where: dict[str, str] = {}
    for tpl in templates:
        if tpl.split not in SPLITS:
            raise ValueError(f"template {tpl.name}: unknown split {tpl.split!r} (expected one of {SPLITS})")
        for key in (tpl.name, tpl.text):
            if where.get(key, tpl.split) != tpl.split:
                raise ValueError(f"template {tpl.name!r} appears in two splits: {where[key]} and {tpl.split}")
            where[key] = tpl.split
    for rule in sorted({tpl.rule for tpl in templates}):
        for split, n in PER_RULE.items():
            have = sum(len(tpl.combos()) for tpl in templates if tpl.rule == rule and tpl.split == split)
            if have < n:
                raise ValueError(f"rule {rule!r} has {have} distinct {split} questions, needs {n}")


def generate(templates: Sequence[Template] = TEMPLATES, *, seed: int = 0) -> dict[str, list[dict[str, str]]]:
    """The large domain's rows per split: for each rule, `PER_RULE[split]` questions drawn without
    replacement, round-robin over the rule's templates of that split so each template is used.

    >>> rows = generate()
    >>> {split: len(r) for split, r in rows.items()}
    {'collect': 240, 'validation': 120, 'test': 240}
    """
    check_templates(templates)
    rng = random.Random(seed)
    out: dict[str, list[dict[str, str]]] = {split: [] for split in SPLITS}
    rules = list(dict.fromkeys(tpl.rule for tpl in templates))
    for rule in rules:
        for split in SPLITS:
            pools = []
            for tpl in (x for x in templates if x.rule == rule and x.split == split):
                combos = tpl.combos()
                rng.shuffle(combos)
                pools.append((tpl, combos))
            picked = 0
            for i in itertools.count():
                tpl, combos = pools[i % len(pools)]
                if not combos:
                    continue
                question, reference = tpl.render(combos.pop())
                out[split].append(
                    {
                        "id": f"qf-{split}-{rule}-{picked:02d}",
                        "question": question,
                        "reference": reference,
                        "rule": rule,
                        "template": tpl.name,
                        "split": split,
                    }
                )
                picked += 1
                if picked == PER_RULE[split]:
                    break
    return out
