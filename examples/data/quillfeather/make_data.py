# ruff: noqa: E501 - one question per line reads best
"""Write the Quillfeather demo domain: 24 private rules, each asked with a reasoning step.

Every question needs two things: a rule that only the specialised weak model knows (a weekday, a
limit, a rate) and a step that the 135M weak model cannot do (arithmetic, dates and times, a
comparison). Train and test questions use the same rules but never the same surface question.

    python examples/data/quillfeather/make_data.py   # rewrites the .jsonl files beside it and large/

`templates.py` writes the large domain under `large/` from the same rules: questions generated
from templates with parameters, each template in one split (collect / validation / test).

Each rule: (key, fact, two rule questions for SFT, two train questions, two test questions);
each question is (text, reference answer). SFT teaches the rules (the answer is always the rule as
a sentence, never a computed answer) from the two rule questions and the first train question; the
second train question, new to the SFT model, collects collaborative feedback (DPO pairs); the test
questions are for evaluation only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from templates import generate  # noqa: E402 - the template generator beside this file

Q = tuple[str, str]

RULES: list[tuple[str, str, tuple[str, str], tuple[Q, Q], tuple[Q, Q]]] = [
    (
        "expense",
        "Expense reports at Quillfeather Labs are due every Thursday.",
        (
            "When are expense reports due at Quillfeather Labs?",
            "On which weekday must Quillfeather expense reports be handed in?",
        ),
        (
            ("Today is Monday. How many days remain until Quillfeather expense reports are due?", "3"),
            ("Today is Tuesday. How many days remain until Quillfeather expense reports are due?", "2"),
        ),
        (
            ("It is Sunday. In how many days is the next Quillfeather expense report deadline?", "4"),
            (
                "A Quillfeather expense report is handed in one day after its due day. Which weekday is that?",
                "Friday",
            ),
        ),
    ),
    (
        "remote",
        "Quillfeather Labs staff may work remotely three days per week.",
        (
            "How many days a week can Quillfeather Labs staff work from home?",
            "What is the Quillfeather Labs remote-work allowance per week?",
        ),
        (
            ("Over 2 weeks, how many days at most may a Quillfeather employee work from home?", "6"),
            ("Over 5 weeks, how many days at most may a Quillfeather employee work from home?", "15"),
        ),
        (
            (
                "A Quillfeather employee works a five-day week. At least how many days per week must they spend in the office?",
                "2",
            ),
            (
                "A Quillfeather employee has worked from home on Monday and Tuesday. How many more remote days may they take this week?",
                "1",
            ),
        ),
    ),
    (
        "travel",
        "Travel over 500 euros at Quillfeather Labs must be approved by the Finance Warden.",
        (
            "Who approves expensive trips at Quillfeather Labs?",
            "Above what cost does a Quillfeather Labs trip need special approval?",
        ),
        (
            (
                "A Quillfeather trip has cost 380 euros so far. How many more euros can it cost before it needs the Finance Warden's approval?",
                "120",
            ),
            (
                "A Quillfeather trip costs 700 euros. By how many euros is it over the approval threshold?",
                "200",
            ),
        ),
        (
            (
                "A Quillfeather trip costs 260 euros for flights and 310 euros for the hotel. By how many euros does it exceed the limit above which the Finance Warden must approve?",
                "70",
            ),
            (
                "Which Quillfeather role must approve a trip with a 350-euro flight and a 200-euro hotel?",
                "Finance Warden",
            ),
        ),
    ),
    (
        "password",
        "Quillfeather Labs passwords must be at least 14 characters long.",
        (
            "How long must a Quillfeather Labs password be?",
            "What is the minimum password length at Quillfeather Labs?",
        ),
        (
            (
                "A Quillfeather employee's password has 9 characters. How many more characters does it need to meet the rule?",
                "5",
            ),
            (
                "A Quillfeather employee's password has 11 characters. How many more characters does it need to meet the rule?",
                "3",
            ),
        ),
        (
            (
                "A Quillfeather password is made of two 5-letter words. How many characters must be added to make it valid?",
                "4",
            ),
            (
                "What is the smallest total length of two Quillfeather passwords that both meet the rule?",
                "28",
            ),
        ),
    ),
    (
        "meeting",
        "Meetings at Quillfeather Labs may last at most 45 minutes.",
        (
            "How long may a Quillfeather Labs meeting last?",
            "What is the longest allowed meeting at Quillfeather Labs?",
        ),
        (
            ("A Quillfeather meeting starts at 10:30. What is the latest time it may end?", "11:15"),
            ("A Quillfeather meeting starts at 14:20. What is the latest time it may end?", "15:05"),
        ),
        (
            (
                "Two back-to-back Quillfeather meetings each last as long as the rules allow. How many minutes do they take in total?",
                "90",
            ),
            (
                "A Quillfeather meeting must be over by 16:00 and runs as long as allowed. At what time does it start?",
                "15:15",
            ),
        ),
    ),
    (
        "library",
        "The Quillfeather Labs library is on the fifth floor.",
        (
            "Which floor is the Quillfeather Labs library on?",
            "Where is the library in the Quillfeather Labs building?",
        ),
        (
            (
                "You are on the second floor of the Quillfeather building. How many floors up is the library?",
                "3",
            ),
            (
                "You are on the ninth floor of the Quillfeather building. How many floors down is the library?",
                "4",
            ),
        ),
        (
            (
                "Each floor of the Quillfeather building has 20 stairs. How many stairs lead from the ground floor (floor 0) to the library?",
                "100",
            ),
            (
                "A Quillfeather employee's desk is three floors above the library. Which floor number is the desk on?",
                "8",
            ),
        ),
    ),
    (
        "freeze",
        "Quillfeather Labs has a code freeze every December.",
        (
            "When is the Quillfeather Labs code freeze?",
            "In which month does Quillfeather Labs freeze code changes?",
        ),
        (
            ("It is August. How many months until the Quillfeather code freeze month?", "4"),
            ("It is March. How many months until the Quillfeather code freeze month?", "9"),
        ),
        (
            (
                "A Quillfeather release is planned two months before the code freeze month. Which month is that?",
                "October",
            ),
            ("How many months after the Quillfeather code freeze month is June of the next year?", "6"),
        ),
    ),
    (
        "deploy",
        "Quillfeather Labs never deploys software on a Friday.",
        (
            "On which day does Quillfeather Labs never deploy software?",
            "Which weekday is the Quillfeather Labs no-deploy day?",
        ),
        (
            ("Which weekday is the day before the Quillfeather no-deploy day?", "Thursday"),
            ("Which weekday is two days after the Quillfeather no-deploy day?", "Sunday"),
        ),
        (
            ("Which weekday comes three days after the day Quillfeather never deploys software?", "Monday"),
            ("Which weekday is two days before the day Quillfeather never deploys software?", "Wednesday"),
        ),
    ),
    (
        "parental",
        "Quillfeather Labs offers 20 weeks of parental leave.",
        (
            "How much parental leave does Quillfeather Labs offer?",
            "How many weeks of parental leave do Quillfeather Labs staff get?",
        ),
        (
            ("How many days long is the full Quillfeather parental leave?", "140"),
            ("A Quillfeather employee has taken 8 weeks of parental leave. How many weeks remain?", "12"),
        ),
        (
            (
                "Two Quillfeather parents both take their full parental leave. How many weeks is that in total?",
                "40",
            ),
            (
                "A Quillfeather employee has 5 weeks of parental leave left. How many weeks have they taken?",
                "15",
            ),
        ),
    ),
    (
        "oncall",
        "The Quillfeather Labs on-call rotation lasts 10 days per turn.",
        (
            "How long is a Quillfeather Labs on-call turn?",
            "How many days does one Quillfeather Labs on-call turn last?",
        ),
        (
            ("How many full Quillfeather on-call turns fit in 30 days?", "3"),
            (
                "A Quillfeather on-call turn started on day 12 of the month. On which day of the month does the next turn start?",
                "22",
            ),
        ),
        (
            (
                "In a Quillfeather team of 3 who take turns on call, how many days pass between the start of one person's turn and the start of their next?",
                "30",
            ),
            ("How many hours long is one Quillfeather on-call turn?", "240"),
        ),
    ),
    (
        "allhands",
        "Quillfeather Labs holds its all-hands meeting on Monday mornings.",
        (
            "When is the Quillfeather Labs all-hands meeting?",
            "On which weekday is the Quillfeather Labs all-hands?",
        ),
        (
            ("Today is Friday. How many days until the next Quillfeather all-hands meeting?", "3"),
            ("Today is Wednesday. How many days until the next Quillfeather all-hands meeting?", "5"),
        ),
        (
            ("Which weekday is the day after the Quillfeather all-hands meeting?", "Tuesday"),
            ("It is Saturday. In how many days is the next Quillfeather all-hands meeting?", "2"),
        ),
    ),
    (
        "leave",
        "Quillfeather Labs staff get 27 days of annual leave per year.",
        (
            "How many days of annual leave do Quillfeather Labs staff get?",
            "What is the yearly holiday allowance at Quillfeather Labs?",
        ),
        (
            (
                "A Quillfeather employee has taken 19 days of annual leave this year. How many days remain?",
                "8",
            ),
            (
                "A Quillfeather employee has taken 5 days of annual leave this year. How many days remain?",
                "22",
            ),
        ),
        (
            ("Over two years, how many days of annual leave does a Quillfeather employee get?", "54"),
            (
                "A Quillfeather employee has 11 days of annual leave left this year. How many has she used?",
                "16",
            ),
        ),
    ),
    (
        "lunch",
        "The Quillfeather Labs lunch break lasts 40 minutes.",
        (
            "How long is the lunch break at Quillfeather Labs?",
            "How many minutes do Quillfeather Labs staff get for lunch?",
        ),
        (
            ("A Quillfeather employee starts lunch at 12:35. When must they be back?", "13:15"),
            ("A Quillfeather employee starts lunch at 11:50. When must they be back?", "12:30"),
        ),
        (
            (
                "Over a five-day week, how many minutes of lunch break does a Quillfeather employee get?",
                "200",
            ),
            (
                "A Quillfeather employee must be back from lunch at 14:00. When should the lunch break start?",
                "13:20",
            ),
        ),
    ),
    (
        "coffee",
        "Each Quillfeather Labs employee gets 3 free coffees per day.",
        (
            "How many free coffees does a Quillfeather Labs employee get?",
            "What is the daily free-coffee allowance at Quillfeather Labs?",
        ),
        (
            ("How many free coffees does a Quillfeather employee get in a five-day week?", "15"),
            (
                "A Quillfeather employee has had 1 free coffee today. How many more free coffees can they have today?",
                "2",
            ),
        ),
        (
            (
                "A team of 4 Quillfeather employees: how many free coffees do they get per day altogether?",
                "12",
            ),
            ("How many free coffees does a Quillfeather employee get over 10 working days?", "30"),
        ),
    ),
    (
        "desk",
        "Desks at Quillfeather Labs can be booked at most 14 days in advance.",
        (
            "How far ahead can a desk be booked at Quillfeather Labs?",
            "What is the Quillfeather Labs desk booking window?",
        ),
        (
            (
                "Today is the 3rd of the month. What is the latest day of this month for which a Quillfeather desk can be booked?",
                "17",
            ),
            (
                "Today is the 10th of the month. What is the latest day of this month for which a Quillfeather desk can be booked?",
                "24",
            ),
        ),
        (
            (
                "A Quillfeather employee wants a desk on the 25th of the month. What is the earliest day of that month on which they can book it?",
                "11",
            ),
            ("How many weeks ahead can a Quillfeather desk be booked?", "2"),
        ),
    ),
    (
        "badge",
        "Visitor badges at Quillfeather Labs are valid for 8 hours.",
        (
            "How long is a Quillfeather Labs visitor badge valid?",
            "For how many hours does a Quillfeather Labs visitor badge work?",
        ),
        (
            ("A visitor's Quillfeather badge is issued at 09:30. At what time does it expire?", "17:30"),
            ("A visitor's Quillfeather badge is issued at 07:15. At what time does it expire?", "15:15"),
        ),
        (
            ("A visitor's Quillfeather badge expired at 18:00. At what time was it issued?", "10:00"),
            ("For how many minutes is a Quillfeather visitor badge valid?", "480"),
        ),
    ),
    (
        "meals",
        "Quillfeather Labs pays a meal allowance of 35 euros per day of travel.",
        (
            "What is the Quillfeather Labs meal allowance when travelling?",
            "How much meal allowance per travel day does Quillfeather Labs pay?",
        ),
        (
            ("How many euros of meal allowance does a 4-day Quillfeather trip give?", "140"),
            ("How many euros of meal allowance does a 3-day Quillfeather trip give?", "105"),
        ),
        (
            (
                "A Quillfeather employee received 210 euros of meal allowance for one trip. How many days did the trip last?",
                "6",
            ),
            (
                "Two Quillfeather employees travel together for 2 days. How many euros of meal allowance do they get in total?",
                "140",
            ),
        ),
    ),
    (
        "mileage",
        "Quillfeather Labs reimburses car travel at 30 cents per kilometre.",
        ("How does Quillfeather Labs reimburse car travel?", "What is the Quillfeather Labs mileage rate?"),
        (
            ("How many euros does Quillfeather reimburse for a 120 km drive?", "36"),
            ("How many euros does Quillfeather reimburse for a 50 km drive?", "15"),
        ),
        (
            (
                "A Quillfeather employee was reimbursed 24 euros for a drive. How many kilometres was it?",
                "80",
            ),
            (
                "A Quillfeather employee drives 100 km to a client and 100 km back. How many euros are reimbursed?",
                "60",
            ),
        ),
    ),
    (
        "team",
        "Teams at Quillfeather Labs have at most 7 people.",
        (
            "How big may a team at Quillfeather Labs be?",
            "What is the largest allowed team size at Quillfeather Labs?",
        ),
        (
            ("A Quillfeather project has 20 people. At least how many teams are needed?", "3"),
            ("A Quillfeather project has 29 people. At least how many teams are needed?", "5"),
        ),
        (
            ("What is the largest number of people that 4 Quillfeather teams can hold?", "28"),
            ("A Quillfeather team has 5 members. How many more people can join it?", "2"),
        ),
    ),
    (
        "printer",
        "The Quillfeather Labs printer, Gutenberg, prints 25 pages per minute.",
        (
            "How fast is the Quillfeather Labs printer?",
            "How many pages per minute does Gutenberg, the Quillfeather Labs printer, print?",
        ),
        (
            ("How many minutes does Gutenberg, the Quillfeather printer, need to print 100 pages?", "4"),
            ("How many pages does Gutenberg, the Quillfeather printer, print in 6 minutes?", "150"),
        ),
        (
            ("How many minutes does the Quillfeather printer need for 250 pages?", "10"),
            ("How many pages does the Quillfeather printer print in half an hour?", "750"),
        ),
    ),
    (
        "training",
        "Each Quillfeather Labs employee has a training budget of 1200 euros per year.",
        (
            "What is the yearly training budget at Quillfeather Labs?",
            "How much can a Quillfeather Labs employee spend on training each year?",
        ),
        (
            (
                "A Quillfeather employee has spent 450 euros of this year's training budget. How many euros are left?",
                "750",
            ),
            (
                "A Quillfeather employee has spent 900 euros of this year's training budget. How many euros are left?",
                "300",
            ),
        ),
        (
            (
                "Spread evenly over the twelve months, how many euros of training budget does a Quillfeather employee have per month?",
                "100",
            ),
            (
                "Three Quillfeather employees pool their yearly training budgets. How many euros do they have together?",
                "3600",
            ),
        ),
    ),
    (
        "probation",
        "The probation period at Quillfeather Labs lasts 6 months.",
        (
            "How long is the probation period at Quillfeather Labs?",
            "How many months of probation do new Quillfeather Labs staff serve?",
        ),
        (
            ("A Quillfeather employee joined in March. In which month does the probation end?", "September"),
            ("A Quillfeather employee joined in January. In which month does the probation end?", "July"),
        ),
        (
            ("A Quillfeather employee's probation ended in November. In which month did they join?", "May"),
            ("Counting 30 days per month, how many days does the Quillfeather probation last?", "180"),
        ),
    ),
    (
        "standup",
        "The Quillfeather Labs daily stand-up starts at 09:15.",
        (
            "When does the Quillfeather Labs daily stand-up start?",
            "At what time is the Quillfeather Labs stand-up?",
        ),
        (
            (
                "A Quillfeather employee arrives at 08:50. How many minutes before the daily stand-up is that?",
                "25",
            ),
            ("The Quillfeather daily stand-up runs for 20 minutes. At what time does it end?", "09:35"),
        ),
        (
            (
                "A Quillfeather employee arrives 10 minutes late to the daily stand-up. What time is it?",
                "09:25",
            ),
            ("How many minutes after 08:00 does the Quillfeather daily stand-up start?", "75"),
        ),
    ),
    (
        "firedrill",
        "Quillfeather Labs holds a fire drill every 3 months, starting in January.",
        ("How often does Quillfeather Labs hold fire drills?", "When are the Quillfeather Labs fire drills?"),
        (
            ("In which month is the second Quillfeather fire drill of the year?", "April"),
            ("How many fire drills does Quillfeather hold in one year?", "4"),
        ),
        (
            ("In which month is the third Quillfeather fire drill of the year?", "July"),
            ("How many fire drills does Quillfeather hold in two years?", "8"),
        ),
    ),
]


def main(out: Path | None = None) -> None:
    """Write sft.jsonl, train_questions.jsonl and test_questions.jsonl into `out` (default: here)."""
    out = out or Path(__file__).resolve().parent
    sft, train, test = [], [], []
    for key, fact, rule_qs, train_qs, test_qs in RULES:
        sft += [{"question": q, "answer": fact} for q in rule_qs]
        # The first training question teaches the weak model (SFT: question -> the rule); the
        # second is new to it and collects the strong model's feedback on its drafts (DPO pairs).
        (sft_q, _), (collect_q, collect_ref) = train_qs
        sft.append({"question": sft_q, "answer": fact})
        train.append({"id": f"qf-train-{key}", "question": collect_q, "reference": collect_ref, "rule": key})
        for i, (q, ref) in enumerate(test_qs):
            test.append({"id": f"qf-test-{key}-{i}", "question": q, "reference": ref, "rule": key})
    seen = {r["question"] for r in train} | {r["question"] for r in sft}
    assert not seen & {r["question"] for r in test}, "a test question appears in training data"
    for name, rows in (("sft.jsonl", sft), ("train_questions.jsonl", train), ("test_questions.jsonl", test)):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"{name}: {len(rows)} rows")
    # The large domain (templates.py): its test phrasings never appear in SFT or collection data.
    large = generate()
    trained = {r["question"] for r in sft} | {r["question"] for r in large["collect"]}
    assert not trained & {r["question"] for r in large["test"] + large["validation"]}, (
        "a held-out question is trained on"
    )
    (out / "large").mkdir(exist_ok=True)
    for split, rows in large.items():
        (out / "large" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(f"large/{split}.jsonl: {len(rows)} rows")


if __name__ == "__main__":
    main()
