"""Parties as pure rules: who may invite, join, leave, kick and queue. No I/O, no clock.

A party is a leader and up to `max_size - 1` other members. The leader invites by
username; an invitation lives `invite_ttl_ms` and is accepted (the invitee joins)
or declined (or revoked by the leader). A party has at most `max_invites` pending
invitations, and nobody already in a party can be invited or join another.

Queueing (`check_queue`): a party of two or more queues only into casual matches
(`party_ranked`), only through its leader and for everyone (`party_leader_only`),
and only into a mode whose `max` is bigger than the party (`party_too_big`), so a
party always has opponents. A party of one is a player alone: it queues like anyone.

Every rule raises `PartyRuleError(status, code, message)`; lobby.matchmaking.parties
reads the state, applies these rules, then commits with a version check (a change in
between makes it read and decide again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from lobby.matchmaking.planner import CASUAL


class PartyRuleError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class PartyLimits:
    max_size: int = 4
    max_invites: int = 8  # pending invitations per party
    invite_ttl_ms: int = 300_000


@dataclass(frozen=True)
class Member:
    user_id: str
    username: str


@dataclass(frozen=True)
class Invite:
    user_id: str
    username: str
    expires_at_ms: int
    invited_by: str = ""  # the inviting leader's username

    def live(self, now_ms: int) -> bool:
        return self.expires_at_ms >= now_ms


@dataclass(frozen=True)
class Party:
    party_id: str
    leader: str  # user id
    members: tuple[Member, ...]  # the leader first
    created_at_ms: int
    version: int = 0
    invites: tuple[Invite, ...] = field(default=())

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def member_ids(self) -> tuple[str, ...]:
        return tuple(m.user_id for m in self.members)

    def has(self, user_id: str) -> bool:
        return user_id in self.member_ids

    def pending(self, now_ms: int) -> tuple[Invite, ...]:
        return tuple(i for i in self.invites if i.live(now_ms))

    def invite_for(self, user_id: str, now_ms: int) -> Invite | None:
        return next((i for i in self.pending(now_ms) if i.user_id == user_id), None)


def _leader_only(party: Party, by: str, what: str) -> None:
    if party.leader != by:
        raise PartyRuleError(403, "not_party_leader", f"only the party's leader may {what}")


def check_invite(
    party: Party,
    by: str,
    invitee: Member,
    invitee_in_party: bool,
    now_ms: int,
    limits: PartyLimits,
) -> Invite:
    """The invitation to make, or why not."""
    _leader_only(party, by, "invite")
    if invitee.user_id == by or party.has(invitee.user_id):
        raise PartyRuleError(409, "already_member", f"{invitee.username} is in the party already")
    if invitee_in_party:
        raise PartyRuleError(409, "already_in_party", f"{invitee.username} is in another party")
    if party.invite_for(invitee.user_id, now_ms) is not None:
        raise PartyRuleError(409, "already_invited", f"{invitee.username} is invited already")
    if party.size >= limits.max_size:
        raise PartyRuleError(409, "party_full", f"a party has at most {limits.max_size} players")
    if len(party.pending(now_ms)) >= limits.max_invites:
        raise PartyRuleError(
            409, "too_many_invites", f"at most {limits.max_invites} pending invitations"
        )
    leader = next(m.username for m in party.members if m.user_id == party.leader)
    return Invite(invitee.user_id, invitee.username, now_ms + limits.invite_ttl_ms, leader)


def joined(party: Party, user: Member, in_party: bool, now_ms: int, limits: PartyLimits) -> Party:
    """The party once `user` accepted their invitation, or why they cannot."""
    if party.has(user.user_id):
        raise PartyRuleError(409, "already_member", "you are in this party already")
    if in_party:
        raise PartyRuleError(409, "already_in_party", "leave your party first")
    invite = next((i for i in party.invites if i.user_id == user.user_id), None)
    if invite is None:
        raise PartyRuleError(404, "not_invited", "no invitation to this party")
    if not invite.live(now_ms):
        raise PartyRuleError(410, "invite_expired", "the invitation has expired")
    if party.size >= limits.max_size:
        raise PartyRuleError(409, "party_full", f"a party has at most {limits.max_size} players")
    invites = tuple(i for i in party.invites if i.user_id != user.user_id)
    return replace(party, members=(*party.members, user), invites=invites)


def without(party: Party, user_id: str, by: str) -> Party | None:
    """The party once `user_id` left (by == user_id) or was kicked by the leader;
    None when nobody is left. A leaving leader hands over to the longest member."""
    if by != user_id:
        _leader_only(party, by, "remove a member")
    if not party.has(user_id):
        raise PartyRuleError(404, "not_member", "not a member of this party")
    members = tuple(m for m in party.members if m.user_id != user_id)
    if not members:
        return None
    leader = party.leader if party.leader != user_id else members[0].user_id
    return replace(party, leader=leader, members=members)


def check_disband(party: Party, by: str) -> None:
    _leader_only(party, by, "disband the party")


def check_queue(party: Party | None, user_id: str, queue: str, mode_max: int) -> bool:
    """May this player queue? True when the ticket is for the whole party (two or more)."""
    if party is None or party.size < 2:
        return False
    if queue != CASUAL:
        raise PartyRuleError(409, "party_ranked", "a party queues only into casual matches")
    if party.leader != user_id:
        raise PartyRuleError(403, "party_leader_only", "only the party's leader queues the party")
    if party.size >= mode_max:
        raise PartyRuleError(
            409, "party_too_big", f"a party of {party.size} needs a mode of more than {party.size}"
        )
    return True


def party_rating(ratings: Sequence[float]) -> float:
    """The party ticket's rating: its members' mean (casual groups ignore it anyway)."""
    return sum(ratings) / len(ratings)
