"""The party rules, pure: invitations, joining, leaving, queueing."""

from __future__ import annotations

import pytest

from lobby.matchmaking import party_rules as rules
from lobby.matchmaking.party_rules import Invite, Member, Party, PartyLimits, PartyRuleError

NOW = 1_000_000
LIMITS = PartyLimits(max_size=3, max_invites=2, invite_ttl_ms=1000)
ANN, BOB, CID, DEE = (Member(f"u-{n}", n) for n in ("ann", "bob", "cid", "dee"))


def party(*members: Member, invites: tuple[Invite, ...] = ()) -> Party:
    return Party("p-1", members[0].user_id, members, NOW, invites=invites)


def code(exc: pytest.ExceptionInfo[PartyRuleError]) -> tuple[int, str]:
    return exc.value.status, exc.value.code


def test_only_the_leader_invites_someone_not_in_a_party_within_the_limits() -> None:
    p = party(ANN, BOB)
    invite = rules.check_invite(p, ANN.user_id, CID, False, NOW, LIMITS)
    assert invite == Invite(CID.user_id, "cid", NOW + 1000, "ann")
    with pytest.raises(PartyRuleError) as e:
        rules.check_invite(p, BOB.user_id, CID, False, NOW, LIMITS)
    assert code(e) == (403, "not_party_leader")
    with pytest.raises(PartyRuleError) as e:
        rules.check_invite(p, ANN.user_id, CID, True, NOW, LIMITS)
    assert code(e) == (409, "already_in_party")
    with pytest.raises(PartyRuleError) as e:
        rules.check_invite(p, ANN.user_id, BOB, False, NOW, LIMITS)
    assert code(e) == (409, "already_member")
    with pytest.raises(PartyRuleError) as e:
        rules.check_invite(party(ANN, BOB, CID), ANN.user_id, DEE, False, NOW, LIMITS)
    assert code(e) == (409, "party_full")


def test_pending_invitations_are_capped_and_expired_ones_do_not_count() -> None:
    live = (Invite("x", "x", NOW + 5), Invite("y", "y", NOW + 5))
    with pytest.raises(PartyRuleError) as e:
        rules.check_invite(party(ANN, invites=live), ANN.user_id, CID, False, NOW, LIMITS)
    assert code(e) == (409, "too_many_invites")
    stale = (Invite("x", "x", NOW - 1), Invite("y", "y", NOW - 1))
    assert rules.check_invite(party(ANN, invites=stale), ANN.user_id, CID, False, NOW, LIMITS)
    again = (Invite(CID.user_id, "cid", NOW + 5),)
    with pytest.raises(PartyRuleError) as e:
        rules.check_invite(party(ANN, invites=again), ANN.user_id, CID, False, NOW, LIMITS)
    assert code(e) == (409, "already_invited")


def test_joining_needs_a_live_invitation_and_room() -> None:
    invited = party(ANN, invites=(Invite(BOB.user_id, "bob", NOW + 1),))
    after = rules.joined(invited, BOB, False, NOW, LIMITS)
    assert after.member_ids == (ANN.user_id, BOB.user_id) and after.invites == ()
    with pytest.raises(PartyRuleError) as e:
        rules.joined(invited, BOB, False, NOW + 2, LIMITS)
    assert code(e) == (410, "invite_expired")
    with pytest.raises(PartyRuleError) as e:
        rules.joined(invited, CID, False, NOW, LIMITS)
    assert code(e) == (404, "not_invited")
    with pytest.raises(PartyRuleError) as e:
        rules.joined(invited, BOB, True, NOW, LIMITS)
    assert code(e) == (409, "already_in_party")
    full = party(ANN, CID, DEE, invites=(Invite(BOB.user_id, "bob", NOW + 1),))
    with pytest.raises(PartyRuleError) as e:
        rules.joined(full, BOB, False, NOW, LIMITS)
    assert code(e) == (409, "party_full")


def test_leaving_hands_over_kicking_is_for_the_leader_and_the_last_one_ends_it() -> None:
    p = party(ANN, BOB, CID)
    after = rules.without(p, ANN.user_id, ANN.user_id)
    assert after is not None and after.leader == BOB.user_id
    assert after.member_ids == (BOB.user_id, CID.user_id)
    kicked = rules.without(p, CID.user_id, ANN.user_id)
    assert kicked is not None and kicked.member_ids == (ANN.user_id, BOB.user_id)
    with pytest.raises(PartyRuleError) as e:
        rules.without(p, CID.user_id, BOB.user_id)
    assert code(e) == (403, "not_party_leader")
    assert rules.without(party(ANN), ANN.user_id, ANN.user_id) is None
    with pytest.raises(PartyRuleError) as e:
        rules.check_disband(p, BOB.user_id)
    assert code(e) == (403, "not_party_leader")


def test_a_party_queues_casual_through_its_leader_into_a_bigger_mode() -> None:
    p = party(ANN, BOB)
    assert rules.check_queue(p, ANN.user_id, "casual", 6) is True
    assert rules.check_queue(None, ANN.user_id, "ranked", 6) is False
    assert rules.check_queue(party(ANN), ANN.user_id, "ranked", 6) is False  # alone
    for user, queue, mode_max, expected in (
        (BOB.user_id, "ranked", 6, (409, "party_ranked")),
        (ANN.user_id, "ranked", 6, (409, "party_ranked")),
        (BOB.user_id, "casual", 6, (403, "party_leader_only")),
        (ANN.user_id, "casual", 2, (409, "party_too_big")),
    ):
        with pytest.raises(PartyRuleError) as e:
            rules.check_queue(p, user, queue, mode_max)
        assert code(e) == expected
    assert rules.party_rating([20.0, 30.0]) == 25.0
