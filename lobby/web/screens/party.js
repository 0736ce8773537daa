// The party panel of the lobby screen: create a party, invite friends by username,
// accept or decline invitations (they arrive live: `party_invite` notifications and
// `party_status` events of the /lobby socket), see the members and pending invitations
// (the leader may remove a member, revoke an invitation, or disband the party), leave.
//   const party = new PartyPanel(section, { call, user });
//   party.refresh(); party.pushed(status); party.notification(note);
// While in a party of two or more only casual queueing is offered (the ranked choice
// of `queue-kind` is disabled); the leader queues the whole party.
import { h, showError } from "./common.js";
import { Latest } from "./latest.js";

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

export class PartyPanel {
  constructor(section, { call, user }) {
    this.section = section;
    this.call = call;
    this.user = user;
    this.status = { party: null, invitations: [] };
    this.latest = new Latest();
    this.error = h("p", { class: "error", role: "alert", "data-testid": "party-error" });
    this.body = h("div", { "data-testid": "party-body" });
    section.replaceChildren(h("h3", {}, "Party"), this.body, this.error);
    // Built once, so a live re-render never loses what is being typed.
    const input = h("input", { name: "username", required: true, autocomplete: "off", "data-testid": "party-invite-name", "aria-label": "Username to invite" });
    this.inviteForm = h(
      "form",
      {
        class: "row",
        "data-testid": "party-invite-form",
        onsubmit: async (event) => {
          event.preventDefault();
          if (await this.run("POST", `${this.base}/invites`, { username: input.value.trim() })) input.value = "";
        },
      },
      input,
      h("button", { type: "submit", "data-testid": "party-invite" }, "Invite"),
    );
  }

  async run(method, path, body) {
    showError(this.error, null);
    try {
      await this.call(method, path, body);
      await this.refresh();
      return true;
    } catch (err) {
      showError(this.error, err);
      return false;
    }
  }

  async refresh() {
    const ticket = this.latest.ticket();
    try {
      const status = await this.call("GET", "/parties/me");
      if (this.latest.answered(ticket)) this.render(status);
    } catch (err) {
      showError(this.error, err);
    }
  }

  /** A `party_status` push: the party as it is now, newer than any answer in flight. */
  pushed(status) {
    this.latest.pushed();
    this.render(status);
  }

  notification(note) {
    if (note?.kind === "party_invite") this.refresh();
  }

  render(status) {
    this.status = status || { party: null, invitations: [] };
    const { party, invitations } = this.status;
    const me = this.user()?.id;
    const parts = [];
    if (party) {
      const base = `/parties/${party.party_id}`;
      const leader = party.leader === me;
      parts.push(
        h(
          "ul",
          { "data-testid": "party-members", "data-size": party.members.length },
          party.members.map((m) =>
            h(
              "li",
              { "data-testid": "party-member", "data-username": m.username },
              m.username,
              m.leader ? " (leader)" : "",
              leader && !m.leader ? h("button", { type: "button", class: "secondary", "data-testid": "party-kick", onclick: () => this.run("DELETE", `${base}/members/${encodeURIComponent(m.username)}`) }, "Remove") : null,
            ),
          ),
        ),
      );
      if (party.invites.length) {
        parts.push(
          h(
            "ul",
            { class: "hint", "data-testid": "party-pending", "data-size": party.invites.length },
            party.invites.map((i) =>
              h(
                "li",
                { "data-testid": "party-pending-invite", "data-username": i.username },
                `Invited: ${i.username} `,
                leader ? h("button", { type: "button", class: "secondary", "data-testid": "party-revoke", onclick: () => this.run("DELETE", `${base}/invites/${encodeURIComponent(i.username)}`) }, "Revoke") : null,
              ),
            ),
          ),
        );
      }
      this.base = base;
      if (leader && party.members.length < party.max_size) parts.push(this.inviteForm);
      parts.push(
        h("p", { class: "hint" }, party.members.length > 1 ? (leader ? "You queue the whole party (casual)." : "Your leader queues the party (casual).") : "Invite friends to play casual matches together."),
        h("button", { type: "button", class: "secondary", "data-testid": "party-leave", onclick: () => this.run("POST", `${base}/leave`) }, "Leave party"),
        leader && party.members.length > 1 ? h("button", { type: "button", class: "secondary", "data-testid": "party-disband", onclick: () => this.run("DELETE", base) }, "Disband") : null,
      );
    } else {
      parts.push(h("button", { type: "button", class: "secondary", "data-testid": "party-create", onclick: () => this.run("POST", "/parties") }, "Create a party"));
    }
    if (invitations.length) {
      parts.push(
        h(
          "ul",
          { "data-testid": "party-invitations" },
          invitations.map((i) =>
            h(
              "li",
              { "data-testid": "party-invitation", "data-party": i.party_id },
              `${i.leader} invites you (${i.members.join(", ")}) `,
              h("button", { type: "button", "data-testid": "party-accept", onclick: () => this.run("POST", `/parties/${i.party_id}/join`) }, "Accept"),
              " ",
              h("button", { type: "button", class: "secondary", "data-testid": "party-decline", onclick: () => this.run("POST", `/parties/${i.party_id}/decline`) }, "Decline"),
            ),
          ),
        ),
      );
    }
    this.body.replaceChildren(...parts.filter(Boolean));
    this.section.dataset.party = party ? party.party_id : "";
    this.section.dataset.size = party ? String(party.members.length) : "0";
    const kind = $("queue-kind");
    if (kind) {
      const grouped = Boolean(party && party.members.length > 1);
      kind.querySelector('option[value="ranked"]').disabled = grouped;
      if (grouped) kind.value = "casual";
    }
  }
}
