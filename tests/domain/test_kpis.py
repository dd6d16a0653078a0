"""The KPIs by class (router/domain/kpis.py): examples worked by hand, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.domain.kpis import EndedContact, RatedContact, came_back, is_repeat, kpis_by_class
from tests.domain.domain_strategies import PROPERTY

DAY = 86_400.0
SINCE = 10_000.0


def ended(
    t: float,
    *,
    mot: bool = False,
    was: str = "assigned",
    handoffs: int = 0,
    customer: str = "u1",
    started: float | None = None,
    prev: float | None = None,
) -> EndedContact:
    return EndedContact(
        t_s=t,
        started_s=t - 60 if started is None else started,
        mot=mot,
        was=was,
        handoffs=handoffs,
        customer_id=customer,
        prev_contact_s=prev,
    )


def test_kpis_by_class_worked_by_hand() -> None:
    contacts = [
        # moments of truth: served and never back; served and back within the window; abandoned in the queue
        ended(SINCE + 100, mot=True, customer="m1", handoffs=1),
        ended(SINCE + 200, mot=True, customer="m2", started=SINCE + 150),
        ended(
            SINCE + 400, mot=False, was="self_service", customer="m2", started=SINCE + 300, prev=SINCE + 150
        ),
        ended(SINCE + 500, mot=True, was="queued", customer="m3", handoffs=2),
        # routine: one served repeat of an old contact, one abandoned while offered, one self-service only
        ended(SINCE + 600, customer="r1", prev=SINCE - DAY + 600),
        ended(SINCE + 700, was="offered", customer="r2", handoffs=1),
        ended(SINCE + 800, was="self_service", customer="r3"),
        # before the window: a candidate for "came back", not counted itself
        ended(SINCE - 10, mot=True, customer="m1", started=SINCE - 500),
    ]
    rated = [
        RatedContact(SINCE + 150, mot=True, csat=2, resolved=False),
        RatedContact(SINCE + 250, mot=True, csat=5, resolved=True),
        RatedContact(SINCE + 650, mot=False, csat=4, resolved=True),
        RatedContact(SINCE - 1, mot=False, csat=1, resolved=False),  # before the window
    ]
    k = kpis_by_class(contacts, rated, since_s=SINCE, fcr_window_s=DAY)
    mot, routine = k["mot"], k["routine"]
    assert mot.contacts == 3 and routine.contacts == 2  # self-service is not counted
    assert mot.csat == pytest.approx(3.5) and mot.csat_n == 2
    assert routine.csat == 4.0 and routine.csat_n == 1
    assert mot.fcr_n == 2 and mot.fcr == 0.5  # m2 came back (self-service, 150 s later)
    assert routine.fcr_n == 1 and routine.fcr == 1.0
    assert mot.repeat_rate == 0.0 and routine.repeat_rate == 0.5  # r1: 60 s inside the window
    assert mot.handoffs_per_contact == 1.0 and routine.handoffs_per_contact == 0.5
    assert mot.abandonment == pytest.approx(1 / 3) and mot.abandoned == 1
    assert routine.abandonment == 0.5 and routine.abandoned == 1


def test_a_class_with_nothing_to_measure_has_no_rates() -> None:
    k = kpis_by_class([], [], since_s=SINCE, fcr_window_s=DAY)
    for cls in ("mot", "routine"):
        assert k[cls].contacts == 0 and k[cls].csat is None and k[cls].fcr is None
        assert k[cls].repeat_rate is None and k[cls].abandonment is None
        assert k[cls].handoffs_per_contact is None


def test_repeat_and_came_back_use_the_window() -> None:
    assert is_repeat(ended(SINCE, started=SINCE, prev=SINCE - DAY), DAY)
    assert not is_repeat(ended(SINCE, started=SINCE, prev=SINCE - DAY - 1), DAY)
    assert not is_repeat(ended(SINCE), DAY)
    first = ended(SINCE, started=SINCE - 10)
    assert came_back([first, ended(SINCE + DAY, started=SINCE - 10 + DAY)], DAY) == [True, False]
    assert came_back([first, ended(SINCE + DAY, started=SINCE - 9 + DAY)], DAY) == [False, False]
    assert came_back([first, ended(SINCE + 5, started=SINCE, customer="u2")], DAY) == [False, False]
    assert came_back([ended(SINCE, customer=""), ended(SINCE + 9, customer="")], DAY) == [False, False]


contacts_st = st.lists(
    st.builds(
        EndedContact,
        t_s=st.floats(SINCE - 2_000, SINCE + 4_000),
        started_s=st.floats(SINCE - 3_000, SINCE + 4_000),
        mot=st.booleans(),
        was=st.sampled_from(("new", "self_service", "queued", "offered", "assigned")),
        handoffs=st.integers(0, 5),
        customer_id=st.sampled_from(("", "u1", "u2", "u3")),
        prev_contact_s=st.one_of(st.none(), st.floats(SINCE - 200_000, SINCE + 4_000)),
    ),
    max_size=30,
)
rated_st = st.lists(
    st.builds(
        RatedContact,
        t_s=st.floats(SINCE - 2_000, SINCE + 4_000),
        mot=st.booleans(),
        csat=st.integers(1, 5),
        resolved=st.booleans(),
    ),
    max_size=20,
)


@given(contacts_st, rated_st, st.floats(60, 10 * DAY))
@PROPERTY
def test_kpis_are_rates_of_the_contacts_that_went_to_a_person(
    contacts: list[EndedContact], rated: list[RatedContact], window: float
) -> None:
    k = kpis_by_class(contacts, rated, since_s=SINCE, fcr_window_s=window)
    counted = [c for c in contacts if c.t_s >= SINCE and c.human]
    assert k["mot"].contacts + k["routine"].contacts == len(counted)
    assert k["mot"].csat_n + k["routine"].csat_n == sum(1 for r in rated if r.t_s >= SINCE)
    for cls in ("mot", "routine"):
        x = k[cls]
        for rate in (x.fcr, x.repeat_rate, x.abandonment):
            assert rate is None or 0.0 <= rate <= 1.0
        assert x.csat is None or 1.0 <= x.csat <= 5.0
        assert x.fcr_n <= x.contacts and x.abandoned <= x.contacts
        assert (x.abandonment is None) == (x.contacts == 0)
        assert x.fcr_n + x.abandoned <= x.contacts


@given(contacts_st, st.floats(60, DAY))
@PROPERTY
def test_a_wider_window_never_raises_first_contact_resolution(contacts: list[EndedContact], w: float) -> None:
    """More time for a customer to come back can only turn resolved contacts into repeats."""
    narrow = kpis_by_class(contacts, [], since_s=SINCE, fcr_window_s=w)
    wide = kpis_by_class(contacts, [], since_s=SINCE, fcr_window_s=2 * w)
    for cls in ("mot", "routine"):
        a, b = narrow[cls].fcr, wide[cls].fcr
        assert (a is None) == (b is None)
        assert a is None or b <= a + 1e-12  # type: ignore[operator]
        ra, rb = narrow[cls].repeat_rate, wide[cls].repeat_rate
        assert ra is None or rb >= ra - 1e-12  # type: ignore[operator]
